"""User-Agent Client Hints (`Sec-CH-UA-*`): what a Chromium browser says of itself beyond its
frozen user-agent, read into the `Device` its user-agent gives.

Chromium's user-agent says `Windows NT 10.0` on Windows 11, `Mac OS X 10_15_7` on every Mac
and `Android 10; K` on every Android phone; the hints carry the real platform version, model,
brand and form factor. They are client-controlled like the user-agent: labels only, never a
security input, and capped, so a hostile header costs little and is ignored, never an error.

The headers are RFC 8941 structured fields. What Chromium sends has one shape (`"Brand";v="1"`
entries, plain strings, `?0`/`?1`), read by two regular expressions; anything else goes to
http-sf, the maintained parser, whose answer is then checked for the types a hint must have.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from starlette.datastructures import MutableHeaders
from starlette.types import Message

from .devices import (
    MAX_USER_AGENT_CHARS,
    USER_AGENT_CACHE_SIZE,
    Device,
    DeviceKind,
    device_of,
    label,
    parse_user_agent,
    untrusted,
)

#: The headers read, in the order of a `Hints` tuple. The first three are sent by default; the
#: others only to a site that asks for them with `Accept-CH` (`ACCEPT_CH`).
HINT_HEADERS = (
    b"sec-ch-ua",
    b"sec-ch-ua-mobile",
    b"sec-ch-ua-platform",
    b"sec-ch-ua-platform-version",
    b"sec-ch-ua-model",
    b"sec-ch-ua-full-version-list",
    b"sec-ch-ua-form-factors",
)
SLOTS = {name: slot for slot, name in enumerate(HINT_HEADERS)}
#: The high-entropy hints the middleware asks for, as `Accept-CH` tokens.
ACCEPT_CH = (
    "Sec-CH-UA-Platform-Version",
    "Sec-CH-UA-Model",
    "Sec-CH-UA-Full-Version-List",
    "Sec-CH-UA-Form-Factors",
)
# Each header's raw value, or `None` where the request has no such header.
Hints = tuple[bytes | None, ...]

# Real values are well under these: a brand list is ~100 bytes with Chromium's grease entry.
# A longer header, or a list longer than MAX_BRANDS, is ignored whole.
MAX_HINT_BYTES = 256
MAX_BRANDS = 8
MAX_NAME_CHARS = 40
FINGERPRINT_CHARS = 10  # two hex digits of which hints are present, eight of their CRC

_UNESCAPED = r'"([ !#-\[\]-~]*)"'  # an sf-string without escapes: printable ASCII but " and \
_BRAND = _UNESCAPED + r";v=" + _UNESCAPED
_OWS_COMMA = r"[ \t]*,[ \t]*"
_BRAND_LIST = re.compile(f"{_BRAND}(?:{_OWS_COMMA}{_BRAND})*")
_BRANDS = re.compile(_BRAND)
_STRING = re.compile(_UNESCAPED)
_STRING_LIST = re.compile(f"{_UNESCAPED}(?:{_OWS_COMMA}{_UNESCAPED})*")
_VERSION = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9}){0,3}")
# Chromium's GREASE brands: "Not A;Brand", "Not/A)Brand", "Not_A Brand", "Not.A/Brand", ...
_GREASE = re.compile(r"Not[^A-Za-z]*(?:A[^A-Za-z]*)?Brand")

_BROWSER_NAMES = {"Google Chrome": "Chrome", "Microsoft Edge": "Edge", "Opera GX": "Opera"}
_PLATFORMS = {"Chrome OS": "ChromeOS", "Chromium OS": "ChromeOS", "Mac OS X": "macOS"}
# Most specific first: a headset that also says "Mobile" is an XR device.
_FORM_FACTORS = ("XR", "Tablet", "Mobile", "Watch", "Automotive", "EInk", "Desktop")
_KINDS: dict[str, DeviceKind] = {
    "XR": "other",
    "Tablet": "tablet",
    "Mobile": "mobile",
    "Watch": "mobile",
    "Desktop": "desktop",
}
# Platforms whose version a label shows: one people know ("Windows 11", "macOS 15").
_LABELLED_VERSIONS = frozenset({"Windows", "macOS", "Android"})


class HintValues(NamedTuple):
    """What the hints say, each checked and cleaned; `None` where absent or unreadable."""

    browser: str | None = None
    browser_version: str | None = None  # the major version
    mobile: bool | None = None
    platform: str | None = None
    platform_version: str | None = None
    model: str | None = None
    form_factor: str | None = None


def parse_with_hints(user_agent: str, hints: Hints | None) -> Device:
    """The `Device` a user-agent and its hints describe. Cached; never raises."""
    if hints is None:
        return parse_user_agent(user_agent)
    return _parse_capped(user_agent[:MAX_USER_AGENT_CHARS], hints)


@lru_cache(maxsize=USER_AGENT_CACHE_SIZE)  # keyed by both: the same bound as the user-agent's
def _parse_capped(user_agent: str, hints: Hints) -> Device:
    device = parse_user_agent(user_agent)
    if "Chrome/" not in user_agent:
        # Only Chromium sends hints: beside a Firefox's or Safari's user-agent they come from
        # an emulation (an automated Chromium posing as an iPhone), and the user-agent wins.
        return device
    try:
        return with_hints(device, read_hints(hints))
    except Exception:  # a bug of ours or the parser's must cost the label only
        return device


#: What stands for a hint a request does not send, in `Values`: no header value holds DEL.
ABSENT = b"\x7f"
NO_VALUES = (ABSENT,) * len(HINT_HEADERS)
_SEPARATOR = b"\0"
# The raw hint values with ABSENT for a missing one: what the request path reads of them
# (`Client._read`), every request; a list there, built in place.
Values = Sequence[bytes]


def checksum(values: Values) -> str:
    """A CRC of the hint values: all a request whose hints are unchanged computes, and from
    a cache of the last few thousand sets (callgrind: 2.3 k instructions for Chrome's seven
    hints, 5.1 k computed). Not a defence against anyone: a collision costs only a missed
    label update."""
    joined = _SEPARATOR.join(values)
    found = _CHECKSUMS.get(joined)
    if found is None:
        found = "%08x" % zlib.crc32(joined)  # noqa: UP031 - the cheapest
        if len(_CHECKSUMS) >= USER_AGENT_CACHE_SIZE:
            del _CHECKSUMS[next(iter(_CHECKSUMS))]  # the oldest
        _CHECKSUMS[joined] = found
    return found


# Keyed by the joined bytes, which the garbage collector does not track (a tuple key would
# be one more container a request).
_CHECKSUMS: dict[bytes, str] = {}


def fingerprint(hints: Hints) -> str:
    """Which hints a request has (two hex digits) and their `checksum`: the record keeps it
    beside the user-agent's hash, to notice a change without parsing."""
    mask = sum(1 << slot for slot, value in enumerate(hints) if value is not None)
    values = tuple(ABSENT if value is None else value for value in hints)
    return f"{mask:02x}{checksum(values)}"


