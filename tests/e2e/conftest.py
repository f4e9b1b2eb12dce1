"""e2e fixtures reuse the storage integration fixtures."""

from tests.integration.storage.conftest import (  # noqa: F401
    facts,
    jwks_file,
    producer,
    signer,
    storage_settings,
    topics,
)
