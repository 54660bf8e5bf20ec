"""Where a client signed in from: a short place name for the device list and alerts.

sessionward bundles no geo database. The app passes `SessionMiddleware(locate=...)`, a plain
function `(ip, headers) -> str | None` (a GeoIP lookup, say), called at sign-in and when a
session's IP changes, never on other requests. `headers` are the request's headers only when
the peer is a trusted proxy and empty otherwise: a client must not choose its own location.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable

from starlette.datastructures import Headers

logger = logging.getLogger("sessionward")

Locate = Callable[[str | None, Headers], str | None]
MAX_PLACE_CHARS = 64
# Cloudflare's "unknown" country; "T1" (Tor) is a place as far as an alert is concerned.
_UNKNOWN = frozenset({"", "XX"})


def header_locator(name: str) -> Locate:
    """A `locate` that reads a place a trusted proxy wrote, such as Cloudflare's
    `cf-ipcountry` or a load balancer's geo header.

    When the header comes more than once, the last copy counts: a proxy that appends its
    own copy rather than replacing the client's leaves a forged one first, and the nearest
    trusted proxy's is the last, as client IPs are read from the right.
    """
    header = name.strip().lower()
    if not header or not header.isascii() or any(c in header for c in " :\r\n"):
        raise ValueError(f"header_locator needs a header name such as 'cf-ipcountry', not {name!r}")

    def locate(ip: str | None, headers: Headers) -> str | None:
        copies = headers.getlist(header)
        value = copies[-1].strip() if copies else ""
        return None if value.upper() in _UNKNOWN else value

    locate.__qualname__ = f"header_locator({header!r})"
    return locate


def place(locate: Locate, ip: str | None, headers: Headers) -> str | None:
    """`locate`'s answer made safe to store and show, or `None`: a failing locator is logged,
    never the request's failure."""
    try:
        found = locate(ip, headers)
    except Exception:
        logger.exception("sessionward: locate(%r) failed; the location is left unknown", ip)
        return None
    if not isinstance(found, str):
        return None
    printable = "".join(c for c in found if _printable(c)).strip()
    return printable[:MAX_PLACE_CHARS] or None


def _printable(char: str) -> bool:
    """Not a control, format or separator character (but a space), nor markup: the place is
    shown in pages and e-mails."""
    if char in "<>&\"'":
        return False
    return char == " " or unicodedata.category(char)[0] not in "CZ"
