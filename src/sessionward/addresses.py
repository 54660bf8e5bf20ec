"""Where a client connects from: its IP, read through trusted proxies only.

Forwarding headers are attacker-controlled text on the request path, so reading them is
bounded and never raises: a garbled header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

from starlette.types import Scope

from .exceptions import ConfigurationError

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
        self.networks = tuple(
            _network(cidr) for cidr in ([cidrs] if isinstance(cidrs, str) else cidrs)
        )

    def __contains__(self, address: object) -> bool:
        """Is this address (an `ipaddress` object or a string) one of our proxies?"""
        if isinstance(address, str):
            address = _parse_ip(address)
        if not isinstance(address, (IPv4Address, IPv6Address)):
            return False
        if not self.networks:
            return False
        address = _unmap(address)
        return any(address in network for network in self.networks)

    def __repr__(self) -> str:
        cidrs = [str(network) for network in self.networks]
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
    found = _peer(scope)
    if found is None:
        return None
    peer, text = found
    # No proxies configured, the usual case, asks nothing of `ipaddress` (callgrind: 5.8 k
    # instructions a request before the parse was cached, 1 k now).
    if trusted is None or not trusted.networks or peer not in trusted:
        return text
    vouched = peer
    for node in reversed(trusted.forwarded_nodes(scope)):
        hop = _parse_node(node)
        if hop is None:
            break
        if hop not in trusted:
            return str(hop)
        vouched = hop
    return str(vouched)


def from_trusted_proxy(scope: Scope, trusted: TrustedProxies) -> bool:
    """Whether the request reached us through one of our proxies, whose headers we believe."""
    found = _peer(scope)
    return found is not None and found[0] in trusted


def _peer(scope: Scope) -> tuple[IPAddress, str] | None:
    """The ASGI peer as an address and its canonical text; `None` if it is not an IP."""
    client = scope.get("client")
    if not isinstance(client, (tuple, list)) or not client or not isinstance(client[0], str):
        return None  # a Unix socket, or a test client's placeholder name
    # uvicorn's --proxy-headers writes a forwarded value here: checked before the cache too.
    return None if len(client[0]) > _MAX_NODE_CHARS else _address(client[0])


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
    if len(text) > _MAX_NODE_CHARS:  # never a key of the cache: at most 4096 short strings
        return None
    found = _address(text)
    return None if found is None else found[0]


@lru_cache(maxsize=4096)  # a server meets the same peers, and hops, again and again
def _address(text: str) -> tuple[IPAddress, str] | None:
    """`text` as an IP address and in its canonical spelling; `None` if it is not one.

    Cached by the text, whatever a forwarding header sends: the bound keeps a spray of
    made-up hops from growing it, and each costs what it did uncached.
    """
    try:
        address = _unmap(ipaddress.ip_address(text))
    except ValueError:
        return None
    return address, str(address)


def _unmap(address: IPAddress) -> IPAddress:
    """::ffff:192.0.2.1 is 192.0.2.1: dual-stack sockets report IPv4 peers that way."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
