"""Devices and client IPs: labels for real user-agents, caching, storage, and hostile input."""

from __future__ import annotations

import ipaddress
import time
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.devices import (
    KINDS,
    MAX_FORWARDED_HOPS,
    MAX_USER_AGENT_CHARS,
    Device,
    TrustedProxies,
    client_ip,
    parse_user_agent,
)
from sessionward.exceptions import ConfigurationError

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAMSUNG_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36"
)
REAL_USER_AGENTS = [
    pytest.param(CHROME_MAC, "Chrome 131 on macOS", "desktop", id="chrome-macos"),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on Windows",
        "desktop",
        id="chrome-windows",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox 133 on Windows",
        "desktop",
        id="firefox-windows",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox 133 on Linux",
        "desktop",
        id="firefox-linux",
    ),
    pytest.param(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "Safari on macOS",
        "desktop",
        id="safari-macos",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Edge 131 on Windows",
        "desktop",
        id="edge-windows",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on ChromeOS",
        "desktop",
        id="chrome-chromeos",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Safari on iPhone",
        "mobile",
        id="safari-iphone",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "Chrome 131 on iPhone",
        "mobile",
        id="chrome-iphone",
    ),
    pytest.param(
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.7 Mobile/15E148 Safari/604.1",
        "Safari on iPad",
        "tablet",
        id="safari-ipad",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "Chrome 131 on Android",
        "mobile",
        id="chrome-android-reduced",
    ),
    pytest.param(SAMSUNG_PHONE, "Chrome 131 on Samsung SM-S911B", "mobile", id="chrome-samsung"),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36",
        "Chrome 131 on Pixel 8",
        "mobile",
        id="chrome-pixel",
    ),
    pytest.param(
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        "Firefox 133 on Android",
        "mobile",
        id="firefox-android",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on Android",
        "tablet",
        id="chrome-android-tablet",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile "
        "Safari/537.36 Instagram 357.0.0.25.101 Android (34/14; 480dpi; 1080x2106; samsung; "
        "SM-S918B; dm3q; qcom; en_US; 659325269)",
        "Instagram 357 on Samsung SM-S918B",
        "mobile",
        id="instagram-longer-than-the-cap",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot",
        "bot",
        id="googlebot",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; "
        "Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot",
        "bot",
        id="googlebot-smartphone",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "bingbot",
        "bot",
        id="bingbot",
    ),
    pytest.param("curl/8.5.0", "curl 8.5", "other", id="curl"),
    pytest.param("python-requests/2.32.3", "Python Requests 2.32", "other", id="requests"),
    pytest.param("python-httpx/0.27.2", "python-httpx 0.27", "other", id="httpx"),
    pytest.param("Mozilla/5.0 (X11; Linux x86_64) Foo", "Unknown browser on Linux", "desktop"),
    pytest.param("", "Unknown device", "other", id="empty"),
    pytest.param("asdf qwer", "Unknown device", "other", id="junk"),
]


@pytest.mark.parametrize(("user_agent", "label", "kind"), REAL_USER_AGENTS)
def test_real_user_agents_get_a_label_and_kind(user_agent: str, label: str, kind: str) -> None:
    device = parse_user_agent(user_agent)
    assert (device.label, device.kind) == (label, kind)


def test_a_phone_keeps_its_brand_model_and_versions() -> None:
    device = parse_user_agent(SAMSUNG_PHONE)
    assert device.browser == "Chrome"  # not "Chrome Mobile": the kind says it is a phone
    assert device.browser_version == "131"
    assert (device.os, device.os_version) == ("Android", "14")
    assert (device.brand, device.model) == ("Samsung", "SM-S911B")


def test_mac_os_x_is_called_macos() -> None:
    device = parse_user_agent(CHROME_MAC)
    assert (device.os, device.os_version, device.device_family) == ("macOS", "10.15.7", "Mac")


def test_an_empty_user_agent_knows_nothing() -> None:
    assert parse_user_agent("") == Device(
        None, None, None, None, None, None, None, "other", "Unknown device"
    )


def test_a_10_kb_user_agent_is_capped_and_quick() -> None:
    junk = f"{uuid.uuid4()};" * 300  # unique, so no cache can answer
    started = time.perf_counter()
    device = parse_user_agent(junk)
    assert time.perf_counter() - started < 0.25
    assert device.label == "Unknown device"
    assert parse_user_agent(junk[:MAX_USER_AGENT_CHARS]) is device


@pytest.mark.parametrize(
    "user_agent",
    ["\x00" * 50, "Mozilla/5.0 (\ud800\udfff\ud83d)", "\r\n\t\x1b[31m", "é" * 300, "(" * 9999],
)
def test_hostile_user_agents_do_not_raise(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert Device.from_json(device.to_json()) == device


def test_results_are_cached() -> None:
    assert parse_user_agent(CHROME_MAC) is parse_user_agent(CHROME_MAC)
    padded = CHROME_MAC.ljust(MAX_USER_AGENT_CHARS)
    assert parse_user_agent(padded + "a") is parse_user_agent(padded + "b")


@pytest.mark.parametrize("user_agent", [CHROME_MAC, SAMSUNG_PHONE, "curl/8.5.0", ""])
def test_device_json_round_trips(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    text = device.to_json()
    assert ", " not in text
    assert '": ' not in text
    assert "null" not in text
    assert Device.from_json(text) == device
    assert Device.from_json(text.encode()) == device


def test_from_json_ignores_keys_it_does_not_know() -> None:
    device = Device.from_json('{"kind":"bot","label":"Googlebot","added_later":[1]}')
    assert device is not None
    assert (device.kind, device.label, device.browser) == ("bot", "Googlebot", None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        '"Chrome"',
        "{",
        "[" * 100_000,
        b"\xff\xfe",
        '{"label":"Chrome"}',
        '{"kind":"phone","label":"Chrome"}',
        '{"kind":"mobile","label":3}',
        '{"kind":"mobile","label":"Chrome","os":["iOS"]}',
        '{"kind":["mobile"],"label":"Chrome"}',
    ],
)
def test_from_json_returns_none_on_garbage(text: str | bytes) -> None:
    assert Device.from_json(text) is None


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=())))
def test_parse_user_agent_never_raises(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert device.kind in KINDS
    assert device.label
    assert Device.from_json(device.to_json()) == device
    Device.from_json(user_agent)  # garbage in a store field must not raise either


# -- client IP -----------------------------------------------------------------------------------

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
    started = time.perf_counter()
    assert client_ip(scope("10.0.0.1", xff(chain)), PROXIES) == "10.1.1.1"
    assert client_ip(scope("10.0.0.1", xff(b"1" * 1_000_000)), PROXIES) == "10.0.0.1"
    assert time.perf_counter() - started < 0.25


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
