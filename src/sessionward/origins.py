"""Which sites a request may come from: its own host, and the origins configured as trusted.

Cookies go with every request a browser makes to this site, whichever page started it, so a
request that changes state with the cookie (or opens a websocket) is checked for where it
came from: the `Origin` header, or failing that `Referer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from .exceptions import ConfigurationError


def trusted_netlocs(origins: Iterable[str]) -> frozenset[str]:
    """The host[:port] of each configured origin, checked now, not at the first request."""
    return frozenset(origin_netloc(origin) for origin in origins)


def origin_netloc(origin: str) -> str:
    """The host[:port] of a configured origin, or a `ConfigurationError` naming the fix."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigurationError(
            f"trusted origin {origin!r} must be scheme://host[:port], "
            "such as 'https://app.example.com'"
        )
    return parts.netloc.lower()


def same_origin(headers: Headers, trusted: frozenset[str], *, unknown: bool) -> bool:
    """Whether the request came from this host or a trusted origin; `unknown` when it does
    not say (no `Origin`, no `Referer`)."""
    source = headers.get("origin") or headers.get("referer")
    if not source:
        return unknown
    if source == "null":  # a sandboxed or privacy-stripped page: it could be anyone
        return False
    origin = _netloc(source)
    return origin == headers.get("host", "").lower() or origin in trusted


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""
