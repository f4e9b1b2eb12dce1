"""The one error type the stack raises: it says what failed and where to look."""

from __future__ import annotations


class StackError(RuntimeError):
    """A service of the local stack could not be found, started, reached or stopped."""
