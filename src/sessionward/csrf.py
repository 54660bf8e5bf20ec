"""Cross-origin protection for a whole app: which requests the middleware refuses, and how.

The middleware refuses an unsafe request (not GET, HEAD or OPTIONS) that a browser says came
from another site, before the app runs and before the session is loaded, whether or not it
carries a session cookie: a cross-site form post to a sign-in form (login CSRF) is refused
too. The judgement itself is `origins.cross_origin`'s; this module adds the paths exempt from
it and the 403 that explains the refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import Scope

from .exceptions import ConfigurationError
from .origins import cross_origin

_FORBIDDEN_CHARACTERS = frozenset("?#*\\")


class ExemptPaths:
    """Paths other sites' pages may send unsafe requests to: SSO and payment callbacks that
    arrive as cross-site form posts.

    `"/sso/callback"` is that path exactly; `"/webhooks/*"` is every path under
    `/webhooks/`. Paths are the app's own, as its routes see them (without the `root_path`
    a proxy mounts it under), and percent-decoded, as ASGI gives them.
    """

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        if isinstance(patterns, str):
            raise ConfigurationError(
                f"csrf_exempt takes a list of paths, such as [{patterns!r}], not a string"
            )
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in patterns:
            _check(pattern)
            if pattern.endswith("/*"):
                prefixes.append(pattern[:-1])
            else:
                exact.add(pattern)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        return path in self.exact or path.startswith(self.prefixes)


def _check(pattern: object) -> None:
    """A `ConfigurationError` that names the fix for anything but `/a/path` or `/a/path/*`."""
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ConfigurationError(
            f"csrf_exempt entry {pattern!r} must be a path starting with '/', "
            "such as '/sso/callback' or '/webhooks/*'"
        )
    if pattern == "/*":
        raise ConfigurationError(
            "csrf_exempt=['/*'] exempts every path; pass SessionMiddleware(csrf=False) instead"
        )
    body = pattern.removesuffix("/*")
    if _FORBIDDEN_CHARACTERS.intersection(body) or not body.isprintable() or " " in body:
        raise ConfigurationError(
            f"csrf_exempt entry {pattern!r} must be a plain path (no query, no spaces, no "
            "wildcard but a final '/*' for everything under a path)"
        )


def refusal(scope: Scope, trusted: frozenset[str], exempt: ExemptPaths) -> str | None:
    """Why this request from another site's page is refused, or None when it may go on.

    Exempt paths are matched only once the request looks cross-origin (Go's order): most
    requests never pay for it.
    """
    reason = cross_origin(scope["headers"], trusted)
    if reason is None or (exempt and route_path(scope) in exempt):
        return None
    return reason


def route_path(scope: Scope) -> str:
    """The path as the app's routes see it: without the `root_path` it is mounted under, which
    ASGI servers now put in `path` too (Starlette's rule)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return "/"
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


def forbidden(reason: str) -> dict[str, str]:
    """The 403 body: why, and how to allow a site or a path that should be allowed."""
    return {
        "error": "cross_origin_request",
        "detail": (
            f"Cross-origin request refused: {reason}. To accept requests from pages of "
            "another site of yours, pass SessionMiddleware(trusted_origins="
            "['https://app.example.com']); for a path other sites post to (an SSO or "
            "payment callback), pass SessionMiddleware(csrf_exempt=['/that/path'])."
        ),
    }


def forbidden_json(reason: str) -> bytes:
    return json.dumps(forbidden(reason), separators=(",", ":")).encode()
