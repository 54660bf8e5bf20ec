"""Where a session token travels: a cookie with safe flags, or an `Authorization: Bearer` JWT."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from starlette.types import Scope

from .exceptions import ConfigurationError
from .refresh import DEFAULT_ACCESS_LIFETIME, DEFAULT_REUSE_GRACE
from .tokens import MAX_TOKEN_LENGTH

if TYPE_CHECKING:  # a cookie-only app never imports PyJWT and cryptography
    from .bearer import BearerSigner

SameSite = Literal["lax", "strict", "none"]
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Browsers may send several cookies of one name (different paths or domains); a few is normal.
_MAX_CANDIDATES = 4


class CookieTransport:
    """The session token in a cookie: HttpOnly, SameSite=Lax and Secure unless told otherwise.

    `Secure` is on by default. Deciding it from the request is unsafe: behind a reverse proxy
    on the same host the app sees `Host: 127.0.0.1` over plain http although the browser
    used https. Browsers accept Secure cookies from http://localhost, so local development
    works; pass `secure=False` for other plain-http set-ups. `max_age="absolute"` makes the
    cookie live exactly as long as the session may;
    `None` makes it a browser-session cookie; an int fixes it in seconds.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        max_age: int | Literal["absolute"] | None = "absolute",
        path: str = "/",
        domain: str | None = None,
        same_site: SameSite = "lax",
        secure: bool = True,
        http_only: bool = True,
        partitioned: bool = False,
    ) -> None:
        if name is None:
            name = default_cookie_name(secure=secure, path=path, domain=domain)
        _check_options(name, path, domain, same_site, secure)
        self.name = name
        self.max_age = max_age
        # A fixed max_age counts from the last change, so the cookie goes out on each.
        self.slides = isinstance(max_age, int)
        self.secure = secure
        # Kept so that companion cookies (the device cookie) can share the session's scope.
        self.path, self.domain, self.same_site = path, domain, same_site
        self.partitioned = partitioned
        self._name_bytes = name.encode("latin-1")
        self._path = path
        self._flags = _flags(domain, same_site, http_only, partitioned, secure)

    def read(self, scope: Scope) -> list[str]:
        """The values of every cookie with our name, in the order the browser sent them."""
        return self.tokens([value for name, value in scope["headers"] if name == b"cookie"])

    def tokens(self, cookie_headers: Iterable[bytes]) -> list[str]:
        """`read`, from the `Cookie` headers' values (`Client.cookies`, read with the rest)."""
        found: list[str] = []
        for value in cookie_headers:
            if self._name_bytes not in value:
                continue
            for pair in value.decode("latin-1").split(";"):
                name, sep, cookie = pair.strip().partition("=")
                if sep and name == self.name and 0 < len(cookie) <= MAX_TOKEN_LENGTH:
                    found.append(cookie.strip('"'))
                    if len(found) == _MAX_CANDIDATES:
                        return found
        return found

    def set_cookie(self, token: str, lifetime_s: int | None) -> str:
        """A `Set-Cookie` value carrying `token`; `lifetime_s` is the session's time left, or
        `None` for a session the user asked not to remember (a browser-session cookie).

        Spelt as Starlette's `SessionMiddleware` spells it, attribute for attribute, so that
        header assertions in an app's existing tests keep passing.
        """
        if lifetime_s is None:
            max_age = None
        else:
            max_age = lifetime_s if self.max_age == "absolute" else self.max_age
        expiry = "" if max_age is None else f"Max-Age={max(max_age, 0)}; "
        return f"{self.name}={token}; path={self._path}; {expiry}{self._flags}"

    def expire_cookie(self) -> str:
        """A `Set-Cookie` value that makes the browser forget the cookie (Starlette's)."""
        expired = "expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        return f"{self.name}=null; path={self._path}; {expired}{self._flags}"


def default_cookie_name(
    *, secure: bool, path: str, domain: str | None, stem: str = "session"
) -> str:
    """`__Host-session` wherever the prefix is allowed, else `__Secure-session`, else `session`.

    A `__Host-` cookie can only be set by this host over https for the whole site, so no
    sibling subdomain and no plain-http page can plant one in a visitor's browser (a planted
    session id is the start of session fixation). `stem` names other cookies the same way
    (`__Host-device`).
    """
    if not secure:
        return stem
    return f"__Host-{stem}" if path == "/" and domain is None else f"__Secure-{stem}"


