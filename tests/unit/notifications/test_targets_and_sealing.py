"""Webhook URLs and the addresses deliveries may reach; secrets sealed at rest."""

from __future__ import annotations

import ipaddress
import uuid

import pytest

from notifications import AddressPolicy, SealingUnavailable, SecretBox, UnsafeTarget, parse_target
from notifications.sealing import new_key_setting, new_secret


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("https://user:pw@example.com/hook", "user name or password"),
        ("https://token@example.com/hook", "user name or password"),
        ("https://example.com/hook#x", "fragment"),
        ("https:///hook", "no host"),
        ("https://exa mple.com/", "spaces or control"),
        ("https://example.com:99999/", "parsed"),
        ("https://" + "a" * 2100 + ".com/", "longer than"),
        ("http://" + "é" * 60 + ".com/", "not a valid name"),  # over 63 bytes in IDNA
        ("http://a<b.com/", "not a valid name"),
        ("http://-a.com/", "not a valid name"),
        ("http://%31%32%37.0.0.1/", "not a valid name"),
        ("http://example.com:0/", "port"),
    ],
)
def test_a_bad_url_is_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(UnsafeTarget, match=why):
        parse_target(url)


def test_a_good_url_is_parsed() -> None:
    target = parse_target("https://hooks.example.com/artstore?x=1")
    assert (target.scheme, target.host, target.port, target.literal) == (
        "https",
        "hooks.example.com",
        443,
        None,
    )
    assert parse_target("http://127.0.0.1:8123/h").literal == ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0/", "0.0.0.0"),
        ("http://0xa9.254.169.254/", "169.254.169.254"),
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "127.0.0.1"),  # full-width
    ],
)
def test_every_form_the_resolver_reads_as_an_address_is_taken_as_that_address(
    url: str, address: str
) -> None:
    target = parse_target(url)
    assert target.literal == ipaddress.ip_address(address)
    assert target.url_to(target.literal) == f"http://{target.host}/"
    assert AddressPolicy().refusal(target.literal) is not None


def test_a_name_is_taken_in_the_ascii_form_the_resolver_looks_up() -> None:
    target = parse_target("https://Bücher.Example:8443/hook?a=1")
    assert (target.host, target.literal) == ("xn--bcher-kva.example", None)
    assert target.host_header == "xn--bcher-kva.example:8443"
    address = ipaddress.ip_address("2001:db8::5")
    assert target.url_to(address) == "https://[2001:db8::5]:8443/hook?a=1"
    assert parse_target("https://hooks.example.com:443").url_to(address) == (
        "https://[2001:db8::5]/"
    )
    assert parse_target("https://hooks.example.com:443").host_header == "hooks.example.com"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 to 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 to 10.0.0.1
        "64:ff9b:1::808:808",  # local-use NAT64
        "2002:a00:1::1",  # 6to4 to 10.0.0.1
        "::10.0.0.1",  # IPv4-compatible
        "::127.0.0.1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_private_and_special_addresses_are_refused_by_default(address: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])
def test_ipv6_addresses_that_reach_public_ones_pass(address: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) is None


def test_an_ipv6_address_reaching_a_denied_ipv4_one_is_refused() -> None:
    policy = AddressPolicy.of([], ["8.8.8.0/24"])
    assert policy.refusal(ipaddress.ip_address("64:ff9b::808:808")) is not None
    assert policy.refusal(ipaddress.ip_address("2002:808:808::1")) is not None


def test_public_addresses_pass_unless_denied_and_allowed_networks_open_private_ones() -> None:
    public = ipaddress.ip_address("93.184.216.34")
    assert AddressPolicy().refusal(public) is None
    assert AddressPolicy.of([], ["93.184.216.0/24"]).refusal(public) is not None
    loopback = ipaddress.ip_address("127.0.0.1")
    assert AddressPolicy.of(["127.0.0.1/32"], []).refusal(loopback) is None
    assert AddressPolicy.of(["127.0.0.1/32"], []).refusal(ipaddress.ip_address("127.0.0.2"))


def test_one_refused_address_among_several_refuses_the_host() -> None:
    policy = AddressPolicy()
    with pytest.raises(UnsafeTarget):
        policy.check([ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.1")])
    with pytest.raises(UnsafeTarget, match="no address"):
        policy.check([])


def test_a_bad_network_setting_is_named() -> None:
    with pytest.raises(ValueError, match="not-a-net"):
        AddressPolicy.of(["not-a-net"], [])


def test_a_sealed_secret_opens_only_for_its_webhook_and_with_a_listed_key() -> None:
    box = SecretBox.from_setting([new_key_setting("k2"), new_key_setting("k1")])
    webhook, other = uuid.uuid4(), uuid.uuid4()
    secret = new_secret()
    sealed = box.seal(webhook, secret)
    assert sealed.key_id == "k2"
    assert secret.encode() not in sealed.blob
    assert box.open(webhook, sealed) == secret
    with pytest.raises(SealingUnavailable):
        box.open(other, sealed)  # copied onto another webhook's row
    with pytest.raises(SealingUnavailable, match="no longer lists"):
        SecretBox.from_setting([new_key_setting("k3")]).open(webhook, sealed)


def test_without_keys_nothing_is_sealed_and_bad_keys_are_refused() -> None:
    assert not SecretBox.from_setting([]).ready
    with pytest.raises(SealingUnavailable):
        SecretBox([]).seal(uuid.uuid4(), "x")
    with pytest.raises(SealingUnavailable):
        SecretBox.from_setting(["k1:c2hvcnQ="])
    with pytest.raises(SealingUnavailable):
        SecretBox.from_setting(["no-colon"])
