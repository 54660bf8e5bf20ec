"""Devices: labels for real user-agents on both parsers, caching, storage, hostile input."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionward import devices
from sessionward.devices import KINDS, MAX_USER_AGENT_CHARS, Device, parse_user_agent

FAST = "ua-parser-rs"
NO_FAST = f"{FAST} is not installed (pip install ua-parser-rs): the fast path is not tested"
FAST_INSTALLED = FAST in devices._READERS
BACKENDS = [
    pytest.param(FAST, marks=pytest.mark.skipif(not FAST_INSTALLED, reason=NO_FAST)),
    "user-agents",
]


@pytest.fixture(params=BACKENDS)
def ua_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Parse with this backend for one test, from an empty cache so no result leaks across."""
    monkeypatch.setattr(devices, "_read", devices._READERS[request.param])
    devices._parse_capped.cache_clear()
    yield request.param
    devices._parse_capped.cache_clear()


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


@pytest.mark.usefixtures("ua_backend")
@pytest.mark.parametrize(("user_agent", "label", "kind"), REAL_USER_AGENTS)
def test_real_user_agents_get_a_label_and_kind(user_agent: str, label: str, kind: str) -> None:
    device = parse_user_agent(user_agent)
    assert (device.label, device.kind) == (label, kind)


@pytest.mark.usefixtures("ua_backend")
def test_a_phone_keeps_its_brand_model_and_versions() -> None:
    device = parse_user_agent(SAMSUNG_PHONE)
    assert device.browser == "Chrome"  # not "Chrome Mobile": the kind says it is a phone
    assert device.browser_version == "131"
    assert (device.os, device.os_version) == ("Android", "14")
    assert (device.brand, device.model) == ("Samsung", "SM-S911B")


@pytest.mark.usefixtures("ua_backend")
def test_mac_os_x_is_called_macos() -> None:
    device = parse_user_agent(CHROME_MAC)
    assert (device.os, device.os_version, device.device_family) == ("macOS", "10.15.7", "Mac")


@pytest.mark.usefixtures("ua_backend")
def test_an_empty_user_agent_knows_nothing() -> None:
    assert parse_user_agent("") == Device(
        None, None, None, None, None, None, None, "other", "Unknown device"
    )


@pytest.mark.usefixtures("ua_backend")
def test_a_10_kb_user_agent_is_cut_before_parsing() -> None:
    """Parse cost grows with length; what the cap buys is measured in benchmarks/ua_parse.py."""
    junk = f"{uuid.uuid4()};" * 300  # unique, so no cache can answer
    device = parse_user_agent(junk)
    assert device.label == "Unknown device"
    assert parse_user_agent(junk[:MAX_USER_AGENT_CHARS]) is device


@pytest.mark.usefixtures("ua_backend")
@pytest.mark.parametrize(
    "user_agent",
    ["\x00" * 50, "Mozilla/5.0 (\ud800\udfff\ud83d)", "\r\n\t\x1b[31m", "é" * 300, "(" * 9999],
)
def test_hostile_user_agents_do_not_raise(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert Device.from_json(device.to_json()) == device


@pytest.mark.usefixtures("ua_backend")
def test_results_are_cached() -> None:
    assert parse_user_agent(CHROME_MAC) is parse_user_agent(CHROME_MAC)
    padded = CHROME_MAC.ljust(MAX_USER_AGENT_CHARS)
    assert parse_user_agent(padded + "a") is parse_user_agent(padded + "b")


@pytest.mark.usefixtures("ua_backend")
@pytest.mark.parametrize("user_agent", [CHROME_MAC, SAMSUNG_PHONE, "curl/8.5.0", ""])
def test_device_json_round_trips(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    text = device.to_json()
    assert ", " not in text
    assert '": ' not in text
    assert "null" not in text
    assert Device.from_json(text) == device
    assert Device.from_json(text.encode()) == device


@pytest.mark.skipif(not FAST_INSTALLED, reason=NO_FAST)
@pytest.mark.parametrize(
    "user_agent", [pytest.param(param.values[0], id=param.id) for param in REAL_USER_AGENTS]
)
def test_both_backends_read_real_user_agents_alike(user_agent: str) -> None:
    """Not only the label and kind: every family, version, brand and model."""
    fast, fallback = (devices._READERS[name](user_agent) for name in (FAST, "user-agents"))
    assert fast == fallback


def test_the_fast_backend_is_used_when_installed() -> None:
    rust = importlib.util.find_spec("ua_parser_rs") and importlib.util.find_spec("ua_parser.regex")
    expected = FAST if rust else "user-agents"
    assert expected == devices.USER_AGENT_BACKEND
    assert devices._read is devices._READERS[devices.USER_AGENT_BACKEND]


@pytest.mark.usefixtures("ua_backend")
def test_a_lone_surrogate_costs_no_label() -> None:
    """Rust reads UTF-8 only: the fast path parses such a string with "?" in its place."""
    device = parse_user_agent(CHROME_MAC + " \ud800")
    assert (device.label, device.kind) == ("Chrome 131 on macOS", "desktop")


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


@pytest.mark.usefixtures("ua_backend")  # one backend for every example: nothing to reset
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(st.characters(exclude_categories=())))
def test_parse_user_agent_never_raises(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert device.kind in KINDS
    assert device.label
    assert Device.from_json(device.to_json()) == device
    Device.from_json(user_agent)  # garbage in a store field must not raise either