def more_or_changed(new: str, recorded: str | None) -> bool:
    """Whether hints fingerprinted `new` should replace the device made from `recorded`'s:
    they differ, and carry every hint the recorded ones did. Fewer never downgrade a label."""
    if recorded is None:
        return True
    if new == recorded[:FINGERPRINT_CHARS]:
        return False
    try:
        new_mask, recorded_mask = int(new[:2], 16), int(recorded[:2], 16)
    except ValueError:  # an unreadable record: made anew
        return True
    return new_mask & recorded_mask == recorded_mask


def ask_for_hints(message: Message, accept_ch: bytes) -> None:
    """Add `accept_ch` to an HTML page's `http.response.start` message, merged into the app's
    own `Accept-CH` if it sends one (one header, each hint once)."""
    headers = MutableHeaders(scope=message)
    asked = headers.getlist("accept-ch")
    if not asked:
        headers.append("accept-ch", accept_ch.decode())
        return
    merged: dict[str, str] = {}  # by lower-cased token, the first spelling kept
    for value in [*asked, accept_ch.decode()]:
        for token in value.split(","):
            if token := token.strip():
                merged.setdefault(token.lower(), token)
    del headers["accept-ch"]
    headers.append("accept-ch", ", ".join(merged.values()))


# -- reading the headers ----------------------------------------------------------------------


