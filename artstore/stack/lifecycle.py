"""Bring the stack up (starting or reusing each service), report on it, and take it down."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from artstore.stack import (
    apache_kafka,
    postgres_server,
    processes,
    redis_server,
    seaweedfs,
    tansu,
)
from artstore.stack.env import (
    DEFAULT_S3_ACCESS_KEY,
    DEFAULT_S3_BUCKET,
    DEFAULT_S3_REGION,
    DEFAULT_S3_SECRET_KEY,
    StackEnv,
)
from artstore.stack.errors import StackError
from artstore.stack.probes import wait_until
from artstore.stack.seaweedfs import S3Access
from artstore.stack.state import ServiceRecord, StateStore, resolve_state_dir
from artstore.stack.tansu import KafkaBroker, KafkaStorage

#: Services in start order; stopped in reverse.
SERVICE_ORDER = (seaweedfs.NAME, postgres_server.NAME, redis_server.NAME, tansu.NAME)
#: ``ARTSTORE_STACK_FORCE_OWN=postgres,redis`` starts our own even when the machine has one.
FORCE_OWN_VARIABLE = "ARTSTORE_STACK_FORCE_OWN"

_READY: dict[str, Callable[[ServiceRecord], bool]] = {
    seaweedfs.NAME: seaweedfs.ready,
    postgres_server.NAME: postgres_server.ready,
    redis_server.NAME: redis_server.ready,
    tansu.NAME: tansu.ready,  # the same probe serves both brokers (apache_kafka.ready)
}
#: ``ARTSTORE_STACK_KAFKA=apache`` asks for Apache Kafka where no ``--kafka`` option is given.
KAFKA_BROKER_VARIABLE = "ARTSTORE_STACK_KAFKA"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What ``status`` reports for one service."""

    name: str
    url: str
    pid: int | None
    owned: bool
    up: bool
    detail: str


def ensure_stack(
    state_dir: Path | None = None,
    *,
    kafka_storage: KafkaStorage | None = None,
    kafka_broker: KafkaBroker | None = None,
    timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
) -> StackEnv:
    """Start whatever part of the stack is not running, reuse the rest; return its URLs.

    Safe to call from several processes at once: they serialise on a lock in the state dir.
    ``kafka_storage`` (Tansu only) and ``kafka_broker`` default to ``$ARTSTORE_STACK_KAFKA`` for
    the broker, else what was last asked for in this state dir, else Tansu in memory. A running
    broker of another kind (or storage) is stopped and replaced.
    """
    environ = os.environ if environ is None else environ
    if kafka_broker is None and environ.get(KAFKA_BROKER_VARIABLE):
        try:
            kafka_broker = KafkaBroker(environ[KAFKA_BROKER_VARIABLE])
        except ValueError as exc:
            raise StackError(
                f"{KAFKA_BROKER_VARIABLE}={environ[KAFKA_BROKER_VARIABLE]!r} is not one of "
                f"{', '.join(b.value for b in KafkaBroker)}"
            ) from exc
    store = StateStore(resolve_state_dir(state_dir))
    with store.locked():
        return _Startup(store, environ, timeout).run(kafka_storage, kafka_broker)


