"""The producer SDK: upload through staging and Kafka, read and command through the facade.

::

    from producers import ArtStoreClient, load_client_settings

    async with ArtStoreClient(load_client_settings()) as client:
        handle = await client.upload("report.pdf", tags=["q3"])
        stored = await handle.wait(timeout=60)   # raises Rejected(reason) or Timeout

See ``producers/examples/upload_and_wait.py`` and docs/sdk.md.
"""

from producers.accounts import AccountsAdmin
from producers.client import ArtStoreClient, UploadHandle, UploadProgress
from producers.downloads import DownloadProgress
from producers.errors import (
    ArtStoreError,
    BadRequest,
    BrokerUnavailable,
    ChecksumMismatch,
    ConfigurationError,
    InvalidUpload,
    NotFound,
    RateLimited,
    Rejected,
    Timeout,
    Unauthorized,
    Unavailable,
)
from producers.models import DownloadResult, SearchPage, StoredFile, UploadRequest, UploadSource
from producers.settings import ClientSettings, MissingConfigFile, load_client_settings
from producers.sync import ArtStoreSyncClient, SyncUploadHandle
from producers.webhooks import WebhookSignatureError, verify_webhook

__all__ = [
    "AccountsAdmin",
    "ArtStoreClient",
    "ArtStoreError",
    "ArtStoreSyncClient",
    "BadRequest",
    "BrokerUnavailable",
    "ChecksumMismatch",
    "ClientSettings",
    "ConfigurationError",
    "DownloadProgress",
    "DownloadResult",
    "InvalidUpload",
    "MissingConfigFile",
    "NotFound",
    "RateLimited",
    "Rejected",
    "SearchPage",
    "StoredFile",
    "SyncUploadHandle",
    "Timeout",
    "Unauthorized",
    "Unavailable",
    "UploadHandle",
    "UploadProgress",
    "UploadRequest",
    "UploadSource",
    "WebhookSignatureError",
    "load_client_settings",
    "verify_webhook",
]
