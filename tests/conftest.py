"""Fixtures shared by every test: the real stack, a fresh database and topic prefix per module.

The stack comes from ``artstore.stack`` (started by ``make test``; started here if it is not
running). When ``ARTSTORE_KAFKA_BOOTSTRAP`` etc. are set in the environment, those are used as-is.
"""
