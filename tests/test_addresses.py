"""Client IPs: the peer, trusted proxy chains, spoofed and malformed forwarding headers."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.addresses import (
    MAX_FORWARDED_HOPS,
    TrustedProxies,
    _address,
    client_ip,
    from_trusted_proxy,
)
from sessionward.exceptions import ConfigurationError

PROXIES_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "::1", "fd00::/8"]
PROXIES = TrustedProxies(PROXIES_CIDRS)
FORWARDED_PROXIES = TrustedProxies(PROXIES_CIDRS, header="forwarded")


def scope(peer: str | None, *headers: tuple[str, str | bytes]) -> dict[str, Any]:
    """An HTTP scope from `peer` (port 4000) with the given headers, in order."""
    return {
        "type": "http",
        "client": None if peer is None else (peer, 4000),
        "headers": [
            (name.lower().encode(), value if isinstance(value, bytes) else value.encode("latin-1"))
            for name, value in headers
        ],
    }


def xff(value: str | bytes) -> tuple[str, str | bytes]:
    return ("X-Forwarded-For", value)


def fwd(value: str | bytes) -> tuple[str, str | bytes]:
    return ("Forwarded", value)


def test_the_peer_is_the_client_when_no_proxy_is_trusted() -> None:
    assert client_ip(scope("203.0.113.5", xff("198.51.100.7")), None) == "203.0.113.5"


def test_forwarding_headers_from_an_untrusted_peer_are_ignored() -> None:
    request = scope("203.0.113.5", xff("198.51.100.7"), fwd("for=198.51.100.8"))
    assert client_ip(request, PROXIES) == "203.0.113.5"
    assert client_ip(request, FORWARDED_PROXIES) == "203.0.113.5"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_ip(scope("10.0.0.1", xff("198.51.100.7")), PROXIES) == "198.51.100.7"


def test_trusted_hops_are_skipped_from_the_right() -> None:
    request = scope("10.0.0.2", xff("198.51.100.7, 10.1.1.1,172.16.0.5"))
    assert client_ip(request, PROXIES) == "198.51.100.7"


def test_spoofed_left_most_values_are_ignored() -> None:
    request = scope("10.0.0.2", xff("127.0.0.1, 6.6.6.6, 198.51.100.7, 10.1.1.1"))
    assert client_ip(request, PROXIES) == "198.51.100.7"


def test_header_lines_are_read_in_order_as_one_list() -> None:
    request = scope("10.0.0.2", xff("6.6.6.6, 198.51.100.7"), xff("10.1.1.1"))
    assert client_ip(request, PROXIES) == "198.51.100.7"
    request = scope("10.0.0.2", xff("198.51.100.7"), xff("203.0.113.9"))
    assert client_ip(request, PROXIES) == "203.0.113.9"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    assert client_ip(scope("10.0.0.2", xff("10.9.9.9, 10.1.1.1")), PROXIES) == "10.9.9.9"


def test_ipv6_is_returned_in_canonical_form() -> None:
    request = scope("::1", xff("2001:DB8:0:0::0001, fd00::5"))
    assert client_ip(request, PROXIES) == "2001:db8::1"


def test_ipv4_mapped_addresses_are_ipv4() -> None:
    request = scope("::ffff:10.0.0.1", xff("::ffff:198.51.100.7"))
    assert client_ip(request, PROXIES) == "198.51.100.7"
    assert client_ip(scope("::ffff:203.0.113.5"), PROXIES) == "203.0.113.5"


@pytest.mark.parametrize(
    ("value", "client"),
    [
        ("198.51.100.7:4711", "198.51.100.7"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
    ],
)
def test_ports_in_x_forwarded_for_are_dropped(value: str, client: str) -> None:
    assert client_ip(scope("10.0.0.1", xff(value)), PROXIES) == client


@pytest.mark.parametrize(
    ("value", "client"),
    [
        ("for=198.51.100.7", "198.51.100.7"),
        ('for="198.51.100.7:4711";proto=https;by=10.0.0.1', "198.51.100.7"),
        ('for="[2001:db8::1]:4711"', "2001:db8::1"),
        ('for="[2001:db8::1]"', "2001:db8::1"),
        ('proto=https; For="[2001:db8::1]:4711" ;host=example.com', "2001:db8::1"),
        ('for=6.6.6.6, for=198.51.100.7;proto=http, FOR="10.1.1.1:80"', "198.51.100.7"),
        ("for=_hidden, for=10.1.1.1", "10.1.1.1"),
        ("for=198.51.100.7, for=unknown", "10.0.0.1"),
        ("proto=https", "10.0.0.1"),
    ],
)
def test_forwarded_header(value: str, client: str) -> None:
    assert client_ip(scope("10.0.0.1", fwd(value)), FORWARDED_PROXIES) == client


def test_forwarded_lines_are_one_list() -> None:
    request = scope("10.0.0.1", fwd("for=6.6.6.6"), fwd("for=198.51.100.7, for=10.0.0.9"))
    assert client_ip(request, FORWARDED_PROXIES) == "198.51.100.7"


def test_only_the_configured_header_is_read() -> None:
    """A proxy appending to one header passes the client's own copy of the other through."""
    request = scope("10.0.0.1", xff("198.51.100.7"), fwd("for=6.6.6.6"))
    assert client_ip(request, PROXIES) == "198.51.100.7"
    request = scope("10.0.0.1", xff("6.6.6.6"), fwd("for=198.51.100.7"))
    assert client_ip(request, FORWARDED_PROXIES) == "198.51.100.7"


