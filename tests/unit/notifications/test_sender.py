"""One attempt of the sender: whatever goes wrong is that delivery's outcome, never a raise."""

from __future__ import annotations

import asyncio
import uuid
from typing import cast

import httpx
import pytest

from notifications.queue import DeliveryQueue, DueDelivery
from notifications.sealing import SecretBox, new_key_setting, new_secret
from notifications.sender import Sender
from notifications.targets import Address, AddressPolicy


def due(box: SecretBox, url: str) -> DueDelivery:
    webhook = uuid.uuid4()
    return DueDelivery(
        uuid.uuid4(), webhook, "upload.stored", url, box.seal(webhook, new_secret()), b"{}", 0
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
        sender = Sender(
            cast(DeliveryQueue, None),  # an attempt does not touch the queue
            box,
            AddressPolicy(),
            http,
            asyncio.Event(),
            delays_s=[1.0],
            timeout_s=1.0,
            concurrency=1,
            poll_s=1.0,
            resolver=resolver,
        )
        outcome = await sender.attempt(due(box, "https://hooks.example.com/h"))
    assert outcome.status_code is None
    assert outcome.error
    assert "\x00" not in outcome.error
    assert not outcome.succeeded
