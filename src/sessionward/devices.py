"""What a client is: its user-agent parsed into a `Device`, cached and length-capped.

The user-agent is attacker-controlled text on the request path, so parsing bounds its work
and never raises: a garbled one becomes "Unknown device".
"""

from __future__ import annotations

import importlib
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

DeviceKind = Literal["mobile", "tablet", "desktop", "bot", "other"]
KINDS: frozenset[str] = frozenset({"mobile", "tablet", "desktop", "bot", "other"})
# Parsing runs ~1,300 regexes over the whole string, so its cost grows with the length: real
# user-agents, in-app browsers included, fit in 256 characters; junk of that length costs a few
# milliseconds uncached with user-agents (pure Python), 5 KB of junk would cost tens.
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
    # From User-Agent Client Hints (`client_hints`), which Chromium browsers send: the
    # platform version as sent ("15.0.0" on Windows 11, whose `os_version` is "11") and the
    # form factor ("Desktop", "Mobile", "Tablet", "XR", ...).
    platform_version: str | None = None
    form_factor: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def parse_user_agent(user_agent: str) -> Device:
    """The `Device` a user-agent describes. Cached, length-capped, and never raises."""
    return _parse_capped(user_agent[:MAX_USER_AGENT_CHARS])


@lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def _parse_capped(user_agent: str) -> Device:
    try:
        read = _read(user_agent)
    except Exception:
        # A failure in the third-party rules must cost the user a label, never a request.
        return Device(None, None, None, None, None, None, None, "other", "Unknown device")
    return _device(read, user_agent)


class _Read(NamedTuple):
    """What a backend read from a user-agent, in user-agents' terms, so both label alike.

    Families are "Other" when unknown; versions are (major, minor, patch) as far as known.
    """

    browser: str
    browser_version: tuple[str, ...]
    os: str
    os_version: tuple[str, ...]
    device: str
    brand: str | None
    model: str | None
    kind: DeviceKind


def _read_with_user_agents(user_agent: str) -> _Read:
    import user_agents  # here, so that the fast path never compiles its ~1,300 regexes

    parsed = user_agents.parse(user_agent)
    # ua-parser's legacy API can leave blanks around a family and empty version parts, which
    # the 1.x API strips; so do we, so that both backends read a user-agent alike.
    return _Read(
        browser=parsed.browser.family,
        browser_version=tuple(str(part) for part in parsed.browser.version if part != ""),
        os=parsed.os.family.strip(),
        os_version=tuple(str(part) for part in parsed.os.version if part != ""),
        device=parsed.device.family.strip(),
        brand=parsed.device.brand,
        model=parsed.device.model,
        kind=_user_agents_kind(parsed),
    )


def _user_agents_kind(parsed: Any) -> DeviceKind:
    if parsed.is_bot:
        return "bot"
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    return "desktop" if parsed.is_pc else "other"


# The default: the same uap-core rules (user-agents reads them through ua-parser's legacy API),
# run by ua-parser 1.x's Rust resolver, ua-parser-rs, a dependency wherever it has wheels
# (pyproject.toml): ~20-40 µs a user-agent instead of ~1 ms, and ~0.3 ms for the worst junk at
# the cap a search found, instead of ~4 ms (benchmarks/ua_parse.py). It reads real user-agents as
# user-agents does; on some junk it does not, as it widens the rules' long bounded repeats
# (".{0,100}bot": "bot" in the first ~100 characters) to unbounded ones (".*bot": "bot"
# anywhere), so junk may become a bot. Elsewhere, or should the Rust side fail to load the
# rules, user-agents parses, and only then is it imported: its ~1,300 regexes compile at import.
try:
    from ua_parser import Domain, load_lazy_builtins
    from ua_parser.regex import Resolver as _RegexResolver
except ImportError:  # no ua-parser-rs (no wheel for this platform), or a ua-parser before 1.0
    _rust_available = False
else:
    _rust_available = True
if not _rust_available:
    importlib.import_module("user_agents")  # compile its rules now, not on the first request

# The Rust resolver takes ~0.2 s to build (it compiles every rule): not at import, which every
# process pays, but once, by `warm_up`, which the middleware starts in a thread when the app
# is made. A parse that comes first waits for it.
_resolve: Any = None
_building = threading.Lock()
_warming = False


def warm_up() -> None:
    """Build the Rust resolver now, if this install has one and it is not built yet: the
    first user-agent parse then costs what the others do. Safe to call from any thread."""
    global _resolve
    with _building:
        if _resolve is not None or not _rust_available:
            return
        try:
            from .ua_rules import cheaper  # here, in the warm-up thread: its regexes compile

            # Rewritten so that no input costs much (`ua_rules`).
            _resolve = _RegexResolver(cheaper(load_lazy_builtins()))
        except Exception as error:  # a ua-parser-builtins rule the Rust regex engine rejects
            _fall_back(error)