class _Startup:
    """One ``ensure_stack`` call: launch what is missing, then wait for all of it at once."""

    def __init__(self, store: StateStore, environ: Mapping[str, str], timeout: float) -> None:
        self.store = store
        self.environ = environ
        self.timeout = timeout
        self.state = store.load()
        self.force_own = {
            name.strip() for name in environ.get(FORCE_OWN_VARIABLE, "").split(",") if name.strip()
        }
        self.pending: list[ServiceRecord] = []

    def run(self, kafka_storage: KafkaStorage | None, kafka_broker: KafkaBroker | None) -> StackEnv:
        recorded = self.state.kafka_storage
        storage = kafka_storage or (KafkaStorage(recorded) if recorded else KafkaStorage.MEMORY)
        recorded_broker = self.state.kafka_broker
        broker = kafka_broker or (
            KafkaBroker(recorded_broker) if recorded_broker else KafkaBroker.TANSU
        )
        if broker is KafkaBroker.APACHE:
            # Resolve the jars first: the first time it takes Maven a while, and a machine
            # without a JDK should fail before anything else is started.
            apache_kafka.ensure_jars()
        self.state.kafka_storage = storage.value
        self.state.kafka_broker = broker.value
        self.state.env = None
        buckets = [DEFAULT_S3_BUCKET]
        durable_tansu = broker is KafkaBroker.TANSU and storage is KafkaStorage.S3
        if durable_tansu:
            buckets.append(tansu.TANSU_BUCKET)

        s3 = _running(self.state.services.get(seaweedfs.NAME))
        if s3 is None:
            s3 = self._launch(
                lambda: seaweedfs.start(
                    self.store.root,
                    access_key=DEFAULT_S3_ACCESS_KEY,
                    secret_key=DEFAULT_S3_SECRET_KEY,
                    buckets=buckets,
                )
            )
        s3_access = S3Access(
            s3.url, DEFAULT_S3_ACCESS_KEY, DEFAULT_S3_SECRET_KEY, DEFAULT_S3_REGION
        )
        self._reuse_or_start(postgres_server.NAME, postgres_server.existing, postgres_server.start)
        self._reuse_or_start(redis_server.NAME, redis_server.existing, redis_server.start)
        kafka = _running(self.state.services.get(tansu.NAME))
        if kafka is not None and not _is_broker(kafka, broker, storage):
            _stop(kafka)
            kafka = None
        if kafka is None and broker is KafkaBroker.APACHE:
            self._launch(lambda: apache_kafka.start(self.store.root))
        elif kafka is None and storage is KafkaStorage.MEMORY:
            self._launch(lambda: tansu.start(self.store.root, storage, None))

        # Everything missing is launched; wait for all of it (they come up in parallel).
        for record in self.pending:
            _wait_ready(record, _start_timeout(record, self.timeout))
        seaweedfs.ensure_buckets(s3_access, buckets)
        if kafka is None and durable_tansu:
            # The durable broker keeps its records in an S3 bucket: S3 must be up first.
            record = self._launch(lambda: tansu.start(self.store.root, storage, s3_access))
            _wait_ready(record, self.timeout)

        services = self.state.services
        postgres_server.ensure_database(services[postgres_server.NAME].url)
        env = StackEnv(
            kafka_bootstrap=services[tansu.NAME].url,
            database_url=services[postgres_server.NAME].url,
            redis_url=services[redis_server.NAME].url,
            s3_endpoint=s3_access.endpoint,
            s3_access_key=s3_access.access_key,
            s3_secret_key=s3_access.secret_key,
            s3_bucket=DEFAULT_S3_BUCKET,
            s3_region=s3_access.region,
            s3_secure=s3_access.secure,
        )
        self.state.env = env.as_dict()
        self.store.save(self.state)
        return env

    def _launch(self, start: Callable[[], ServiceRecord]) -> ServiceRecord:
        record = start()
        self.state.services[record.name] = record
        self.store.save(self.state)  # record the pid at once, so `down` finds it if we fail
        self.pending.append(record)
        return record

    def _reuse_or_start(
        self,
        name: str,
        existing: Callable[[Mapping[str, str]], ServiceRecord | None],
        start: Callable[[Path], ServiceRecord],
    ) -> None:
        forced = name in self.force_own
        record = _running(self.state.services.get(name))
        if record is not None and (record.owned or not forced):
            return
        found = None if forced else existing(self.environ)
        if found is None:
            self._launch(lambda: start(self.store.root))
        else:
            self.state.services[name] = found
            self.store.save(self.state)


def stop_stack(state_dir: Path | None = None, *, purge: bool = False) -> list[str]:
    """Stop what the stack started (never a machine's own server); return what was stopped.

    ``purge`` also deletes the state directory's data (SeaweedFS, PostgreSQL and logs).
    """
    store = StateStore(resolve_state_dir(state_dir))
    if not store.root.exists():
        return []
    stopped: list[str] = []
    with store.locked():
        state = store.load()
        data_dirs: list[Path] = []
        for name in reversed(SERVICE_ORDER):
            record = state.services.get(name)
            if record is None or not record.owned:
                continue
            if processes.is_running(record.pid, record.program):
                stopped.append(name)
            _stop(record)
            if record.data_dir:
                data_dirs.append(Path(record.data_dir))
            del state.services[name]
            store.save(state)
        store.clear(state)
        if purge:
            # Data may live outside the state dir (a PostgreSQL cluster its OS user can reach).
            for path in [*data_dirs, *(c for c in store.root.iterdir() if c.is_dir())]:
                shutil.rmtree(path, ignore_errors=True)
            for log in store.root.glob("*.log"):
                log.unlink(missing_ok=True)
    return stopped


def read_stack_env(state_dir: Path | None = None) -> StackEnv | None:
    """The URLs of the stack last brought up in ``state_dir``, or None (not checked live)."""
    return StateStore(resolve_state_dir(state_dir)).load().stack_env()


