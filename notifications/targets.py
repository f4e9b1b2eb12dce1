"""Where a webhook may point: the URL's shape, and the addresses a delivery may reach.

A webhook URL is an account's claim about where ArtStore should connect; unchecked, it would
let any account make the dispatcher call into the private network (cloud metadata endpoints,
databases, admin consoles). So:

- the URL must be ``http`` or ``https``, at most :data:`MAX_URL_LENGTH` characters, with a host
  and no user name or password in it (secrets belong in the signature, not in a URL that is
  logged and shown back), and no fragment;
- every address its host resolves to must be public (``ipaddress``'s ``is_global``) and not in
  the denied networks, unless it is in the allowed networks: loopback, private, link-local,
  shared, multicast and reserved ranges are refused by default. Checked when the webhook is
  registered (for an address literal or a name that resolves now) and again before every
  attempt, on the addresses the attempt then connects to (see ``notifications.sender``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeTarget(ValueError):
    """A webhook URL or address ArtStore will not send to; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL's parts."""

    url: str
    scheme: str
    host: str
    port: int
    literal: Address | None
    """The host as an address, when the URL names one."""


def parse_target(url: str) -> Target:
    """Check a webhook URL's shape; :class:`UnsafeTarget` naming the first thing wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UnsafeTarget("the URL contains spaces or control characters")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"the URL cannot be parsed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTarget("the URL's scheme must be http or https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("the URL must not contain a user name or password")
    if parts.fragment:
        raise UnsafeTarget("the URL must not contain a fragment (#...)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeTarget("the URL has no host")
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        if not all(label and len(label) <= 63 for label in host.split(".")) or len(host) > 253:
            raise UnsafeTarget("the URL's host is not a valid name") from None
    return Target(url, scheme, host, port or (443 if scheme == "https" else 80), literal)


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses deliveries may reach (see the module's docstring)."""

    allowed: tuple[Network, ...] = ()
    denied: tuple[Network, ...] = ()

    @classmethod
    def of(cls, allowed: Iterable[str], denied: Iterable[str]) -> AddressPolicy:
        """From CIDR strings (settings); ValueError names a bad one."""
        return cls(_networks(allowed), _networks(denied))

    def refusal(self, address: Address) -> str | None:
        """Why ``address`` may not be reached, or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return None
        if any(address in network for network in self.denied):
            return f"{address} is in a denied network"
        if not address.is_global or address.is_multicast:
            return (
                f"{address} is not a public address (loopback, private, link-local or "
                "reserved); an operator may allow its network with "
                "ARTSTORE_NOTIFICATIONS_ALLOWED_NETWORKS"
            )
        return None

    def check(self, addresses: Sequence[Address]) -> None:
        """:class:`UnsafeTarget` unless every one of ``addresses`` may be reached."""
        if not addresses:
            raise UnsafeTarget("the host resolves to no address")
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                raise UnsafeTarget(why)


def _networks(values: Iterable[str]) -> tuple[Network, ...]:
    out: list[Network] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network in CIDR form (e.g. 10.0.0.0/8)") from None
    return tuple(out)
