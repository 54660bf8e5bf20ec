"""`Client`: what one request says about its client, read from its headers in one pass."""

from __future__ import annotations

from starlette.types import Scope

from sessionward import BearerTransport, CookieTransport, TrustedProxies
from sessionward.client import Client
from sessionward.client_hints import HINT_HEADERS
from sessionward.devices import MAX_USER_AGENT_CHARS

CHROME = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0"


def client_of(*headers: tuple[bytes, bytes]) -> Client:
    scope: Scope = {"type": "http", "headers": list(headers), "client": ("127.0.0.1", 5)}
    return Client(scope, TrustedProxies([]))


def test_a_request_without_headers_has_no_cookie_agent_or_hints() -> None:
    client = client_of()
    assert client.cookies == []
    assert client.authorizations is None
    assert client.user_agent == b""
    assert client.hints is None


def test_user_agents_are_cut_before_they_are_fingerprinted() -> None:
    client = client_of((b"user-agent", b"Mozilla/5.0 " + b"x" * 60_000))
    assert len(client.user_agent) == MAX_USER_AGENT_CHARS
    assert client.hints is None


def test_every_cookie_header_is_kept_in_order_as_http2_splits_them() -> None:
    client = client_of(
        (b"cookie", b"a=1; session=first"),
        (b"user-agent", CHROME),
        (b"cookie", b"session=second"),
    )
    assert client.cookies == [b"a=1; session=first", b"session=second"]
    assert CookieTransport(name="session").tokens(client.cookies) == ["first", "second"]


def test_the_first_bearer_authorization_wins_over_other_schemes() -> None:
    client = client_of(
        (b"authorization", b"Basic YWRhOnB3"),
        (b"authorization", b"Bearer  the.token "),
        (b"authorization", b"Bearer later"),
    )
    assert client.authorizations is not None
    assert len(client.authorizations) == 3
    assert BearerTransport.token(client.authorizations) == "the.token"
    assert BearerTransport.token(client_of((b"authorization", b"Basic x")).authorizations) is None
    assert BearerTransport.token(None) is None


def test_hints_anywhere_among_the_headers_are_read_into_their_slots() -> None:
    client = client_of(
        (b"user-agent", CHROME),
        (b"accept", b"text/html"),
        (b"sec-ch-ua-platform", b'"Windows"'),
        (b"cookie", b"session=t"),
        (b"sec-ch-ua-platform-version", b'"15.0.0"'),  # after the cookie: still read
    )
    hints = client.hints
    assert hints is not None
    assert dict(zip(HINT_HEADERS, hints, strict=True)) == {
        b"sec-ch-ua": None,
        b"sec-ch-ua-mobile": None,
        b"sec-ch-ua-platform": b'"Windows"',
        b"sec-ch-ua-platform-version": b'"15.0.0"',
        b"sec-ch-ua-model": None,
        b"sec-ch-ua-full-version-list": None,
        b"sec-ch-ua-form-factors": None,
    }
    assert client.user_agent == CHROME


def test_a_repeated_user_agent_or_hint_counts_once_the_last() -> None:
    client = client_of(
        (b"user-agent", b"first"),
        (b"sec-ch-ua-mobile", b"?0"),
        (b"user-agent", CHROME),
        (b"sec-ch-ua-mobile", b"?1"),
    )
    assert client.user_agent == CHROME
    assert client.hints is not None
    assert client.hints[1] == b"?1"


def test_header_names_other_than_asgis_lower_case_are_not_ours() -> None:
    """ASGI servers lower-case request header names; anything else is not a header we read."""
    client = client_of((b"User-Agent", CHROME), (b"Cookie", b"session=t"))
    assert client.user_agent == b""
    assert client.cookies == []


def test_the_transports_read_a_scope_as_they_read_the_client() -> None:
    scope: Scope = {
        "type": "http",
        "headers": [(b"cookie", b"session=one"), (b"authorization", b"Bearer abc")],
    }
    client = Client(scope, TrustedProxies([]))
    assert CookieTransport(name="session").read(scope) == ["one"]
    assert CookieTransport(name="session").tokens(client.cookies) == ["one"]
    assert BearerTransport.token(client.authorizations) == "abc"
