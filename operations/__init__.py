"""Operators' tools over the running pipeline: the dead-letter topic (list, show, redrive) and
consumer lag. They read the broker as it is; nothing here consumes in a service's group."""

from operations.dead_letter_queue import DeadLetter, DeadLetterFilter, read_dead_letters
from operations.lag import PartitionLag, read_lag
from operations.redrive import RedriveLedger, RedriveOutcome, redrive

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "PartitionLag",
    "RedriveLedger",
    "RedriveOutcome",
    "read_dead_letters",
    "read_lag",
    "redrive",
]