def stack_status(state_dir: Path | None = None) -> list[ServiceStatus]:
    """Each recorded service, whether it answers now, and its pid when the stack owns it."""
    state = StateStore(resolve_state_dir(state_dir)).load()
    statuses = []
    for name in SERVICE_ORDER:
        record = state.services.get(name)
        if record is None:
            statuses.append(ServiceStatus(name, "", None, False, False, "not started"))
            continue
        up = _answers(record) and (
            not record.owned or processes.is_running(record.pid, record.program)
        )
        detail = record.detail or ("started by the stack" if record.owned else "")
        statuses.append(
            ServiceStatus(name, record.url, record.pid, record.owned, up, detail),
        )
    return statuses


def stack_is_running(state_dir: Path | None = None) -> bool:
    """Whether a complete stack is recorded in ``state_dir`` and every service answers."""
    store = StateStore(resolve_state_dir(state_dir))
    return store.load().stack_env() is not None and all(
        status.up for status in stack_status(state_dir)
    )


_BROKER_NAMES = {KafkaBroker.APACHE: "Apache Kafka", KafkaBroker.TANSU: "Tansu"}
#: Names the broker when the environment, not the stack, gives its address (tests, benchmarks).
GIVEN_BROKER_VARIABLE = "ARTSTORE_TEST_KAFKA_BROKER"


def describe_kafka(state_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``Apache Kafka 4.1.1 at 127.0.0.1:40001``: the broker of ``ARTSTORE_KAFKA_BOOTSTRAP``
    when the environment gives one, else the stack's."""
    environ = os.environ if environ is None else environ
    given = environ.get("ARTSTORE_KAFKA_BOOTSTRAP")
    if given:
        kind = environ.get(GIVEN_BROKER_VARIABLE, "a broker of unknown kind")
        return f"{kind} at {given} (given by the environment)"
    record = StateStore(resolve_state_dir(state_dir)).load().services.get(tansu.NAME)
    if record is None:
        return "the stack's (not started yet)"
    details = record.details()
    storage = f", {details['storage']} storage" if "storage" in details else ""
    name = _BROKER_NAMES[broker_of(record)]
    return f"{name} {details.get('version', '(version unknown)')} at {record.url}{storage}"


def broker_of(record: ServiceRecord) -> KafkaBroker:
    """Which broker a recorded Kafka service is (records from before Apache Kafka: Tansu)."""
    return KafkaBroker(record.details().get("broker", KafkaBroker.TANSU.value))


def _is_broker(record: ServiceRecord, broker: KafkaBroker, storage: KafkaStorage) -> bool:
    """Whether a running Kafka service is the broker (and, for Tansu, the storage) asked for."""
    if not record.owned:
        return True
    if broker_of(record) is not broker:
        return False
    return broker is KafkaBroker.APACHE or tansu.storage_of(record) is storage


def _answers(record: ServiceRecord) -> bool:
    return _READY[record.name](record)


def _running(record: ServiceRecord | None) -> ServiceRecord | None:
    """The record if its service still runs and answers; a stale process is stopped."""
    if record is None:
        return None
    if record.owned and not processes.is_running(record.pid, record.program):
        return None
    if _answers(record):
        return record
    if record.owned:
        _stop(record)
    return None


def _start_timeout(record: ServiceRecord, timeout: float) -> float:
    """How long ``record``'s service may take to answer: Apache Kafka reloads every partition
    of its log first, which takes minutes once a log holds thousands of them."""
    if record.name == apache_kafka.NAME and record.program == apache_kafka.PROGRAM:
        return max(timeout, apache_kafka.START_TIMEOUT_S)
    return timeout


def _wait_ready(record: ServiceRecord, timeout: float) -> None:
    def ready() -> bool:
        if record.owned and not processes.is_running(record.pid, record.program):
            raise StackError(f"{record.name} exited during start-up")
        return _answers(record)

    try:
        wait_until(ready, timeout=timeout, what=f"{record.name} at {record.url}")
    except StackError as exc:
        _stop(record)
        raise StackError(
            f"{exc}; its log ({record.log}) ends with:\n{processes.log_tail(record.log)}"
        ) from exc


def _stop(record: ServiceRecord) -> None:
    if not record.owned or record.pid is None:
        return
    processes.stop(
        record.pid,
        program=record.program,
        sig=signal.Signals(record.stop_signal),
        timeout=20.0,
    )
    if record.name == seaweedfs.NAME:
        seaweedfs.remove_sockets(record)
