"""A free run of the ports an ``artstore dev`` deployment needs, for tests that start one."""

from __future__ import annotations

import random
import socket

from artstore.dev.services import Ports

#: Linux gives outgoing connections ports from 32768 up: a base picked there can be taken by
#: another test's connection between the check and the start.
_BELOW_EPHEMERAL = 32000


def free_dev_ports() -> int:
    """A base whose every port (``Ports(base).all()``) is free now."""
    size = len(Ports(0).all())
    for _ in range(200):
        base = random.randrange(20000, _BELOW_EPHEMERAL - size)
        if all(_free(port) for port in Ports(base).all()):
            return base
    raise AssertionError("no run of free loopback ports found")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
