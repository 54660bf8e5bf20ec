"""What a client is and where it connects from: user-agent parsing and the client's IP.

Both read attacker-controlled text on the request path, so both bound their work and neither
ever raises on bad input: a garbled user-agent becomes "Unknown device", a garbled forwarding
header is ignored.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Literal, cast

import user_agents
from starlette.types import Scope

from .exceptions import ConfigurationError

DeviceKind = Literal["mobile", "tablet", "desktop", "bot", "other"]
KINDS: frozenset[str] = frozenset({"mobile", "tablet", "desktop", "bot", "other"})
# Parsing runs ~1,300 regexes over the whole string (pure Python), so its cost grows with the
# length: real user-agents, in-app browsers included, fit in 256 characters; junk of that
# length costs a few milliseconds uncached, 5 KB of junk would cost tens.
MAX_USER_AGENT_CHARS = 256
# Our own LRU: user-agents' cache holds 200 entries and is emptied whole when full.
USER_AGENT_CACHE_SIZE = 4096

_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
# Tools ua-parser does not know (python-httpx/0.27.2) still name themselves in the first token.
_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,39})/(\d{1,9})(?:\.(\d{1,9}))?")


@dataclass(frozen=True, slots=True)
class Device:
    """One client as its user-agent describes it; `None` where the user-agent does not say.

    Names are display names ("macOS", "Safari"), and `browser_version` is the major version
    ("131"), or major.minor ("8.5") for tools such as curl, whose minor releases matter.
    """

    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device_family: str | None
    brand: str | None
    model: str | None
    kind: DeviceKind
    label: str

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def to_json(self) -> str:
        """Compact JSON for one store field; unknown (`None`) fields are left out.

        ASCII-only, so a lone surrogate from a hostile user-agent cannot break a UTF-8 store.
        """
        known = {name: value for name, value in self.to_dict().items() if value is not None}
        return json.dumps(known, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Device | None:
        """Read `to_json()` back; `None` for anything else. Unknown keys are ignored."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        kind, label = data.get("kind"), data.get("label")
        optional = {name: data.get(name) for name in _OPTIONAL_FIELDS}
        if not (isinstance(kind, str) and kind in KINDS and isinstance(label, str)):
            return None
        if not all(value is None or isinstance(value, str) for value in optional.values()):
            return None
        return cls(**optional, kind=cast(DeviceKind, kind), label=label)


_OPTIONAL_FIELDS = tuple(
    field.name for field in fields(Device) if field.name not in ("kind", "label")
)


def parse_user_agent(user_agent: str) -> Device:
    """The `Device` a user-agent describes. Cached, length-capped, and never raises."""
    return _parse_capped(user_agent[:MAX_USER_AGENT_CHARS])


@lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def _parse_capped(user_agent: str) -> Device:
    try:
        parsed = user_agents.parse(user_agent)
    except Exception:
        # A failure in the third-party rules must cost the user a label, never a request.
        return Device(None, None, None, None, None, None, None, "other", "Unknown device")
    return _device(parsed, user_agent)


def _device(parsed: Any, user_agent: str) -> Device:
    kind = _kind(parsed)
    browser, browser_version = _browser(parsed, user_agent, kind)
    os_name = _known(parsed.os.family)
    os_name = _OS_NAMES.get(os_name or "", os_name)
    family, brand = _known(parsed.device.family), parsed.device.brand
    # A phone or tablet is named by its model when the user-agent names a real brand.
    named = kind in ("mobile", "tablet") and brand and not brand.startswith("Generic")
    place = family if named else os_name
    return Device(
        browser=browser,
        browser_version=browser_version,
        os=os_name,
        os_version=parsed.os.version_string or None,
        device_family=family,
        brand=brand,
        model=parsed.device.model,
        kind=kind,
        label=_label(kind, browser, browser_version, place),
    )


def _browser(parsed: Any, user_agent: str, kind: DeviceKind) -> tuple[str | None, str | None]:
    """The browser's display name and version: major, or major.minor when kind is "other"."""
    browser = _known(parsed.browser.family)
    version: tuple[int | str, ...] = parsed.browser.version
    if browser is None and (product := _PRODUCT.match(user_agent)) and product[1] != "Mozilla":
        browser, version = product[1], tuple(part for part in product.groups()[1:] if part)
    shown_parts = 2 if kind == "other" else 1
    shown_version = ".".join(str(part) for part in version[:shown_parts]) or None
    return _BROWSER_NAMES.get(browser or "", browser), shown_version


def _kind(parsed: Any) -> DeviceKind:
    if parsed.is_bot:
        return "bot"
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    return "desktop" if parsed.is_pc else "other"


def _known(family: str | None) -> str | None:
    return None if not family or family == "Other" else family


def _label(kind: str, browser: str | None, version: str | None, place: str | None) -> str:
    """Such as "Chrome 131 on macOS". Safari has no version: the OS release already dates it."""
    if kind == "bot":
        return browser or "Unknown bot"
    name = f"{browser} {version}" if browser and version and browser != "Safari" else browser
    if name and place:
        return f"{name} on {place}"
    if place:
        return f"Unknown browser on {place}"
    return name or "Unknown device"


# -- client IP ---------------------------------------------------------------------------------

