"""``make test``: the whole suite on Apache Kafka, and the embedded-broker tests on Tansu too.

Usage: ``python -m tests.matrix [pytest arguments]``. Brings the stack up with each broker in
turn (PostgreSQL, Redis and S3 are started once and reused), runs pytest, and stops the stack at
the end unless it was already running. Without a JDK and Maven every test runs on Tansu, and one
line says so; with ``CI=true`` a missing JDK or Maven is a failure, not a fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from artstore.stack import KafkaBroker, StackError, ensure_stack, stack_is_running, stop_stack
from artstore.stack.apache_kafka import missing_tools
from artstore.stack.lifecycle import KAFKA_BROKER_VARIABLE, describe_kafka
from artstore.stack.state import StateStore, resolve_state_dir

#: pytest's exit code when it collected no test at all: a failure for us.
NO_TESTS_COLLECTED = 5


@dataclass(frozen=True)
class Pass:
    """One pytest run: on which broker, and which tests."""

    broker: KafkaBroker
    selection: list[str]
    what: str


def plan(environ: dict[str, str]) -> list[Pass]:
    """The passes this machine can run; raise :class:`StackError` when CI lacks a JDK."""
    missing = missing_tools()
    if not missing:
        return [
            Pass(KafkaBroker.APACHE, [], "the whole suite"),
            Pass(
                KafkaBroker.TANSU,
                ["-m", "embedded_broker"],
                "the embedded-broker and `artstore dev` tests",
            ),
        ]
    if environ.get("CI", "").lower() == "true":
        raise StackError(
            f"CI=true but {' and '.join(missing)} is missing: the suite must run on Apache Kafka"
        )
    print(
        f"Apache Kafka skipped ({' and '.join(missing)} not on PATH): every test runs on Tansu",
        flush=True,
    )
    return [Pass(KafkaBroker.TANSU, [], "the whole suite")]


def main(argv: list[str]) -> int:
    environ = dict(os.environ)
    try:
        passes = plan(environ)
    except StackError as exc:
        print(f"make test: {exc}", file=sys.stderr)
        return 2
    was_running = stack_is_running()
    recorded = StateStore(resolve_state_dir()).load().kafka_broker
    status = 0
    try:
        for item in passes:
            try:
                ensure_stack(kafka_broker=item.broker)
            except StackError as exc:
                print(f"make test: the stack did not come up: {exc}", file=sys.stderr)
                return 1
            print(f"\n=== {item.what} on {describe_kafka()}", flush=True)
            env = {**environ, KAFKA_BROKER_VARIABLE: item.broker.value}
            command = [sys.executable, "-m", "pytest", *item.selection, *argv]
            code = subprocess.call(command, env=env)
            print(f"=== {item.what}: pytest exit code {code}", flush=True)
            if code != 0:
                status = code if code != NO_TESTS_COLLECTED else 1
    finally:
        if not was_running:
            stop_stack()
        elif recorded is not None:
            ensure_stack(kafka_broker=KafkaBroker(recorded))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
