"""Whether a request came from another site's page, by the browser's own word.

Cookies go with every request a browser makes to this site, whichever page started it, so a
page elsewhere can post a form here with the visitor's session (CSRF), or sign the visitor
into its own account (login CSRF). Browsers say who started a request: `Sec-Fetch-Site` (all
of them since 2023) and `Origin`. `cross_origin` reads them as Go 1.25's
`net/http.CrossOriginProtection` does, so a page needs no token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from .exceptions import ConfigurationError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SENT_BY_ANOTHER_SITE = (
    "the browser says a page of another site sent it (Sec-Fetch-Site is not same-origin)"
)
ORIGIN_IS_NOT_HOST = "its Origin header names another site than this one (the Host header)"
_SAME_ORIGIN = (b"same-origin", b"none")  # `none`: the user typed the URL or used a bookmark
_DEFAULT_PORTS = {"http": 80, "https": 443}
_READ = frozenset({b"sec-fetch-site", b"origin", b"host"})


def cross_origin(headers: Iterable[tuple[bytes, bytes]], trusted: frozenset[str]) -> str | None:
    """Why a browser's request came from another site, or None when it did not say so.

    Go's order: `Sec-Fetch-Site` decides when present, so `same-site` (a sibling subdomain,
    which may be an attacker's) is refused; without it an `Origin` must name the `Host`
    (`Origin: null` never does); a request with neither is no browser's, or a same-origin one
    from a browser too old to say. A trusted origin is looked up only once the request looks
    cross-origin. The method is the caller's business: a websocket handshake is a GET.
    """
    fetch_site, origin, host = _read(headers)
    if fetch_site is not None:
        if fetch_site in _SAME_ORIGIN:
            return None
        reason = SENT_BY_ANOTHER_SITE
    elif origin is None or (host is not None and _authority(origin) == host.lower()):
        return None
    else:
        reason = ORIGIN_IS_NOT_HOST
    if origin is not None and origin.lower().decode("latin-1") in trusted:
        return None
    return reason


def _read(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes | None, bytes | None, bytes | None]:
    """`Sec-Fetch-Site`, `Origin` and `Host`, the first of each (as Go's `Header.Get`); an
    empty one counts as absent, as in Go."""
    first: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _READ:
            first.setdefault(name, value)
    get = first.get
    return get(b"sec-fetch-site") or None, get(b"origin") or None, get(b"host") or None


def _authority(origin: bytes) -> bytes:
    """The host[:port] of an `Origin`, lowercased (host names are case-insensitive), or b""
    for one without a scheme, such as `null`. Go's `url.Parse(origin).Host`, for the
    `scheme://host[:port]` that browsers send."""
    _, sep, rest = origin.partition(b"://")
    if not sep:
        return b""
    for end in (b"/", b"?", b"#"):
        rest = rest.partition(end)[0]
    return rest.rpartition(b"@")[2].lower()


# A host as browsers send it: a name of letters, digits, hyphens and dots, or an IP address
# (IPv6 in brackets, which `hostname` drops). No wildcard: `*.example.com` would match nothing.
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


def browser_origins(origins: Iterable[str]) -> frozenset[str]:
    """Each configured origin as browsers spell it in `Origin`, checked now, not at the first
    request.

    The whole origin is compared, scheme included, as Go does: trusting
    `https://app.example.com` must not trust `http://app.example.com`, a page anyone on the
    network path can rewrite.
    """
    if isinstance(origins, str):
        raise ConfigurationError(
            f"trusted_origins takes a list of origins, such as [{origins!r}], not a string"
        )
    return frozenset(browser_origin(origin) for origin in origins)


def browser_origin(origin: str) -> str:
    """`origin` as a browser serialises it (lowercase, no default port, no trailing slash), or
    a `ConfigurationError` naming the fix."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or not origin.isascii()
        or not _HOST.fullmatch(parts.hostname)
    ):
        raise ConfigurationError(
            f"trusted origin {origin!r} must be scheme://host[:port], "
            "such as 'https://app.example.com' (an international name in its xn-- form)"
        )
    host = parts.netloc.lower()
    if ":" in host.rpartition("]")[2]:  # a port, perhaps an empty one, after the host
        host = host.rpartition(":")[0]
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
