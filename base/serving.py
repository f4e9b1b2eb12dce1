"""Serving an ASGI app as an operator runs it: uvicorn until SIGTERM or Ctrl-C, then exit 0."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

#: Exit status of a service whose app failed to start (database unreachable, bad migration...).
STARTUP_FAILURE = 3


class GracefulServer(uvicorn.Server):
    """A uvicorn server for which SIGTERM/SIGINT mean "stop": drain, shut down, exit 0.

    uvicorn re-raises the signal once it has shut down, so the process would die by SIGTERM
    after a clean shutdown; a supervisor asking the service to stop should see success.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve_until_stopped(
    app: Any, *, host: str, port: int, graceful_timeout_s: float | None = None
) -> bool:
    """Serve ``app`` until SIGTERM/SIGINT; False when it never started (see STARTUP_FAILURE).

    Logging goes through ArtStore's own configuration (uvicorn's loggers included).
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        timeout_graceful_shutdown=None if graceful_timeout_s is None else int(graceful_timeout_s),
    )
    server = GracefulServer(config)
    server.run()
    return bool(server.started)
