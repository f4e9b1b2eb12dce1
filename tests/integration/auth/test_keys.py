"""Key rotation: old tokens verify until they expire; the JWKS keeps keys live tokens need."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import jwt
import pytest

from auth import HttpJwksSource, InvalidToken, TokenVerifier
from tests.helpers import wait_until
from tests.integration.auth.conftest import ISSUER, AuthHarness

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def published_kids(harness: AuthHarness) -> set[str]:
    return {k["kid"] for k in (await harness.http.get("/.well-known/jwks.json")).json()["keys"]}


async def test_a_retired_key_verifies_its_commands_until_they_are_too_old(
    harness: AuthHarness,
) -> None:
    """A backlog that crosses a rotation: a command recorded with a token signed by the old
    key, at the last instant that token was valid, is verified at its record time a maximum
    command age later; only then does the key leave the JWKS."""
    keys = harness.runtime.keys
    client = await harness.create("rotation-client")
    old_token = await harness.access_token(client)
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    new_kid = await keys.rotate_if_due(force=True)
    assert new_kid is not None
    assert new_kid != old_kid
    new_token = await harness.access_token(client)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert await published_kids(harness) >= {old_kid, new_kid}
    await harness.runtime.verifier.verify(old_token)

    settings = harness.runtime.auth_settings
    recorded = harness.clock() + settings.token_ttl + settings.leeway - timedelta(seconds=1)
    # Long after the token expired, its command is still in the backlog: still verifiable.
    harness.clock.advance(
        settings.token_ttl + settings.leeway + settings.max_command_age - timedelta(seconds=1)
    )
    await keys.load()
    assert old_kid in await published_kids(harness)
    await harness.runtime.verifier.verify(old_token, at=recorded)
    with pytest.raises(InvalidToken) as expired:
        await harness.runtime.verifier.verify(old_token)
    assert expired.value.reason == "expired"

    # Once no command it signed can be applied any more, the retired key leaves the JWKS.
    harness.clock.advance(settings.key_publish_margin + timedelta(seconds=2))
    await keys.load()
    assert old_kid not in await published_kids(harness)
    with pytest.raises(InvalidToken):
        await harness.runtime.verifier.verify(old_token, at=recorded)


async def test_rotation_follows_the_schedule_with_one_rotator(harness: AuthHarness) -> None:
    keys = harness.runtime.keys
    assert await keys.rotate_if_due() is None
    harness.clock.advance(harness.runtime.auth_settings.key_rotation_period)
    results = await asyncio.gather(*(keys.rotate_if_due() for _ in range(5)))
    created = [kid for kid in results if kid is not None]
    assert len(created) == 1
    assert keys.signing_key().kid == created[0]


async def key_rotations_metric(harness: AuthHarness) -> float:
    lines = (await harness.http.get("/metrics")).text.splitlines()
    (line,) = (m for m in lines if m.startswith("artstore_auth_key_rotations_total "))
    return float(line.split()[-1])


async def test_rotations_by_the_background_scheduler_are_counted(harness: AuthHarness) -> None:
    keys = harness.runtime.keys
    before = await key_rotations_metric(harness)
    old_kid = keys.signing_key().kid
    harness.clock.advance(harness.runtime.auth_settings.key_rotation_period)
    stop = asyncio.Event()
    scheduler = asyncio.create_task(keys.run(stop))
    try:
        await wait_until(
            lambda: keys.signing_key().kid != old_kid, message="scheduler rotated the key"
        )
    finally:
        stop.set()
        await scheduler
    assert await key_rotations_metric(harness) == before + 1


async def test_http_jwks_source_refetches_on_unknown_kid_but_bounded(
    harness: AuthHarness,
) -> None:
    ticks = [0.0]
    source = HttpJwksSource(
        f"{ISSUER}/.well-known/jwks.json",
        client=harness.http,
        min_refetch_interval=30,
        monotonic=lambda: ticks[0],
    )
    verifier = TokenVerifier(
        source,
        issuer=ISSUER,
        audience=harness.runtime.auth_settings.audience,
        clock=harness.clock,
    )
    client = await harness.create("jwks-client")
    await verifier.verify(await harness.access_token(client))
    assert source.fetch_count == 1
    await harness.runtime.keys.rotate_if_due(force=True)
    ticks[0] += 31
    # A new kid appears: the first token signed with it triggers one refetch.
    await verifier.verify(await harness.access_token(client))
    assert source.fetch_count == 2
    # Made-up kids do not cause a fetch each.
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "made-up"}
    token = await harness.access_token(client)
    _, payload, signature = token.split(".")
    forged_header = jwt.utils.base64url_encode(jwt.api_jws.json.dumps(header).encode()).decode()
    for _ in range(5):
        with pytest.raises(InvalidToken) as info:
            await verifier.verify(f"{forged_header}.{payload}.{signature}")
        assert info.value.reason == "unknown_kid"
    assert source.fetch_count == 2
