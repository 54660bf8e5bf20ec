"""Devices: labels for real user-agents on both parsers, caching, hostile input."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionward import devices
from sessionward.devices import KINDS, MAX_USER_AGENT_CHARS, Device, parse_user_agent

FAST = "ua-parser-rs"
NO_FAST = f"{FAST} is not installed (no wheel for this platform?): the fast path is not tested"
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
    assert device.kind in KINDS
    assert device.label


@pytest.mark.usefixtures("ua_backend")
def test_results_are_cached() -> None:
    assert parse_user_agent(CHROME_MAC) is parse_user_agent(CHROME_MAC)
    padded = CHROME_MAC.ljust(MAX_USER_AGENT_CHARS)
    assert parse_user_agent(padded + "a") is parse_user_agent(padded + "b")


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
@pytest.mark.parametrize("tail", [" \ud800", " caf\xc3\xa9"], ids=["lone-surrogate", "latin-1"])
def test_non_ascii_costs_no_label(tail: str) -> None:
    """The fast path reads non-ASCII as "?": "é" in UTF-8 arrives as "Ã©" (Latin-1) anyway."""
    device = parse_user_agent(CHROME_MAC + tail)
    assert (device.label, device.kind) == ("Chrome 131 on macOS", "desktop")


# The slowest user-agent `benchmarks/ua_parse.py --search-seconds 180` found for ua-parser-rs,
# as in its JUNK table; and the slowest one before the fast path read non-ASCII as "?", ~2 ms.
SEARCHED_WORST_USER_AGENT = (
    ".botNokiaSAMSpNChromxuWebZIPPbmobileowseXricssonSonyEricssonSonyEricssonSonyEricssonSonyEr"
    "icssonSonyEkNrgusweisSonyEricssonSonyEricEcosiassosonSonyEricHuaweissonSonyEnodejscssoiyEr"
    "icssRnUCWEBUCWEBUCWEBUCWyBUMID860CWEBri/iaNIGHTt#shscoopockt600DarwiZ/2crawl"
)
NON_ASCII_WORST_USER_AGENT = (
    ".botNokiJSSailfishBrowsercssonSonyEricsso; SonMID835ynSonyErMaJsonSonyEricssonSonyEricCson"
    "SonyEricsicssonSonyEricssonSKitricFedorassonSonyEricssonUCWEBUCWETUCWEBUCWwhitsurveyonEBUCWEB"
    "UCWEfd MoziTopBuzzlla/5.0 (Eraé&éééé5.0ADR8995BraveNexus 10YahooSeeker0AD"
)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "user_agent",
    [SEARCHED_WORST_USER_AGENT, NON_ASCII_WORST_USER_AGENT],
    ids=["searched-worst", "non-ascii-worst"],
)
def test_the_slowest_user_agents_found_read_as_a_device(backend: str, user_agent: str) -> None:
    """What they cost is benchmarks/ua_parse.py's to say; here, each backend reads them.

    The reader is called as it is, so that no exception is hidden by `parse_user_agent`.
    """
    assert 0 < len(user_agent) <= MAX_USER_AGENT_CHARS
    device = devices._device(devices._READERS[backend](user_agent), user_agent)
    assert device.kind in KINDS
    assert device.label


@pytest.mark.skipif(not FAST_INSTALLED, reason=NO_FAST)
def test_only_ascii_reaches_the_rust_regexes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-ASCII would cost ~2 ms on this string: see `_read_with_ua_parser`."""
    devices.warm_up()
    resolve, seen = devices._resolve, []
    assert resolve is not None

    def spy(user_agent: str, domains: Any) -> Any:
        seen.append(user_agent)
        return resolve(user_agent, domains)

    monkeypatch.setattr(devices, "_resolve", spy)
    read = devices._read_with_ua_parser(NON_ASCII_WORST_USER_AGENT)
    assert seen == [NON_ASCII_WORST_USER_AGENT.replace("é", "?")]
    assert read == devices._read_with_ua_parser(seen[0])


