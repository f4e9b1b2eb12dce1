"""No accepted upload is lost, stored twice or left without an outcome under kills, hand-overs
and broker or database restarts (see :mod:`tests.e2e.storage.trials` for what each trial checks).

``make test`` runs each scenario once with a few dozen uploads; ``make soak`` runs every
scenario ``ARTSTORE_SOAK_ROUNDS`` times with more uploads and writes one JSON line per trial to
``ARTSTORE_SOAK_REPORT``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from artstore.stack import StackEnv
from auth.testing import TestSigner
from base.settings import Settings
from tests.e2e.storage.trials import Trial, uploads_per_trial

pytestmark = [
    pytest.mark.embedded_broker,
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.s3,
]

ROUNDS = int(os.environ.get("ARTSTORE_SOAK_ROUNDS", "1"))


async def worker_killed_with_a_standby(trial: Trial) -> None:
    """SIGKILL the filling element twice mid-stream; the standby takes over, the killed one
    comes back (and fills first again)."""
    trial.add_worker("se-a", 0, None)
    trial.add_worker("se-b", 1, None)
    wave = max(1, uploads_per_trial() // 4)
    async with trial.running():
        await trial.until_consuming("se-a")
        await trial.publish(wave)
        await trial.until_outcomes(1)
        await trial.publish(wave)
        trial.kill_worker("se-a")  # with a batch in flight, most likely
        await trial.publish(wave)
        await trial.until_consuming("se-b")
        await trial.start_worker("se-a")
        await trial.until_consuming("se-a")
        await trial.publish(wave)
        trial.kill_worker("se-a")
        await trial.start_worker("se-a")


async def capacity_hand_over_with_a_tiny_element(trial: Trial) -> None:
    """The filling element holds a third of the uploads; it steps aside (ElementFull) and the
    standby takes the rest, with no ping-pong."""
    n = uploads_per_trial()
    trial.add_worker("se-a", 0, n // 3)
    trial.add_worker("se-b", 1, None)
    async with trial.running():
        await trial.until_consuming("se-a")
        for _ in range(4):
            await trial.publish(n // 4)


def broker_restart(sig: signal.Signals, *, nearly_full: bool) -> Callable[[Trial], Awaitable[None]]:
    async def scenario(trial: Trial) -> None:
        n = uploads_per_trial()
        trial.add_worker("se-a", 0, n // 2 if nearly_full else None)
        trial.add_worker("se-b", 1, None)
        async with trial.running():
            await trial.until_consuming("se-a")
            await trial.publish(n // 3)
            await trial.until_outcomes(1)
            await trial.publish(n // 3)
            await trial.broker.restart(sig)
            await trial.publish(n - 2 * (n // 3))

    scenario.__doc__ = f"Restart the broker ({sig.name}) while uploads are being stored" + (
        ", with the filling element nearly full." if nearly_full else "."
    )
    return scenario


def database_restart(sig: signal.Signals) -> Callable[[Trial], Awaitable[None]]:
    async def scenario(trial: Trial) -> None:
        n = uploads_per_trial()
        database = trial.own_database()
        trial.add_worker("se-a", 0, None)
        trial.add_worker("se-b", 1, None)
        async with trial.running():
            await trial.until_consuming("se-a")
            await trial.publish(n // 3)
            await trial.until_outcomes(1)
            await trial.publish(n // 3)
            await database.restart(sig)
            await trial.publish(n - 2 * (n // 3))

    scenario.__doc__ = (
        f"Restart PostgreSQL ({sig.name}) while uploads are being stored, claimed and projected."
    )
    return scenario


SCENARIOS: dict[str, Callable[[Trial], Awaitable[None]]] = {
    "worker-kill": worker_killed_with_a_standby,
    "capacity-hand-over": capacity_hand_over_with_a_tiny_element,
    "broker-sigterm": broker_restart(signal.SIGTERM, nearly_full=False),
    "broker-sigkill": broker_restart(signal.SIGKILL, nearly_full=False),
    "broker-sigkill-nearly-full": broker_restart(signal.SIGKILL, nearly_full=True),
    "database-sigint": database_restart(signal.SIGINT),
    "database-sigkill": database_restart(signal.SIGKILL),
}


@pytest.mark.parametrize("round_", range(1, ROUNDS + 1), ids=lambda r: f"round{r}")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_accepted_upload_is_stored_once_and_indexed(
    scenario: str,
    round_: int,
    settings: Settings,
    stack: StackEnv,
    signer: TestSigner,
    jwks_file: Path,
    tmp_path: Path,
) -> None:
    trial = Trial(scenario, settings, stack, signer, jwks_file, tmp_path)
    await SCENARIOS[scenario](trial)  # checks every outcome before it stops the services
    report = trial.report
    assert report.uploads > 0
    assert report.stored == report.uploads
    if path := os.environ.get("ARTSTORE_SOAK_REPORT"):
        with Path(path).open("a") as out:  # noqa: ASYNC230 - one short line
            out.write(report.line() + "\n")
