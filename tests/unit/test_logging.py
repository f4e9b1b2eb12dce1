"""Log lines: one JSON object each, naming the service and a correlation id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from base.logging import configure_logging, correlated


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_every_line_is_json_with_service_and_a_correlation_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", service="artstore-test")
    log = logging.getLogger("artstore.test")
    log.info("outside any message")
    with correlated("corr-1", trace="0af7651916cd43dd8448eb211c80319c"):
        log.warning("stored", extra={"file_id": "f-1", "element_id": "se-1"})
    log.info("after")
    first, inside, after = lines(capsys)
    assert {first["service"], inside["service"]} == {"artstore-test"}
    assert str(first["correlation_id"]).startswith("artstore-test-")
    assert after["correlation_id"] == first["correlation_id"]
    assert inside["correlation_id"] == "corr-1"
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert (inside["file_id"], inside["element_id"]) == ("f-1", "se-1")
    assert "trace_id" not in first


def test_text_format_names_service_and_correlation(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", service="artstore-test", log_format="text")
    with correlated("corr-2"):
        logging.getLogger("artstore.test").info("hello")
    line = capsys.readouterr().err.strip()
    assert line.startswith("artstore-test [corr-2] ")
    assert line.endswith("hello")


def test_a_line_written_inside_a_span_carries_its_trace_and_span_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    configure_logging("INFO", service="artstore-test")
    log = logging.getLogger("artstore.test")
    tracer = TracerProvider().get_tracer("artstore.test")
    with tracer.start_as_current_span("upload") as span:
        log.info("inside")
        with correlated("corr-3", trace="0af7651916cd43dd8448eb211c80319c"):
            log.info("the live span wins over a named trace")
    log.info("outside")
    inside, named, outside = lines(capsys)
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert named["trace_id"] == f"{context.trace_id:032x}"
    assert "trace_id" not in outside
    assert "span_id" not in outside