def start_warm_up() -> None:
    """`warm_up` in a daemon thread, once per process: the middleware calls it when the app
    is made, so neither the import nor the first request pays for the rules."""
    global _warming
    if _warming or _resolve is not None or not _rust_available:
        return
    _warming = True
    threading.Thread(target=warm_up, name="sessionward-user-agent-rules", daemon=True).start()


def _fall_back(error: Exception) -> None:
    global _rust_available, _read, USER_AGENT_BACKEND
    warnings.warn(
        f"ua-parser-rs cannot load ua-parser's rules ({error!r}): user-agents are parsed "
        "by user-agents instead, tens of times slower",
        RuntimeWarning,
        stacklevel=3,
    )
    _rust_available = False
    _READERS.pop("ua-parser-rs", None)
    USER_AGENT_BACKEND = "user-agents"
    _read = _read_with_user_agents
    importlib.import_module("user_agents")


def _read_with_ua_parser(user_agent: str) -> _Read:
    if _resolve is None:
        warm_up()
        if _resolve is None:  # the rules would not load: user-agents reads them instead
            return _read_with_user_agents(user_agent)
    # Only ASCII reaches the Rust regexes, anything else as "?". One non-ASCII character (any
    # byte over 0x7F in a header, which the middleware reads as Latin-1) makes the regex crate's
    # lazy DFA give up on the rules with a Unicode \b, such as the bot list's
    # "\b\w{0,30}favicon", for a much slower engine: 2 ms for some junk at the cap, not 0.1 ms.
    # Real user-agents are ASCII, and a lone surrogate, which Rust cannot take, is gone too.
    if not user_agent.isascii():
        user_agent = user_agent.encode("ascii", "replace").decode("ascii")
    result = _resolve(user_agent, Domain.ALL).complete().with_defaults()
    browser, os, device = result.user_agent, result.os, result.device
    os_version = _version(os.major, os.minor, os.patch)
    return _Read(
        browser=browser.family,
        browser_version=_version(browser.major, browser.minor, browser.patch),
        os=os.family,
        os_version=os_version,
        device=device.family,
        brand=device.brand,
        model=device.model,
        kind=_kind(user_agent, browser.family, os.family, ".".join(os_version), device.family),
    )


def device_of(user_agent: str) -> tuple[str | None, str | None, str | None]:
    """The device family, brand and model a user-agent names, by the device rules alone: not
    cached, and `(None, None, None)` where the rules fail. `client_hints` reads a model with it.
    """
    try:
        if _read is _read_with_ua_parser and _resolve is not None:
            device = _resolve(user_agent, Domain.DEVICE).device
            if device is None:
                return None, None, None
            family, brand, model = device.family, device.brand, device.model
        else:
            read = _read(user_agent)
            family, brand, model = read.device, read.brand, read.model
    except Exception:
        return None, None, None
    return _known(untrusted(family)), untrusted(brand), untrusted(model)


def _version(*parts: str | None) -> tuple[str, ...]:
    """As user-agents has it: numbers as numbers ("08" is "8"), anything else as it is."""
    return tuple(str(int(part)) if part.isdecimal() else part for part in parts if part)


_TABLET_DEVICES = frozenset(
    {"iPad", "BlackBerry Playbook", "Blackberry Playbook", "Kindle", "Kindle Fire"}
    | {"Kindle Fire HD", "Galaxy Tab", "Xoom", "Dell Streak"}
)
_MOBILE_DEVICES = frozenset(
    {"iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone", "PlayStation Vita"}
    | {"iOS-Device"}
)
_MOBILE_BROWSERS = frozenset(
    {"IE Mobile", "Opera Mobile", "Opera Mini", "Chrome Mobile", "Chrome Mobile WebView"}
    | {"Chrome Mobile iOS"}
)
_MOBILE_OSES = frozenset(
    {"Android", "Firefox OS", "BlackBerry OS", "Windows Phone", "Windows Phone OS"}
    | {"Symbian OS", "Bada", "Windows CE", "Windows Mobile", "Maemo"}
)
_MOBILE_MARKERS = ("J2ME", "MIDP", "iPhone;", "Googlebot-Mobile")


