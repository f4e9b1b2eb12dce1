"""How S3's answers become the storage port's errors: missing, the service's fault, or the
request's own."""

from __future__ import annotations

import pytest
import urllib3
from minio.error import S3Error

from storage_workers.backends import BackendError, ObjectMissing, ServiceFault
from storage_workers.backends.s3 import _errors


def answer(status: int, code: str) -> S3Error:
    response = urllib3.HTTPResponse(status=status)
    return S3Error(response, code, "said S3", "/bucket/key", "req-1", None)


def translated(exc: Exception) -> BaseException:
    with pytest.raises(BackendError) as caught, _errors("key"):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "InternalError"), (503, "SlowDown"), (503, "ServiceUnavailable"), (502, "Whatever")],
)
def test_a_failure_on_s3s_side_is_a_service_fault(status: int, code: str) -> None:
    assert isinstance(translated(answer(status, code)), ServiceFault)


def test_no_answer_at_all_is_a_service_fault() -> None:
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    assert isinstance(translated(refused), ServiceFault)


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (400, "InvalidRequest")])
def test_a_refusal_of_the_request_is_not_the_services_fault(status: int, code: str) -> None:
    error = translated(answer(status, code))
    assert not isinstance(error, ServiceFault | ObjectMissing)
    assert code in str(error)


def test_a_missing_key_is_missing() -> None:
    assert isinstance(translated(answer(404, "NoSuchKey")), ObjectMissing)
