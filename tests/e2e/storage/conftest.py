"""The storage integration fixtures, shared with the storage e2e tests."""

from tests.integration.storage.conftest import (  # noqa: F401
    facts,
    jwks_file,
    producer,
    signer,
    topics,
)