def read_hints(hints: Hints) -> HintValues:
    """Each hint read, checked and cleaned: an oversize or malformed one is as good as absent."""
    brands, mobile, platform, platform_version, model, full_list, form_factors = (
        value if value is not None and len(value) <= MAX_HINT_BYTES else None
        for value in (*hints, *_ABSENT)[: len(HINT_HEADERS)]
    )
    browser, version = _brand(_brand_list(full_list)) or _brand(_brand_list(brands)) or (None, None)
    return HintValues(
        browser=browser,
        browser_version=version,
        mobile=_boolean(mobile),
        platform=_name(_string(platform)),
        platform_version=_version(_string(platform_version)),
        model=_name(_string(model)),
        form_factor=_form_factor(_string_list(form_factors)),
    )


_ABSENT = (None,) * len(HINT_HEADERS)


def _brand_list(value: bytes | None) -> list[tuple[str, str]] | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    if _BRAND_LIST.fullmatch(text):
        brands = _BRANDS.findall(text)
    else:
        parsed = _parsed(value, "list")
        if not isinstance(parsed, list):
            return None
        brands = [
            (name, params["v"])
            for name, params in (_pair(member) for member in parsed)
            if isinstance(name, str) and isinstance(params.get("v"), str)
        ]
    return brands if len(brands) <= MAX_BRANDS else None


