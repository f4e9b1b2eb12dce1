"""The query projection: facts from Kafka into PostgreSQL, exactly once, with full text.

Other packages use what is exported here.
"""

from consumers.changes import RestoreStep, UploadStatus
from consumers.handlers import queued_upload
from consumers.migrate import PROJECTION_TABLES, migrate
from consumers.restore_rows import queued_restore
from consumers.settings import ProjectorSettings
from consumers.store import ProjectionStore
from consumers.store_sql import create_pool

__all__ = [
    "PROJECTION_TABLES",
    "ProjectionStore",
    "ProjectorSettings",
    "RestoreStep",
    "UploadStatus",
    "create_pool",
    "migrate",
    "queued_restore",
    "queued_upload",
]