@pytest.mark.parametrize(
    ("value", "client"),
    [
        ("198.51.100.7, not-an-ip, 10.1.1.1", "10.1.1.1"),
        ("198.51.100.7,,10.1.1.1", "10.1.1.1"),
        ("198.51.100.7, unknown", "10.0.0.1"),
        ("", "10.0.0.1"),
        ("999.1.1.1", "10.0.0.1"),
        ("[198.51.100.7]", "10.0.0.1"),
        ("[2001:db8::1]x", "10.0.0.1"),
        ("[2001:db8::1", "10.0.0.1"),
        ("1.2.3.4:5:6", "10.0.0.1"),
        (b"\xff\xfe\x00", "10.0.0.1"),
        ("2001:db8::1" + "0" * 100, "10.0.0.1"),
    ],
)
def test_garbage_stops_the_walk_at_the_last_good_hop(value: str | bytes, client: str) -> None:
    assert client_ip(scope("10.0.0.1", xff(value)), PROXIES) == client


@pytest.mark.parametrize("value", ["for=", 'for="', 'for="[', "for", ";;;", '"', "for=\x00", "=,="])
def test_malformed_forwarded_falls_back_to_the_peer(value: str) -> None:
    assert client_ip(scope("10.0.0.1", fwd(value)), FORWARDED_PROXIES) == "10.0.0.1"


def test_huge_headers_are_read_only_at_their_right_end() -> None:
    chain = "198.51.100.7, " + "10.1.1.1, " * 100_000 + "10.2.2.2"
    assert client_ip(scope("10.0.0.1", xff(chain)), PROXIES) == "10.1.1.1"
    assert client_ip(scope("10.0.0.1", xff(b"1" * 1_000_000)), PROXIES) == "10.0.0.1"


def test_a_chain_within_the_hop_limit_is_read_whole() -> None:
    chain = ", ".join(["198.51.100.7"] + ["10.1.1.1"] * (MAX_FORWARDED_HOPS - 1))
    assert client_ip(scope("10.0.0.1", xff(chain)), PROXIES) == "198.51.100.7"


@pytest.mark.parametrize("client", [None, (), ("testclient", 50000), ("/run/app.sock", 0), [7, 1]])
def test_a_peer_that_is_not_an_ip_gives_none(client: object) -> None:
    request = {"type": "http", "client": client, "headers": [(b"x-forwarded-for", b"1.2.3.4")]}
    assert client_ip(request, PROXIES) is None
    assert client_ip({"type": "http", "headers": []}, PROXIES) is None