def _pair(member: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(member, tuple) and len(member) == 2 and isinstance(member[1], dict):
        return member[0], member[1]
    return None, {}


def _brand(brands: list[tuple[str, str]] | None) -> tuple[str, str | None] | None:
    """The browser's own brand and major version: not a grease brand, and Chromium only when
    it names no other (Edge, Opera, Samsung Internet and Brave add theirs beside it)."""
    chosen: tuple[str, str] | None = None
    for brand in brands or ():
        if not _GREASE.search(brand[0]) and (chosen is None or chosen[0] == "Chromium"):
            chosen = brand
    if chosen is None or (name := _name(chosen[0])) is None:
        return None
    major = chosen[1].partition(".")[0]
    return _BROWSER_NAMES.get(name, name), major if major.isdecimal() and len(major) < 10 else None


def _string(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    if (match := _STRING.fullmatch(text)) is not None:
        return match[1]
    parsed = _parsed(value, "item")
    item = parsed[0] if isinstance(parsed, tuple) and parsed else None
    return item if isinstance(item, str) else None


def _string_list(value: bytes | None) -> list[str]:
    if value is None:
        return []
    text = value.decode("latin-1")
    if _STRING_LIST.fullmatch(text):
        items: list[str] = _STRING.findall(text)
    else:
        parsed = _parsed(value, "list")
        members = parsed if isinstance(parsed, list) else []
        items = [name for name, _ in map(_pair, members) if isinstance(name, str)]
    return items if len(items) <= MAX_BRANDS else []


def _boolean(value: bytes | None) -> bool | None:
    if value == b"?1":
        return True
    if value == b"?0":
        return False
    if value is None:
        return None
    parsed = _parsed(value, "item")
    item = parsed[0] if isinstance(parsed, tuple) and parsed else None
    return item if isinstance(item, bool) else None


def _parsed(value: bytes, kind: str) -> Any:
    """http-sf's reading of a field not in the common shape; `None` if it is malformed."""
    import http_sf  # here: the common shapes never need it, and `import sessionward` stays cheap

    try:
        return http_sf.parse(value, tltype=kind)
    except Exception:  # StructuredFieldError, or anything a hostile value provokes
        return None


def _name(text: str | None) -> str | None:
    return untrusted(text[:MAX_NAME_CHARS]) if text else None


def _version(text: str | None) -> str | None:
    return text if text and _VERSION.fullmatch(text) else None


def _form_factor(names: list[str]) -> str | None:
    return next((known for known in _FORM_FACTORS if known in names), None)


# -- the device ----------------------------------------------------------------------------------


def with_hints(device: Device, hints: HintValues) -> Device:
    """`device` (from the user-agent) with what the hints add or correct."""
    if device.kind == "bot" or hints == _NOTHING:
        return device
    browser, browser_version = device.browser, device.browser_version
    if hints.browser is not None and hints.browser != "Chromium":
        browser, browser_version = hints.browser, hints.browser_version or browser_version
    elif hints.browser is not None and browser is None:  # else the UA's name for Chromium
        browser, browser_version = "Chromium", hints.browser_version
    platform = _PLATFORMS.get(hints.platform or "", hints.platform) or device.os
    version = hints.platform_version
    os_version = _os_version(platform, version) or (
        device.os_version if platform == device.os else None
    )
    family, brand, model = device.device_family, device.brand, device.model
    if hints.model is not None and platform == "Android":
        family, brand, model = _hardware(hints.model, hints.mobile)
    elif hints.model is not None:
        family, brand, model = hints.model, None, hints.model
    kind = _KINDS.get(hints.form_factor or "", device.kind)
    if hints.form_factor is None and hints.mobile and kind in ("desktop", "other"):
        kind = "mobile"
    named = _named(device)  # a phone the user-agent names (no frozen "K"): as it did
    place = device.device_family if named else platform
    if platform in _LABELLED_VERSIONS and version is not None and os_version is not None:
        place = f"{platform} {_shown_version(platform, os_version)}"
        if named or hints.model is not None:
            place = f"{place} ({family})" if family else place
    elif hints.model is not None and family:
        place = f"{platform} ({family})" if platform else family
    return Device(
        browser,
        browser_version,
        platform,
        os_version,
        family,
        brand,
        model,
        kind,
        label(kind, browser, browser_version, place),
        platform_version=version,
        form_factor=hints.form_factor,
    )


_NOTHING = HintValues()


def _named(device: Device) -> bool:
    brand = device.brand or "Generic"
    return device.kind in ("mobile", "tablet") and not brand.startswith("Generic")


def _os_version(platform: str | None, version: str | None) -> str | None:
    """The OS release a platform version stands for: Windows' is its kernel's, 13 and up
    being Windows 11; elsewhere it is the release itself. `None` when it does not say."""
    if version is None:
        return None
    if platform == "Windows":
        major = int(version.partition(".")[0])
        return "11" if major >= 13 else "10" if major >= 1 else None  # 0: Windows 7 to 8.1
    return version


def _shown_version(platform: str, os_version: str) -> str:
    """As people name it: "15" for macOS 15.1.0 and Android 15, "10.15" for macOS 10.15.7."""
    major, _, rest = os_version.partition(".")
    if platform == "macOS" and major == "10":
        return f"10.{rest.partition('.')[0] or '0'}"
    return major


@lru_cache(maxsize=1024)  # many users share a model: its rules run once
def _hardware(model: str, mobile: bool | None) -> tuple[str | None, str | None, str | None]:
    """An Android model's family, brand and model, by ua-parser's device rules run on the
    user-agent Chromium would have sent before it froze the model out of it."""
    name = model.translate(_SYNTHETIC_UNSAFE)
    kind = "Mobile " if mobile else ""
    synthetic = (
        f"Mozilla/5.0 (Linux; Android 15; {name}) AppleWebKit/537.36 "
        f"(KHTML, like Gecko) Chrome/131.0.0.0 {kind}Safari/537.36"
    )
    family, brand, found = device_of(synthetic)
    if brand is None or brand.startswith("Generic") or family is None:
        return model, None, model
    return family, brand, found or model


_SYNTHETIC_UNSAFE = str.maketrans("", "", ";()")
