"""What the Kafka-protocol broker we talk to honours, asked of the broker itself.

ArtStore runs on Apache Kafka in production and on an embedded broker (Tansu) on one machine.
Where they differ, the code asks the broker instead of assuming either (docs/decisions.md lists
every difference and how it is handled).
"""

from __future__ import annotations

import functools
import logging
import socket
import struct

log = logging.getLogger(__name__)

_INIT_PRODUCER_ID = 22
#: Errors meaning "supported, but the transaction coordinator is not ready yet".
_BUSY = {7, 14, 15}  # REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE


def supports_idempotent_producer(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """Whether the broker grants producer ids the way our client (aiokafka) asks for them.

    aiokafka's idempotent producer sends InitProducerId version 0; Apache Kafka answers it,
    the embedded broker answers it with an unknown error (and only serves later versions).
    A broker that cannot be reached counts as not supporting it, and is asked again next time.
    """
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        return _cached_answer(host.strip("[]"), int(port), timeout)
    except (OSError, ValueError, struct.error) as exc:
        log.warning(
            "could not ask %s about idempotent producers (%s); publishing without them",
            bootstrap_servers,
            exc,
        )
        return False


@functools.lru_cache(maxsize=16)
def _cached_answer(host: str, port: int, timeout: float) -> bool:
    return _init_producer_id_error(host, port, timeout) in {0, *_BUSY}


def _init_producer_id_error(host: str, port: int, timeout: float) -> int:
    client_id = b"artstore-capabilities"
    correlation_id = 22
    # Header v1, then InitProducerId v0: a null transactional id and a transaction timeout.
    body = struct.pack(">hhih", _INIT_PRODUCER_ID, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">hi", -1, 60_000)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        payload = _read_exactly(sock, size)
    answered_id, _throttle_ms, error_code = struct.unpack_from(">iih", payload, 0)
    if answered_id != correlation_id:
        raise ValueError("the broker answered another request")
    return int(error_code)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed mid-response")
        chunks += chunk
    return bytes(chunks)
