"""One request to a Kafka-protocol broker over a plain socket, for questions no client asks.

The stack's readiness probe (Metadata) and the capability check (InitProducerId) send a single
fixed request and read a single response; they must not need a client library's private API.
"""

from __future__ import annotations

import socket
import struct

_CLIENT_ID = b"artstore"


def exchange(
    host: str, port: int, *, api_key: int, version: int, body: bytes, timeout: float
) -> bytes:
    """Send one request (header v1: api key, version, correlation id, client id) and return
    the response after its correlation id. Raises ``OSError`` or ``ValueError`` on no valid
    answer."""
    correlation_id = 0x0A57
    header = struct.pack(">hhih", api_key, version, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        payload = _read_exactly(sock, size)
    (answered_id,) = struct.unpack_from(">i", payload, 0)
    if answered_id != correlation_id:
        raise ValueError("the broker answered another request")
    return payload[4:]


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed mid-response")
        chunks += chunk
    return bytes(chunks)
