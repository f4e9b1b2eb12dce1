"""Operators' tools over the running pipeline: the dead-letter topic (list, show, redrive) and
consumer lag. They read the broker as it is; nothing here consumes in a service's group.
``artstore dlq``, the facade's ``/api/v1/dlq`` and the console all go through them."""

from operations.dead_letter_queue import (
    DeadLetter,
    DeadLetterFilter,
    parse_letter_id,
    read_dead_letter,
    read_dead_letters,
)
from operations.lag import PartitionLag, read_lag
from operations.redrive import RedriveLedger, RedriveOutcome, redrive, redrive_letters

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "PartitionLag",
    "RedriveLedger",
    "RedriveOutcome",
    "parse_letter_id",
    "read_dead_letter",
    "read_dead_letters",
    "read_lag",
    "redrive",
    "redrive_letters",
]