IPAddress = IPv4Address | IPv6Address
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]
# The right end of a forwarding header is all we read: enough for any real proxy chain.
MAX_FORWARDED_HOPS = 64
MAX_FORWARDED_BYTES = 8192
_MAX_NODE_CHARS = 64  # "[v6 with an IPv4 tail]:port" is 53


class TrustedProxies:
    """The proxies whose forwarding header we believe, and which header they write.

    Exactly one header is read, chosen here rather than by precedence: a proxy that appends to
    `X-Forwarded-For` passes a client's own `Forwarded` header through untouched (and the other
    way round), so reading whichever is present would let any client choose its IP.
    """

    def __init__(
        self, cidrs: str | Iterable[str], *, header: ForwardedHeader = "x-forwarded-for"
    ) -> None:
        if header not in ("x-forwarded-for", "forwarded"):
            raise ConfigurationError(
                f"trusted proxies header must be 'x-forwarded-for' or 'forwarded', not {header!r}"
            )
        self.header: ForwardedHeader = header
        self._header_name = header.encode("ascii")
        self._networks = tuple(
            _network(cidr) for cidr in ([cidrs] if isinstance(cidrs, str) else cidrs)
        )

    def __contains__(self, address: object) -> bool:
        """Is this address (an `ipaddress` object or a string) one of our proxies?"""
        if isinstance(address, str):
            address = _parse_ip(address)
        if not isinstance(address, (IPv4Address, IPv6Address)):
            return False
        address = _unmap(address)
        return any(address in network for network in self._networks)

    def __repr__(self) -> str:
        cidrs = [str(network) for network in self._networks]
        return f"TrustedProxies({cidrs!r}, header={self.header!r})"

    def forwarded_nodes(self, scope: Scope) -> list[str]:
        """The raw client nodes of our header, left to right, from its last hops only."""
        items = _tail_items(scope.get("headers") or (), self._header_name)
        return [_forwarded_for(item) for item in items] if self.header == "forwarded" else items


def _network(cidr: str) -> IPv4Network | IPv6Network:
    try:
        return ipaddress.ip_network(cidr.strip(), strict=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"trusted_proxies: {cidr!r} is not a network such as '10.0.0.0/8', '::1/128' "
            f"or a single address ({exc})"
        ) from None


def client_ip(scope: Scope, trusted: TrustedProxies | None) -> str | None:
    """The client's IP address as a canonical string; `None` when the peer is not an IP.

    The ASGI `client` is the answer unless it is a trusted proxy. Then the forwarding header is
    walked from the right, skipping trusted hops: the first untrusted hop is the client, since
    everything left of it was written by parties we cannot vouch for. If every hop is trusted,
    or the walk meets a value that is not an address ("unknown", "_hidden", garbage), the
    answer is the last hop reached, the left-most address a trusted proxy vouched for.
    """
    peer = _peer(scope)
    if peer is None or trusted is None or peer not in trusted:
        return None if peer is None else str(peer)
    vouched = peer
    for node in reversed(trusted.forwarded_nodes(scope)):
        hop = _parse_node(node)
        if hop is None:
            break
        if hop not in trusted:
            return str(hop)
        vouched = hop
    return str(vouched)


def _peer(scope: Scope) -> IPAddress | None:
    client = scope.get("client")
    if not isinstance(client, (tuple, list)) or not client or not isinstance(client[0], str):
        return None  # a Unix socket, or a test client's placeholder name
    return _parse_ip(client[0])


def _tail_items(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Comma-separated items of every `name` header, in order, keeping only the right end."""
    joined = b",".join(value for header, value in headers if header == name)
    if not joined:
        return []
    items = joined[-MAX_FORWARDED_BYTES:].decode("latin-1").rsplit(",", MAX_FORWARDED_HOPS)
    if len(joined) > MAX_FORWARDED_BYTES or len(items) > MAX_FORWARDED_HOPS:
        items = items[1:]  # cut in two, or holding every item left of the last hops
    return items


def _forwarded_for(element: str) -> str:
    """The `for=` node of one RFC 7239 element, unquoted; "" when it has none."""
    for pair in element.split(";"):
        name, sep, value = pair.partition("=")
        if sep and name.strip().lower() == "for":
            value = value.strip()
            return value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return ""


def _parse_node(node: str) -> IPAddress | None:
    """An address from "192.0.2.1", "192.0.2.1:80", "2001:db8::1" or "[2001:db8::1]:80".

    Ports are dropped unread: they cannot change which client this is.
    """
    node = node.strip()
    if node.startswith("["):
        host, sep, port = node[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            return None
        return _parse_ip(host) if ":" in host else None  # brackets are for IPv6 only
    if node.count(":") == 1:
        node = node.partition(":")[0]
    return _parse_ip(node)


@lru_cache(maxsize=4096)  # the same few peers and proxies ask again on every request
def _parse_ip(text: str) -> IPAddress | None:
    if len(text) > _MAX_NODE_CHARS:
        return None
    try:
        return _unmap(ipaddress.ip_address(text))
    except ValueError:
        return None


def _unmap(address: IPAddress) -> IPAddress:
    """::ffff:192.0.2.1 is 192.0.2.1: dual-stack sockets report IPv4 peers that way."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