def _kind(user_agent: str, browser: str, os: str, os_version: str, device: str) -> DeviceKind:
    """user-agents' is_bot, is_tablet, is_mobile and is_pc, in `_user_agents_kind`'s order.

    Ported from user-agents 2.2 (parsers.py) so that both backends agree, less the conditions
    that cannot decide anything in this order (a "Spider" or a BlackBerry Playbook never gets
    as far as the mobile test).
    """
    if device == "Spider":
        return "bot"
    if (
        device in _TABLET_DEVICES
        or (os == "Android" and "Mobile Safari" not in user_agent and browser != "Firefox Mobile")
        or (os == "Windows" and os_version.startswith("RT"))
        or (os == "Firefox OS" and "Mobile" not in browser)
    ):
        return "tablet"
    if (
        device in _MOBILE_DEVICES
        or browser in _MOBILE_BROWSERS
        or os in _MOBILE_OSES
        or any(marker in user_agent for marker in _MOBILE_MARKERS)
        or ("NokiaBrowser" in user_agent and "Mobile" in user_agent)
    ):
        return "mobile"
    if (
        "Windows NT" in user_agent
        or os in ("Windows 95", "Windows 98", "Solaris")
        or (os == "Windows" and os_version == "ME")
        or (os == "Mac OS X" and "Silk" not in user_agent)
    ):
        return "desktop"
    if "Maemo" not in user_agent and (
        "Chrome OS" in os or ("Linux" in user_agent and "X11" in user_agent)
    ):
        return "desktop"
    return "other"


_Reader = Callable[[str], _Read]
# Every backend this install can run, the one in use first.
_READERS: dict[str, _Reader] = {"user-agents": _read_with_user_agents}
if _rust_available:
    _READERS = {"ua-parser-rs": _read_with_ua_parser, **_READERS}
#: Which parser reads user-agents: "ua-parser-rs" where it is installed and loads the rules
#: (should it fail to, at `warm_up`, this becomes "user-agents"), else "user-agents".
USER_AGENT_BACKEND: str = next(iter(_READERS))
_read: _Reader = _READERS[USER_AGENT_BACKEND]


# A user-agent is attacker-chosen text, and the rules copy parts of it into names and models
# ("Build/<anything>"). What is shown to people (a device list, an e-mail) keeps no markup and
# no control or bidirectional-formatting characters. Labels are still untrusted text.
_MARKUP = re.compile(r"<[^>]*>?")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f<>\"'`&\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def untrusted(text: str | None) -> str | None:
    """Parsed text without markup or invisible characters; `None` if nothing is left."""
    if text is None:
        return None
    return _UNSAFE.sub("", _MARKUP.sub("", text)).strip() or None


def _cleaned(read: _Read) -> _Read:
    def version(parts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(clean for part in parts if (clean := untrusted(part)))

    return read._replace(
        browser=untrusted(read.browser) or "Other",
        browser_version=version(read.browser_version),
        os=untrusted(read.os) or "Other",
        os_version=version(read.os_version),
        device=untrusted(read.device) or "Other",
        brand=untrusted(read.brand),
        model=untrusted(read.model),
    )


def _device(read: _Read, user_agent: str) -> Device:
    read = _cleaned(read)
    browser, browser_version = _browser(read, user_agent)
    os_name = _known(read.os)
    os_name = _OS_NAMES.get(os_name or "", os_name)
    family, brand, kind = _known(read.device), read.brand, read.kind
    # A phone or tablet is named by its model when the user-agent names a real brand.
    named = kind in ("mobile", "tablet") and brand and not brand.startswith("Generic")
    place = family if named else os_name
    return Device(
        browser=browser,
        browser_version=browser_version,
        os=os_name,
        os_version=".".join(read.os_version) or None,
        device_family=family,
        brand=brand,
        model=read.model,
        kind=kind,
        label=label(kind, browser, browser_version, place),
    )


def _browser(read: _Read, user_agent: str) -> tuple[str | None, str | None]:
    """The browser's display name and version: major, or major.minor when kind is "other"."""
    browser, version = _known(read.browser), read.browser_version
    if browser is None and (product := _PRODUCT.match(user_agent)) and product[1] != "Mozilla":
        browser, version = product[1], tuple(part for part in product.groups()[1:] if part)
    shown_parts = 2 if read.kind == "other" else 1
    shown_version = ".".join(version[:shown_parts]) or None
    return _BROWSER_NAMES.get(browser or "", browser), shown_version


def _known(family: str | None) -> str | None:
    return None if not family or family == "Other" else family


def label(kind: str, browser: str | None, version: str | None, place: str | None) -> str:
    """Such as "Chrome 131 on macOS". Safari has no version: the OS release already dates it."""
    if kind == "bot":
        return browser or "Unknown bot"
    name = f"{browser} {version}" if browser and version and browser != "Safari" else browser
    if name and place:
        return f"{name} on {place}"
    if place:
        return f"Unknown browser on {place}"
    return name or "Unknown device"