def test_trusted_proxies_accept_networks_addresses_and_one_string() -> None:
    assert ipaddress.ip_address("10.200.0.1") in PROXIES
    assert "::1" in PROXIES
    assert ipaddress.ip_address("fd00::abcd") in PROXIES
    assert "::2" not in PROXIES
    assert "not an ip" not in PROXIES
    assert 10 not in PROXIES
    assert "192.0.2.1" in TrustedProxies("192.0.2.1")
    assert "192.0.2.1" not in TrustedProxies([])


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "10.0.0.1/8", "localhost", "", "::g/64"])
def test_a_bad_cidr_is_a_configuration_error(cidr: str) -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        TrustedProxies(["10.0.0.0/8", cidr])


def test_an_unknown_header_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="x-real-ip"):
        TrustedProxies(PROXIES_CIDRS, header="x-real-ip")  # type: ignore[arg-type]


_ADDRESS_TEXT = st.text("0123456789abcdefABCDEF:.[]%", max_size=60)
_HEADER_TEXT = st.text('0123456789abcdef:.[]", ;=_forFORunknown\x00é', max_size=300)
_HEADER_VALUE = st.one_of(st.binary(max_size=300), _HEADER_TEXT.map(lambda s: s.encode()))
_HEADER_NAME = st.sampled_from([b"x-forwarded-for", b"forwarded", b"x-real-ip"])


@settings(max_examples=300, deadline=None)
@given(
    peer=st.one_of(st.sampled_from(["10.0.0.1", "::1", "203.0.113.5"]), _ADDRESS_TEXT),
    headers=st.lists(st.tuples(_HEADER_NAME, _HEADER_VALUE), max_size=5),
)
def test_client_ip_never_raises(peer: str, headers: list[tuple[bytes, bytes]]) -> None:
    request = {"type": "http", "client": (peer, 1), "headers": headers}
    for proxies in (None, PROXIES, FORWARDED_PROXIES):
        found = client_ip(request, proxies)
        if found is not None:
            ipaddress.ip_address(found)
        if found is None or proxies is None or peer not in proxies:
            assert found == client_ip({"type": "http", "client": (peer, 1)}, None)


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [("10.0.0.1", True), ("::1", True), ("198.51.100.7", False), (None, False)],
)
def test_only_a_request_from_a_trusted_proxy_is_from_one(peer: str | None, trusted: bool) -> None:
    assert from_trusted_proxy(scope(peer, xff("198.51.100.9")), PROXIES) is trusted
    assert from_trusted_proxy(scope(peer), TrustedProxies([])) is False


def test_trusted_proxies_show_their_networks() -> None:
    assert repr(TrustedProxies(["10.0.0.0/8", "::1"], header="forwarded")) == (
        "TrustedProxies(['10.0.0.0/8', '::1/128'], header='forwarded')"
    )


def test_addresses_are_parsed_once_and_long_text_never_enters_the_cache() -> None:
    """Every request reads its peer: parsed once per distinct text (`ipaddress` costs more
    than the rest of the look-up), while what a client writes cannot fill the cache with
    long strings."""
    _address.cache_clear()
    assert client_ip(scope("2001:DB8::1"), TrustedProxies([])) == "2001:db8::1"
    assert client_ip(scope("2001:DB8::1"), TrustedProxies([])) == "2001:db8::1"
    assert _address.cache_info().hits == 1
    _address.cache_clear()
    spoofed = "1" * 5000
    assert client_ip(scope("10.0.0.1", xff(spoofed)), PROXIES) == "10.0.0.1"
    assert client_ip(scope(spoofed), PROXIES) is None  # uvicorn --proxy-headers writes there
    assert _address.cache_info().currsize == 1  # the proxy's address, not the long text
