"""Where a webhook may point: the URL's shape, and the addresses a delivery may reach.

A webhook URL is an account's claim about where ArtStore should connect; unchecked, it would
let any account make the dispatcher call into the private network (cloud metadata endpoints,
databases, admin consoles). So:

- the URL must be ``http`` or ``https``, at most :data:`MAX_URL_LENGTH` characters, with a host
  and no user name or password in it (secrets belong in the signature, not in a URL that is
  logged and shown back), and no fragment;
- its host is an address, in any form the resolver reads as one (``2130706433``, ``0x7f.1``
  and ``127.1`` are 127.0.0.1, and are checked as such), or a name of letters, digits, hyphens
  and underscores, a non-ASCII name taken in its IDNA form (the one the resolver looks up);
- every address its host resolves to must be public (``ipaddress``'s ``is_global``) and not in
  the denied networks, unless it is in the allowed networks: loopback, private, link-local,
  shared, multicast and reserved ranges are refused by default. Checked when the webhook is
  registered (for an address) and again before every attempt, on the addresses the attempt
  then connects to (see ``notifications.sender``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
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
    """As registered (and shown back to the account)."""
    scheme: str
    host: str
    """The name in ASCII (IDNA, as the resolver looks it up), or the address's canonical text."""
    port: int
    literal: Address | None
    """The host as an address, when the URL names one (in any form the resolver would read
    as one: ``2130706433`` and ``0x7f.1`` are 127.0.0.1)."""
    explicit_port: bool
    path: str
    """Path and query, as sent."""

    def url_to(self, address: Address) -> str:
        """This URL with ``address`` as its host: what a delivery connects to."""
        text = f"[{address}]" if address.version == 6 else str(address)
        port = f":{self.port}" if self.explicit_port else ""
        return f"{self.scheme}://{text}{port}{self.path}"

    @property
    def host_header(self) -> str:
        """The ``Host`` a receiver expects: the name, and the port unless it is the default."""
        return f"{self.host}:{self.port}" if self.explicit_port else self.host


def audited(url: str) -> dict[str, str]:
    """What the audit log keeps of a webhook URL: where deliveries go (scheme, host and port)
    and a SHA-256 of the whole URL to match a registration with its deletion. Its path and
    query often carry a receiver's own token, which the people who read the audit log must not
    learn; the account sees its URLs whole."""
    parts = urlsplit(url)
    return {
        "destination": f"{parts.scheme}://{parts.netloc}",
        "url_sha256": hashlib.sha256(url.encode()).hexdigest(),
    }


_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC = re.compile(r"^[0-9a-fx.]+$")


def _host(raw: str) -> tuple[str, Address | None]:
    """The host in ASCII and the address it names, if any; :class:`UnsafeTarget` otherwise."""
    host = raw.rstrip(".").lower()
    if not host:
        raise UnsafeTarget("the URL has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UnsafeTarget("the URL's host is not a valid name") from None
    try:
        literal: Address = ipaddress.ip_address(host)
        return str(literal), literal
    except ValueError:
        pass
    if _NUMERIC.fullmatch(host):
        # The resolver reads 2130706433, 0x7f.1, 017700000001 and 127.1 as IPv4 addresses.
        try:
            literal = ipaddress.IPv4Address(socket.inet_aton(host))
            return str(literal), literal
        except OSError:
            pass
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise UnsafeTarget("the URL's host is not a valid name")
    return host, None


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
    host, literal = _host(parts.hostname or "")
    if port == 0:
        raise UnsafeTarget("the URL's port must be 1 to 65535")
    default = 443 if scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    explicit = port is not None and port != default
    return Target(url, scheme, host, port or default, literal, explicit, path)


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
        """Why ``address`` may not be reached, or None. An IPv6 address that carries an IPv4
        one to a translator or tunnel (mapped, NAT64, 6to4, IPv4-compatible) is judged by the
        IPv4 address it reaches."""
        if any(address in network for network in self.allowed):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            carried = _carried_ipv4(address)
            if carried is not None:
                return self.refusal(carried)
            if address in _LOCAL_NAT64:
                return f"{address} is in the local-use NAT64 network {_LOCAL_NAT64}"
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


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through a translator or a tunnel, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _networks(values: Iterable[str]) -> tuple[Network, ...]:
    out: list[Network] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network in CIDR form (e.g. 10.0.0.0/8)") from None
    return tuple(out)
