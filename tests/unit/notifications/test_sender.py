"""One attempt of the sender: whatever goes wrong is that delivery's outcome, never a raise."""

from __future__ import annotations

import asyncio
import uuid
from typing import cast

import httpx
import pytest

from notifications.queue import DeliveryQueue, DueDelivery
from notifications.sealing import SecretBox, new_key_setting, new_secret
from notifications.sender import Resolver, Sender, resolve
from notifications.targets import Address, AddressPolicy


def due(box: SecretBox, url: str) -> DueDelivery:
    webhook = uuid.uuid4()
    return DueDelivery(
        uuid.uuid4(), webhook, "upload.stored", url, box.seal(webhook, new_secret()), b"{}", 0
    )


def sender(box: SecretBox, http: httpx.AsyncClient, resolver: Resolver = resolve) -> Sender:
    return Sender(
        cast(DeliveryQueue, None),  # an attempt does not touch the queue
        box,
        AddressPolicy(),
        http,
        asyncio.Event(),
        delays_s=[1.0],
        timeout_s=5.0,
        concurrency=1,
        poll_s=1.0,
        resolver=resolver,
    )


@pytest.mark.parametrize(
    "failure",
    [
        UnicodeError("encoding with 'idna' codec failed (UnicodeError: label too long)"),
        ValueError("something nobody expected"),
        OSError("a resolver error with a NUL \x00 in it"),
    ],
)
async def test_an_attempt_that_fails_unexpectedly_is_its_outcome(failure: Exception) -> None:
    async def resolver(host: str, port: int) -> list[Address]:
        raise failure

    box = SecretBox.from_setting([new_key_setting()])
    async with httpx.AsyncClient() as http:
        outcome = await sender(box, http, resolver).attempt(due(box, "https://hooks.example.com/h"))
    assert outcome.status_code is None
    assert outcome.error
    assert "\x00" not in outcome.error
    assert not outcome.succeeded


async def test_the_log_does_not_tell_a_name_resolving_to_a_private_address_from_no_name() -> None:
    """The account reads the attempt's error: it must not learn internal names or addresses.
    Both names go through the real resolver (``localhost`` is in /etc/hosts)."""
    box = SecretBox.from_setting([new_key_setting()])
    async with httpx.AsyncClient() as http:
        private = await sender(box, http).attempt(due(box, "http://localhost:9/h"))
        missing = await sender(box, http).attempt(due(box, "http://nothing-here.invalid/h"))
    assert private.error is not None
    assert private.error == missing.error
    assert "127.0.0.1" not in private.error
