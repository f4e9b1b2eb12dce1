"""A tiny HTTP server for a consumer process: ``/health/live``, ``/health/ready`` (with the
reason when not ready) and ``/metrics``, without authentication; or ``/metrics`` alone, for a
process whose health is served elsewhere (the facade's internal metrics port)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Readiness = Callable[[], str | None]
"""Why the process is not ready (a sentence an operator can act on), or None when it is."""


class HealthServer:
    """Serves liveness, readiness (from ``not_ready()``) and the process's metrics; only the
    metrics when ``not_ready`` is None."""

    def __init__(self, registry: CollectorRegistry, not_ready: Readiness | None) -> None:
        self._registry = registry
        self._not_ready = not_ready
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``."""
        self._server = await asyncio.start_server(self._serve, host, port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            path = request.split(b" ", 2)[1].decode("ascii", "replace") if b" " in request else "/"
            if path == "/health/live" and self._not_ready is not None:
                status, body, ctype = "200 OK", b'{"status":"live"}', "application/json"
            elif path == "/health/ready" and self._not_ready is not None:
                reason = self._not_ready()
                status = "200 OK" if reason is None else "503 Service Unavailable"
                answer = {"status": "ready"} if reason is None else {"status": "not_ready"}
                body = json.dumps(answer | ({"reason": reason} if reason else {})).encode()
                ctype = "application/json"
            elif path == "/metrics":
                status, body, ctype = "200 OK", generate_latest(self._registry), CONTENT_TYPE_LATEST
            else:
                status, body, ctype = "404 Not Found", b"{}", "application/json"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            # A prober that hangs up or never finishes its request gets no answer; say so.
            log.debug(
                "health request abandoned",
                extra={"peer": str(writer.get_extra_info("peername")), "error": repr(exc)},
            )
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
