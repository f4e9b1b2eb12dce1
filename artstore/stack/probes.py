"""Free ports, and probes that ask a service a real question instead of sleeping."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from artstore.stack.errors import StackError
from events.kafka_wire import exchange

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports the kernel reports free (all sockets held open until chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The status code of ``GET url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own URL
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def kafka_brokers(host: str, port: int, timeout: float = 1.0) -> list[tuple[str, int]] | None:
    """Send a Kafka Metadata (v4) request; the advertised brokers, or None on no valid answer.

    Version 4 is the oldest one Apache Kafka 4.x still serves and one Tansu serves too.
    """
    try:
        # An empty topic array (no topics, only brokers) and allow_auto_topic_creation=false.
        payload = exchange(
            host, port, api_key=3, version=4, body=struct.pack(">ib", 0, 0), timeout=timeout
        )
        (_throttle, count) = struct.unpack_from(">ii", payload, 0)
        offset = 8
        brokers = []
        for _ in range(count):
            offset += 4  # node id
            (host_len,) = struct.unpack_from(">h", payload, offset)
            offset += 2
            broker_host = payload[offset : offset + host_len].decode()
            offset += host_len
            (broker_port, rack_len) = struct.unpack_from(">ih", payload, offset)
            offset += 6 + max(rack_len, 0)
            brokers.append((broker_host, int(broker_port)))
        return brokers
    except (OSError, ValueError, struct.error):
        return None


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until it holds; raise :class:`StackError` naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