def _flags(
    domain: str | None,
    same_site: SameSite,
    http_only: bool,
    partitioned: bool,
    secure: bool,
) -> str:
    flags = ["httponly"] if http_only else []
    flags.append(f"samesite={same_site}")
    if secure:
        flags.append("secure")
    if domain is not None:
        flags.append(f"domain={domain}")
    if partitioned:
        flags.append("partitioned")
    return "; ".join(flags)


def _check_options(name: str, path: str, domain: str | None, same_site: str, secure: bool) -> None:
    if not _COOKIE_NAME.match(name):
        raise ConfigurationError(f"cookie name {name!r} has characters a cookie name cannot")
    if same_site not in ("lax", "strict", "none"):
        raise ConfigurationError(f"same_site must be 'lax', 'strict' or 'none', not {same_site!r}")
    if same_site == "none" and secure is False:
        raise ConfigurationError("same_site='none' needs secure cookies; drop secure=False")
    if not path.startswith("/") or any(c in path for c in ";\r\n"):
        raise ConfigurationError(f"cookie path must start with '/' and hold no ';': {path!r}")
    if domain is not None and (not domain or any(c in domain for c in "; \r\n")):
        raise ConfigurationError(f"cookie domain {domain!r} is not a host name")
    prefix = name.lower()  # browsers match the prefixes case-insensitively
    if prefix.startswith("__host-") and (secure is False or path != "/" or domain is not None):
        raise ConfigurationError(
            "a '__Host-' cookie must be Secure, have path='/' and no domain; "
            "drop secure=False, path and domain, or rename the cookie"
        )
    if prefix.startswith("__secure-") and secure is False:
        raise ConfigurationError("a '__Secure-' cookie must be Secure; drop secure=False")


def challenge(cookie: CookieTransport, bearer: BearerTransport | None) -> str:
    """The `WWW-Authenticate` value of a 401 for a request that is not signed in.

    RFC 9110 requires one on every 401. `Bearer` (RFC 6750, without an error code since no
    token was sent) when the app takes bearer tokens. A cookie has no registered scheme:
    `Cookie` with its name, in the shape of the expired draft-broyer-http-cookie-auth, tells a
    client which credential is wanted without offering one the app would refuse, and no
    browser shows a password dialog for a scheme it does not know.
    """
    wanted = f'Cookie cookie-name="{cookie.name}"'
    return wanted if bearer is None else f"Bearer, {wanted}"


class BearerTransport:
    """The session token as a JWT in `Authorization: Bearer <token>`, for API and mobile clients.

    A request that carries one is authenticated by it alone: a bad, expired or revoked token
    gets 401 with `WWW-Authenticate`, never a silent anonymous session, and no cookie is ever
    set in reply. Requests without the header fall back to the cookie.
    """

    def __init__(
        self,
        signer: BearerSigner,
        *,
        access_token_lifetime: int = DEFAULT_ACCESS_LIFETIME,
        reuse_grace: int = DEFAULT_REUSE_GRACE,
    ) -> None:
        for name, seconds in (
            ("access_token_lifetime", access_token_lifetime),
            ("reuse_grace", reuse_grace),
        ):
            if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
                raise ConfigurationError(f"{name} must be whole seconds >= 0, not {seconds!r}")
        if access_token_lifetime == 0:
            raise ConfigurationError("access_token_lifetime must be at least 1 second")
        self.signer = signer
        # Token pairs (`login_bearer`): how long an access token lives, and how long after a
        # refresh token's first use the same token still gets the same answer (a retry, two
        # tabs at once) rather than counting as stolen.
        self.access_token_lifetime = access_token_lifetime
        self.reuse_grace = reuse_grace

    def read(self, scope: Scope) -> str | None:
        """The token of the first `Authorization: Bearer` header; `None` without one."""
        return self.token([value for name, value in scope["headers"] if name == b"authorization"])

    @staticmethod
    def token(authorizations: Iterable[bytes] | None) -> str | None:
        """`read`, from the `Authorization` headers' values (`Client.authorizations`)."""
        for value in authorizations or ():
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
        return None