def _import_devices_afresh(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A second `sessionward.devices`, imported now: what it finds decides its backend."""
    name = "sessionward._devices_afresh"
    spec = importlib.util.spec_from_file_location(name, devices.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_without_ua_parser_rs_user_agents_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """As where ua-parser-rs has no wheel, so pip did not install it."""
    monkeypatch.setitem(sys.modules, "ua_parser_rs", None)  # `import ua_parser_rs` fails
    monkeypatch.delitem(sys.modules, "ua_parser.regex", raising=False)
    fallback = _import_devices_afresh(monkeypatch)
    assert fallback.USER_AGENT_BACKEND == "user-agents"
    assert list(fallback._READERS) == ["user-agents"]
    assert fallback.parse_user_agent(SAMSUNG_PHONE).label == "Chrome 131 on Samsung SM-S911B"


@pytest.mark.skipif(not FAST_INSTALLED, reason=NO_FAST)
def test_rules_the_rust_side_rejects_fall_back_to_user_agents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Say, a new ua-parser-builtins with a regex the Rust engine cannot compile."""
    import ua_parser.regex

    def reject(matchers: object) -> None:
        raise ValueError("regex parse error")

    monkeypatch.setattr(ua_parser.regex, "Resolver", reject)
    fallback = _import_devices_afresh(monkeypatch)  # the rules are built later, not at import
    assert fallback.USER_AGENT_BACKEND == "ua-parser-rs"
    with pytest.warns(RuntimeWarning, match="ua-parser-rs cannot load ua-parser's rules"):
        assert fallback.parse_user_agent(CHROME_MAC).label == "Chrome 131 on macOS"
    assert fallback.USER_AGENT_BACKEND == "user-agents"
    assert fallback.parse_user_agent(SAMSUNG_PHONE).label == "Chrome 131 on Samsung SM-S911B"


@pytest.mark.skipif(not FAST_INSTALLED, reason=NO_FAST)
def test_the_rules_are_built_by_the_middleware_not_at_import() -> None:
    """Importing costs nothing for the rules; making an app starts building them in a thread,
    so the first request finds them ready."""
    code = (
        "import sys, time, sessionward\n"
        "from sessionward import devices\n"
        "assert devices._resolve is None, 'built at import'\n"
        "sessionward.SessionMiddleware(lambda *a: None, secret_keys=['k' * 40])\n"
        "deadline = time.monotonic() + 30\n"
        "while devices._resolve is None and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "assert devices._resolve is not None, 'never built'\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.skipif(not FAST_INSTALLED, reason=NO_FAST)
def test_the_fast_backend_leaves_user_agents_unimported() -> None:
    """user-agents compiles its ~1,300 regexes when imported: a cost for the fallback only."""
    code = (
        "import sys, sessionward\n"
        "assert 'user_agents' not in sys.modules, 'user_agents imported'\n"
        "print(sessionward.devices.USER_AGENT_BACKEND)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == FAST


@pytest.mark.usefixtures("ua_backend")  # one backend for every example: nothing to reset
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(st.characters(exclude_categories=())))
def test_parse_user_agent_never_raises(user_agent: str) -> None:
    device = parse_user_agent(user_agent)
    assert device.kind in KINDS
    assert device.label


HOSTILE_USER_AGENTS = [
    "Mozilla/5.0 (Linux; Android 13; <img src=x onerror=alert(1)> Build/TP1A) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; U; Android 4.0; en-us; <img/src=x/onerror=alert(1)> Build/IMM76D)"
    " AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
    "Mozilla/5.0 (compatible; <script>bot</script>/1.0; +http://x)",
    "Mozilla/5.0 (Linux; Android 13; SM\x1b[31mG991B\x07 Build/TP1A) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
]


@pytest.mark.usefixtures("ua_backend")
@pytest.mark.parametrize("user_agent", HOSTILE_USER_AGENTS)
def test_parsed_fields_carry_no_markup_or_invisible_characters(user_agent: str) -> None:
    raw = devices._read(user_agent)
    assert any(set("<>\x1b") & set(str(field)) for field in raw)  # the rules copy it...
    device = parse_user_agent(user_agent)
    for value in device.to_dict().values():  # ...the Device does not
        assert not set(str(value or "")) & set("<>\"'`&\x1b\x07")
