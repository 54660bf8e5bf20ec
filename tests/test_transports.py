"""Cookie flags, reading the cookie back, and configuration checks."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.types import Scope

from sessionward import BearerSigner, BearerTransport, ConfigurationError, CookieTransport, JWTKey


def scope_for(host: str = "example.com", cookie: bytes | None = None) -> Scope:
    headers = [(b"host", host.encode())]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return {"type": "http", "headers": headers}


def test_defaults_are_safe() -> None:
    header = CookieTransport().set_cookie("token", 3600)
    assert header == "__Host-session=token; path=/; Max-Age=3600; httponly; samesite=lax; secure"


def test_secure_does_not_depend_on_the_host_header() -> None:
    """Behind a same-host proxy the app sees Host: 127.0.0.1 although the browser used https."""
    assert "; secure" in CookieTransport().set_cookie("t", 1)
    assert "secure" not in CookieTransport(secure=False).set_cookie("t", 1)


def test_every_flag_is_configurable() -> None:
    transport = CookieTransport(
        name="sid",
        max_age=None,
        path="/app",
        domain="example.com",
        same_site="strict",
        secure=False,
        http_only=False,
        partitioned=True,
    )
    header = transport.set_cookie("t", 3600)
    assert header == "sid=t; path=/app; samesite=strict; domain=example.com; partitioned"


def test_a_fixed_max_age_wins_over_the_session_lifetime() -> None:
    assert "Max-Age=60;" in CookieTransport(max_age=60).set_cookie("t", 3600)


def test_expiring_keeps_the_same_path_and_domain() -> None:
    header = CookieTransport(path="/app", domain="example.com").expire_cookie()
    assert header.startswith(
        "__Secure-session=null; path=/app; expires=Thu, 01 Jan 1970 00:00:00 GMT;"
    )
    assert "; domain=example.com" in header


def test_host_prefix_cookies_are_secure() -> None:
    assert "; secure" in CookieTransport(name="__Host-session").set_cookie("t", 1)


@pytest.mark.parametrize(
    "options",
    [
        {"name": "__Host-s", "path": "/app"},
        {"name": "__Host-s", "domain": "example.com"},
        {"name": "__Host-s", "secure": False},
        {"name": "__Secure-s", "secure": False},
        {"name": "bad name"},
        {"name": "semi;colon"},
        {"same_site": "none", "secure": False},
        {"same_site": "sometimes"},
        {"path": "relative"},
        {"domain": "a;b"},
    ],
)
def test_impossible_cookie_settings_fail_at_start_up(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CookieTransport(**options)  # type: ignore[arg-type]


def test_read_finds_every_cookie_with_our_name() -> None:
    scope = scope_for(cookie=b"other=1; session=first; x=y;session=second")
    assert CookieTransport(name="session").read(scope) == ["first", "second"]


def test_read_ignores_oversized_empty_and_binary_values() -> None:
    cookie = b"session=" + b"x" * 5000 + b"; session=; session=\xff\xfe; foo"
    assert CookieTransport(name="session").read(scope_for(cookie=cookie)) == ["\xff\xfe"]


def test_read_looks_at_every_cookie_header() -> None:
    scope: Scope = {"type": "http", "headers": [(b"cookie", b"a=1"), (b"cookie", b"session=t")]}
    assert CookieTransport(name="session").read(scope) == ["t"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Bearer abc.def.ghi", "abc.def.ghi"),
        (b"bearer  abc ", "abc"),
        (b"Basic dXNlcjpwYXNz", None),
        (b"Bearer", ""),
        (b"\xff\xfe Bearer", None),
    ],
)
def test_the_bearer_transport_reads_only_bearer_credentials(
    header: bytes, expected: str | None
) -> None:
    signer = BearerSigner(JWTKey("k", "HS256", "k" * 32))
    scope: Scope = {"type": "http", "headers": [(b"authorization", header)]}
    assert BearerTransport(signer).read(scope) == expected


@pytest.mark.parametrize("name", ["__host-s", "__HOST-s", "__secure-s", "__SeCuRe-s"])
def test_cookie_prefixes_are_checked_in_any_case(name: str) -> None:
    """Browsers treat `__host-` like `__Host-`, so the rules must too."""
    with pytest.raises(ConfigurationError):
        CookieTransport(name=name, secure=False)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_age": None, "same_site": "strict"},
        {"domain": "example.com", "partitioned": True, "path": "/app"},
    ],
)
def test_cookies_are_spelt_as_starlette_spells_them(options: dict[str, Any]) -> None:
    """Header assertions written against Starlette's middleware keep passing."""
    theirs_options: dict[str, Any] = {}
    if "partitioned" in inspect.signature(StarletteSessionMiddleware).parameters:
        theirs_options["partitioned"] = options.get("partitioned", False)
    elif options.get("partitioned"):  # Starlette before 0.38 cannot spell it
        pytest.skip("this Starlette's SessionMiddleware has no partitioned cookies")
    starlette = StarletteSessionMiddleware(
        _noop,
        secret_key="k",
        max_age=options.get("max_age", 3600),
        path=options.get("path", "/"),
        same_site=options.get("same_site", "lax"),
        https_only=True,
        domain=options.get("domain"),
        **theirs_options,
    )
    theirs = "{name}={value}; path={path}; {max_age}{flags}".format(
        name="session",
        value="token",
        path=options.get("path", "/"),
        max_age="" if options.get("max_age", 3600) is None else "Max-Age=3600; ",
        flags=starlette.security_flags,
    )
    ours = CookieTransport(
        **{**options, "name": "session", "max_age": options.get("max_age", 3600)}
    )
    assert ours.set_cookie("token", 0) == theirs


async def _noop(scope: Scope, receive: Any, send: Any) -> None: ...


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({}, "__Host-session"),  # no sibling subdomain, no plain-http page can plant it
        ({"path": "/app"}, "__Secure-session"),
        ({"domain": "example.com"}, "__Secure-session"),
        ({"secure": False}, "session"),
        ({"name": "session"}, "session"),  # the 0.1 name, kept on request
    ],
)
def test_the_default_name_is_the_safest_the_flags_allow(options: dict[str, Any], name: str) -> None:
    assert CookieTransport(**options).name == name
