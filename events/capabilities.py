"""What the Kafka-protocol broker we talk to honours, asked of the broker itself.

ArtStore runs on Apache Kafka in production and on an embedded broker (Tansu) on one machine.
Where they differ, the code asks the broker instead of assuming either (docs/decisions.md lists
every difference and how it is handled).
"""

from __future__ import annotations

import functools
import logging
import struct

from events.kafka_wire import exchange

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
    # InitProducerId v0: a null transactional id and a transaction timeout.
    response = exchange(
        host,
        port,
        api_key=_INIT_PRODUCER_ID,
        version=0,
        body=struct.pack(">hi", -1, 60_000),
        timeout=timeout,
    )
    _throttle_ms, error_code = struct.unpack_from(">ih", response, 0)
    return int(error_code)
