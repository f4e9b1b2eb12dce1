"""The webhook signature format, checked against a vector computed here from its definition
(HMAC-SHA256 over ``f"{t}.".encode() + body``, hex), and the SDK verifier's refusals."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from events.webhooks import sign
from producers import WebhookSignatureError, verify_webhook

SECRET = "whsec_test-secret-0123456789"
BODY = b'{"kind":"upload.stored","data":{"file_id":"f"}}'
T = 1_760_000_000


def independent(secret: str, t: int, body: bytes) -> str:
    message = f"{t}.".encode("ascii") + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_the_header_is_the_timestamp_and_the_hmac_of_timestamp_dot_body() -> None:
    header = sign(SECRET, BODY, T)
    assert header == f"t={T},v1={independent(SECRET, T, BODY)}"


def test_a_fixed_vector_computed_outside_python() -> None:
    # printf '1760000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_x'
    expected = "27675abbf7cf671af98cae6df1c8356ec29871061c85ac3be4dc389b49b6b055"
    assert sign("whsec_x", b'{"a":1}', 1_760_000_000) == f"t=1760000000,v1={expected}"


def test_a_fresh_signature_is_accepted_and_returns_its_time() -> None:
    assert verify_webhook(BODY, sign(SECRET, BODY, T), SECRET, now=T + 10) == T


@pytest.mark.parametrize("age", [301, 3600])
def test_a_signature_older_than_five_minutes_is_refused(age: int) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(BODY, sign(SECRET, BODY, T), SECRET, now=T + age)
    assert caught.value.reason == "expired"


def test_a_signature_at_the_limit_is_accepted() -> None:
    verify_webhook(BODY, sign(SECRET, BODY, T), SECRET, now=T + 300)


def test_a_signature_from_the_future_is_refused() -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(BODY, sign(SECRET, BODY, T), SECRET, now=T - 301)
    assert caught.value.reason == "future"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, header: (body + b" ", header),
        lambda body, header: (body.replace(b"stored", b"rejected"), header),
        lambda body, header: (body, header.replace(f"t={T}", f"t={T + 1}")),
        lambda body, header: (body, header[:-1] + ("0" if header[-1] != "0" else "1")),
    ],
    ids=["body-extended", "body-changed", "timestamp-changed", "signature-changed"],
)
def test_a_tampered_delivery_is_refused(tamper: object) -> None:
    body, header = tamper(BODY, sign(SECRET, BODY, T))  # type: ignore[operator]
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(body, header, SECRET, now=T)
    assert caught.value.reason == "mismatch"


def test_another_secret_is_refused_and_either_of_two_during_a_rotation_is_accepted() -> None:
    header = sign(SECRET, BODY, T)
    with pytest.raises(WebhookSignatureError):
        verify_webhook(BODY, header, "whsec_other", now=T)
    verify_webhook(BODY, header, ["whsec_other", SECRET], now=T)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        f"t={T}",
        f"t=abc,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        "x" * 5000,
        f"{sign(SECRET, BODY, T)},t={T - 1000}",
    ],
)
def test_a_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(BODY, header, SECRET, now=T)
    assert caught.value.reason == "malformed"


def test_non_ascii_in_the_signature_is_a_mismatch_not_a_crash() -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(BODY, f"t={T},v1=ä{'0' * 63}", SECRET, now=T)
    assert caught.value.reason == "mismatch"


def test_parsed_json_instead_of_the_raw_body_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        verify_webhook({"kind": "x"}, sign(SECRET, BODY, T), SECRET, now=T)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", ["", [], [""], [SECRET, ""], b"whsec_bytes", [b"whsec_bytes"]])
def test_an_empty_or_non_text_secret_is_an_error_not_a_key_anybody_can_sign_with(
    secret: object,
) -> None:
    forged = sign("", BODY, T)  # what anybody can compute without any secret
    with pytest.raises(ValueError, match="give the webhook's secret"):
        verify_webhook(BODY, forged, secret, now=T)  # type: ignore[arg-type]
