"""Client settings precedence and the mapping of HTTP errors to the SDK's typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers import (
    MissingConfigFile,
    NotFound,
    RateLimited,
    Rejected,
    Unauthorized,
    load_client_settings,
)
from producers.errors import error_from_response


def test_environment_beats_config_file_and_flags_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "client.toml"
    config.write_text(
        'facade_url = "http://from-file:1"\nauth_url = "http://auth-file:2"\n'
        'client_id = "sa_file"\nclient_secret = "s3cret"\nkafka_bootstrap = "file:9092"\n'
    )
    for name in ("ARTSTORE_CLIENT_CLIENT_ID", "ARTSTORE_CLIENT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARTSTORE_CLIENT_FACADE_URL", "http://from-env:1")
    monkeypatch.setenv("ARTSTORE_KAFKA_BOOTSTRAP", "env:9092")
    settings = load_client_settings(config, auth_url="http://flag:3", client_id=None)
    assert settings.facade_url == "http://from-env:1"
    assert settings.auth_url == "http://flag:3"
    assert settings.client_id == "sa_file"  # a flag left unset falls through
    assert settings.kafka_bootstrap == "env:9092"
    assert settings.client_secret is not None
    assert "s3cret" not in repr(settings)


def test_the_sdk_reads_the_env_file_the_cli_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "artstore.env"
    env_file.write_text(
        "ARTSTORE_CLIENT_CLIENT_ID=sa_dev_admin_1a2b3c4d\n"
        "ARTSTORE_CLIENT_CLIENT_SECRET='from the file'\n"
        "ARTSTORE_S3_ENDPOINT=127.0.0.1:18333\n"
    )
    for name in ("ARTSTORE_CLIENT_CLIENT_ID", "ARTSTORE_CLIENT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ARTSTORE_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("ARTSTORE_ENV_FILE", str(env_file))
    settings = load_client_settings()
    assert settings.client_id == "sa_dev_admin_1a2b3c4d"
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == "from the file"
    assert settings.s3_endpoint == "127.0.0.1:18333"


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MissingConfigFile, match=r"nope\.toml"):
        load_client_settings(tmp_path / "nope.toml")


def test_http_errors_become_typed_errors_with_the_server_reason() -> None:
    limited = error_from_response(429, {"error": "slow_down"}, {"retry-after": "7"}, what="token")
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 7
    conflict = error_from_response(
        409, {"detail": "se-02 is ro", "reason": "element_mode"}, {}, what="update"
    )
    assert isinstance(conflict, Rejected)
    assert conflict.reason == "element_mode"
    assert "se-02 is ro" in str(conflict)
    denied = error_from_response(
        401, {"error": "invalid_client", "error_description": "bad secret"}, {}, what="token"
    )
    assert isinstance(denied, Unauthorized)
    assert denied.reason == "invalid_client"
    gone = error_from_response(410, {"detail": "deleted"}, {}, what="meta")
    assert isinstance(gone, NotFound)
    assert gone.reason == "gone"


def test_a_validation_error_list_becomes_one_sentence_per_field() -> None:
    body = {
        "detail": [
            {"loc": ["body", "role"], "msg": "Input should be 'admin' or 'user'", "type": "enum"}
        ]
    }
    error = error_from_response(422, body, {}, what="creation of account bob")
    assert str(error) == "creation of account bob: role: Input should be 'admin' or 'user'"
