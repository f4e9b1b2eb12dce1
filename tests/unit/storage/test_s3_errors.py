"""How S3's answers become the storage port's errors: missing, the service's fault, or the
request's own."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

import pytest
import urllib3
from minio.error import S3Error

from events import S3Backend
from storage_workers.backends import BackendError, ObjectMissing, ServiceFault
from storage_workers.backends.s3 import S3Storage, _errors


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


class _Answering(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that fails every request with ``status`` and ``body`` (no XML)."""

    status = 503
    body = b""
    content_type = "text/html"

    def _fail(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.body)

    do_GET = do_HEAD = do_PUT = do_DELETE = _fail

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def s3_answering(status: int, body: bytes) -> Iterator[S3Storage]:
    handler = type("Handler", (_Answering,), {"status": status, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"127.0.0.1:{server.server_port}"
        backend = S3Backend(endpoint=endpoint, bucket="bucket", secure=False)
        yield S3Storage(backend, access_key="k", secret_key="s")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b""), (503, b""), (502, b"<html>bad gateway</html>"), (504, b"upstream timed out")],
)
def test_a_failure_on_s3s_side_without_an_error_document_is_a_service_fault(
    status: int, body: bytes
) -> None:
    """A stat is a HEAD (no error document ever) and a proxy answers in HTML: the client
    raises its own errors for those, which are still S3's side failing."""
    with s3_answering(status, body) as s3:
        with pytest.raises(ServiceFault):
            s3.stat("some/key")
        with pytest.raises(ServiceFault):
            s3.read_bytes("some/key")


def test_a_refusal_without_an_error_document_is_the_requests_own() -> None:
    with s3_answering(400, b"") as s3, pytest.raises(BackendError) as caught:
        s3.read_bytes("some/key")
    assert not isinstance(caught.value, ServiceFault | ObjectMissing)
