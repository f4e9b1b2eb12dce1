"""The sender: due deliveries out as signed HTTP POSTs, many at once, each bounded in time.

Due deliveries are claimed (leased) in batches as slots free up, so a slow receiver holds one
slot for at most the request timeout and never the others. Outcomes are recorded together, as
they come back. Each attempt: open the webhook's secret, resolve its host and check every
address against the policy, then connect to the checked address itself (the name is sent as
``Host`` and, for https, as the TLS server name that the certificate must match), so a name
that resolves elsewhere between the check and the connection cannot reach a refused address.
Redirects are not followed; any status but 2xx is a failure, as is no answer within the
timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from events.webhooks import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    KIND_HEADER,
    SIGNATURE_HEADER,
    sign,
)
from notifications import metrics
from notifications.queue import DeliveryQueue, DueDelivery, Outcome
from notifications.sealing import SealingUnavailable, SecretBox
from notifications.targets import Address, AddressPolicy, Target, UnsafeTarget, parse_target

log = logging.getLogger("notifications.sender")
USER_AGENT = "ArtStore-Webhooks/1"
Resolver = Callable[[str, int], Awaitable[list[Address]]]
UNREACHABLE_NAME = (
    "the host name does not resolve, or not only to addresses deliveries may reach (public "
    "ones, unless the operator allowed others)"
)


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address not in found:
            found.append(address)
    return found


class Sender:
    """Sends due deliveries until stopped (see the module's docstring)."""

    def __init__(
        self,
        queue: DeliveryQueue,
        box: SecretBox,
        policy: AddressPolicy,
        http: httpx.AsyncClient,
        wake: asyncio.Event,
        *,
        delays_s: Sequence[float],
        timeout_s: float,
        concurrency: int,
        poll_s: float,
        per_account: int | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.queue = queue
        self.box = box
        self.policy = policy
        self.http = http
        self.wake = wake
        self.delays_s = list(delays_s)
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.per_account = per_account
        self.poll_s = poll_s
        self.resolver = resolver
        # Long enough for an attempt to end on its own; short enough that a crashed
        # dispatcher's deliveries are taken up again soon.
        self.lease_s = 2 * timeout_s + 5

    async def run(self, stop: asyncio.Event) -> None:
        """Claim, send and record until ``stop`` is set; then finish the attempts in flight."""
        inflight: set[asyncio.Task[Outcome]] = set()
        try:
            while not stop.is_set():
                try:
                    free = self.concurrency - len(inflight)
                    if free > 0:
                        self.wake.clear()
                        for due in await self.queue.claim_due(
                            free, self.lease_s, per_account=self.per_account
                        ):
                            inflight.add(asyncio.create_task(self.attempt(due)))
                    await self._wait(inflight, stop)
                    await self._record_finished(inflight)
                except (
                    OSError,
                    TimeoutError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    log.warning("the queue is away; sender waits", extra={"error": str(exc)})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.poll_s)
        finally:
            if inflight:
                await asyncio.wait(inflight, timeout=self.timeout_s + 1)
                with contextlib.suppress(Exception):
                    await self._record_finished(inflight)
                for task in inflight:
                    task.cancel()

    async def _wait(self, inflight: set[asyncio.Task[Outcome]], stop: asyncio.Event) -> None:
        waiters = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
        pending: set[asyncio.Task[Any]] = {*inflight, *waiters}
        try:
            await asyncio.wait(pending, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _record_finished(self, inflight: set[asyncio.Task[Outcome]]) -> None:
        finished = [t for t in inflight if t.done()]
        if not finished:
            return
        outcomes = [t.result() for t in finished]
        statuses = await self.queue.record(outcomes, self.delays_s)
        inflight.difference_update(finished)
        for outcome, status in zip(outcomes, statuses, strict=True):
            kind = outcome.delivery.kind
            if status == "delivered":
                metrics.SENT.labels(kind).inc()
            elif status == "failed":
                metrics.FAILED.labels(kind).inc()
                log.warning(
                    "webhook delivery failed for good",
                    extra={
                        "delivery_id": str(outcome.delivery.delivery_id),
                        "webhook_id": str(outcome.delivery.webhook_id),
                        "error": outcome.error or f"status {outcome.status_code}",
                    },
                )

    async def attempt(self, due: DueDelivery) -> Outcome:
        """One signed POST of ``due``; never raises (what went wrong is the outcome)."""
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                status = await self._post(due)
        except TimeoutError:
            error = f"no answer within {self.timeout_s:g} s"
        except UnsafeTarget as exc:
            error = f"target refused: {exc}"
        except SealingUnavailable as exc:
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except OSError as exc:  # connecting
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            # Whatever else one attempt runs into (a name the resolver cannot encode, a URL the
            # HTTP client refuses) is that delivery's failure: raised here, it would stop the
            # sender, and the delivery, claimed again after every restart, would stop it again.
            log.exception(
                "webhook attempt failed unexpectedly",
                extra={"delivery_id": str(due.delivery_id), "webhook_id": str(due.webhook_id)},
            )
            error = f"unexpected error ({type(exc).__name__})"
        elapsed = time.perf_counter() - started
        metrics.ATTEMPT_SECONDS.observe(elapsed)
        result = "error" if status is None else "accepted" if 200 <= status < 300 else "refused"
        metrics.ATTEMPTS.labels(result).inc()
        if error is not None:
            # Stored as text: PostgreSQL refuses NUL, and one refused row fails the whole batch.
            error = error.replace("\x00", "\\x00")[:500]
        return Outcome(due, attempted_at, int(elapsed * 1000), status, error)

    async def _post(self, due: DueDelivery) -> int:
        secret = self.box.open(due.webhook_id, due.sealed)
        target = parse_target(due.url)
        if target.literal is not None:
            addresses: list[Address] = [target.literal]
            self.policy.check(addresses)
        else:
            addresses = await self._reachable(due, target)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, due.body, timestamp),
            DELIVERY_HEADER: str(due.delivery_id),
            KIND_HEADER: due.kind,
            ATTEMPT_HEADER: str(due.attempts + 1),
        }
        url, extensions = _pinned(target, addresses[0], headers)
        request = self.http.build_request(
            "POST", url, content=due.body, headers=headers, extensions=extensions
        )
        response = await self.http.send(request, stream=True, follow_redirects=False)
        # The receiver's body is not read: only its status counts.
        await response.aclose()
        return response.status_code

    async def _reachable(self, due: DueDelivery, target: Target) -> list[Address]:
        """The addresses a name resolves to, all of them allowed. The account reads the
        delivery log: it is told the same thing whether the name does not resolve or resolves
        to a refused address, and never which address (a webhook must not be a way to look
        names up in the private network); the operator's log says more."""
        try:
            addresses = await self.resolver(target.host, target.port)
            self.policy.check(addresses)
        except (OSError, UnsafeTarget) as exc:
            log.info(
                "webhook host not reachable",
                extra={"webhook_id": str(due.webhook_id), "host": target.host, "error": str(exc)},
            )
            raise UnsafeTarget(UNREACHABLE_NAME) from None
        return addresses


def _pinned(
    target: Target, address: Address, headers: dict[str, str]
) -> tuple[httpx.URL, dict[str, object]]:
    """The request URL that connects to ``address`` (the one checked), with the name as Host and
    TLS name. The URL is built from the checked parts: the HTTP client never reads a host of
    its own from the account's text."""
    url = httpx.URL(target.url_to(address))
    if target.literal is not None:
        return url, {}
    headers["Host"] = target.host_header
    extensions: dict[str, object] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    return url, extensions
