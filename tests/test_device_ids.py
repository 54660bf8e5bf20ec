"""The device cookie: names, flags, signing, rotation, and what it refuses to read."""

from __future__ import annotations

import hashlib
import re

import pytest
from itsdangerous import Signer
from starlette.types import Scope

from sessionward import CookieSigner, CookieTransport, DeviceCookie, InvalidToken, new_device_id
from sessionward.device_ids import DEVICE_COOKIE_MAX_AGE, DeviceTokens
from tests.apps import OLD_SECRET, SECRET


def scope_with(*cookies: str) -> Scope:
    return {"type": "http", "headers": [(b"cookie", cookie.encode()) for cookie in cookies]}


def device_cookie(**options: object) -> DeviceCookie:
    return DeviceCookie(CookieTransport(**options), [SECRET])  # type: ignore[arg-type]


def value_of(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def test_device_ids_are_random_base64url_of_at_least_128_bits() -> None:
    ids = {new_device_id() for _ in range(100)}
    assert len(ids) == 100
    for device_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", device_id)  # 256 bits


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({}, "__Host-device"),
        ({"path": "/app"}, "__Host-device"),
        ({"domain": "example.com"}, "__Host-device"),
        ({"secure": False}, "device"),
        ({"secure": False, "domain": "example.com"}, "device"),
        ({"name": "custom"}, "__Host-device"),  # named by its own scope, not the session's name
    ],
)
def test_the_name_is_host_only_whatever_the_session_cookies_scope(
    options: dict[str, object], name: str
) -> None:
    # Regression: with a domain-scoped session cookie the device cookie was
    # `__Secure-device` for the whole domain, so a sibling subdomain could plant its own.
    assert device_cookie(**options).name == name


def test_the_cookie_is_http_only_long_lived_and_host_only() -> None:
    cookie = device_cookie(
        path="/app", domain="example.com", same_site="strict", partitioned=True, http_only=False
    )
    header = cookie.set_cookie(new_device_id())
    assert header.startswith("__Host-device=")
    assert f"Max-Age={DEVICE_COOKIE_MAX_AGE}; " in header
    assert DEVICE_COOKIE_MAX_AGE == 400 * 24 * 3600
    attributes = header.split("; ")
    for flag in ("path=/", "httponly", "samesite=strict", "secure", "partitioned"):
        assert flag in attributes
    assert not any(attribute.startswith("domain=") for attribute in attributes)


def test_a_plain_http_cookie_is_not_secure() -> None:
    header = device_cookie(secure=False).set_cookie(new_device_id())
    assert header.startswith("device=")
    assert "secure" not in header.split("; ")


def test_what_is_set_is_read_back() -> None:
    cookie = device_cookie()
    device_id = new_device_id()
    token = value_of(cookie.set_cookie(device_id))
    assert cookie.read(scope_with(f"other=1; __Host-device={token}")) == device_id
    assert cookie.read(scope_with(f'__Host-device="{token}"')) == device_id
    assert cookie.read(scope_with()) is None


def test_the_first_cookie_that_verifies_wins() -> None:
    cookie = device_cookie()
    device_id = new_device_id()
    token = value_of(cookie.set_cookie(device_id))
    planted = f"{new_device_id()}.{'A' * 43}"
    assert cookie.read(scope_with(f"__Host-device={planted}; __Host-device={token}")) == device_id


def test_a_cookie_signed_with_an_old_key_verifies_after_rotation() -> None:
    device_id = new_device_id()
    old = DeviceCookie(CookieTransport(), [OLD_SECRET])
    rotated = DeviceCookie(CookieTransport(), [SECRET, OLD_SECRET])
    token = value_of(old.set_cookie(device_id))
    assert rotated.read(scope_with(f"__Host-device={token}")) == device_id
    assert value_of(rotated.set_cookie(device_id)) != token  # re-signed with the new key
    assert device_cookie().read(scope_with(f"__Host-device={token}")) is None  # old key gone


def tampered(token: str) -> list[str]:
    device_id, signature = token.split(".")
    flip = {"A": "B", "B": "A"}
    return [
        f"{device_id[:-1]}{flip.get(device_id[-1], 'A')}.{signature}",  # another id
        f"{device_id}.{signature[:-1]}{flip.get(signature[-1], 'A')}",  # another signature
        f"{device_id}.{signature}A",
        f"{device_id}.",
        f".{signature}",
        device_id,
        f"{device_id}.{signature}.{signature}",
        f"{device_id};.{signature}",
    ]


@pytest.mark.parametrize("case", range(8))
def test_tampered_values_are_not_read(case: int) -> None:
    cookie = device_cookie()
    token = value_of(cookie.set_cookie(new_device_id()))
    assert cookie.read(scope_with(f"__Host-device={tampered(token)[case]}")) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "null",
        "garbage",
        "é" * 40,
        "\x00\x01.\x02",
        "a" * 43 + "." + "b" * 43,
        "x" * 10_000,
        "a" * 200 + "." + "b" * 43,
        "%00.%00",
    ],
)
def test_garbage_forged_and_huge_values_are_none_not_errors(value: str) -> None:
    scope = {"type": "http", "headers": [(b"cookie", b"__Host-device=" + value.encode("utf-8"))]}
    assert device_cookie().read(scope) is None


def test_a_signature_spelt_another_way_is_refused() -> None:
    cookie = device_cookie()
    device_id = new_device_id()
    token = value_of(cookie.set_cookie(device_id))
    body, signature = token.split(".")
    # base64 leaves the last character's low bits unused: same bytes, another spelling
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    respelt = signature[:-1] + alphabet[last ^ 1]
    assert cookie.read(scope_with(f"__Host-device={body}.{respelt}")) is None


def test_a_session_token_is_not_a_device_cookie_nor_the_other_way_round() -> None:
    cookie = device_cookie()
    signer = CookieSigner([SECRET])
    shared_id = new_device_id()  # both kinds of id look alike: only the salt tells them apart
    session_token = signer.issue(shared_id)
    assert cookie.read(scope_with(f"__Host-device={session_token}")) is None
    device_token = value_of(cookie.set_cookie(shared_id))
    assert device_token != session_token
    with pytest.raises(InvalidToken):
        signer.verify(device_token)


def test_hashes_are_hmacs_under_every_key_current_first() -> None:
    device_id = new_device_id()
    one = DeviceCookie(CookieTransport(), [SECRET])
    both = DeviceCookie(CookieTransport(), [SECRET, OLD_SECRET])
    old = DeviceCookie(CookieTransport(), [OLD_SECRET])
    hashes = both.hashes(device_id)
    assert hashes == [*one.hashes(device_id), *old.hashes(device_id)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    assert hashes[0] != hashes[1]
    assert one.hashes(device_id) == one.hashes(device_id)  # stable: it is a lookup key
    assert one.hashes(new_device_id()) != one.hashes(device_id)
    assert device_id not in "".join(hashes)


def test_any_text_a_bearer_client_calls_its_device_hashes() -> None:
    cookie = device_cookie()
    for device_id in ("1234", "", "ünïcode", "lone \ud800 surrogate", "x" * 10_000):
        assert len(cookie.hashes(device_id)) == 1


@pytest.mark.parametrize("device_id", ["short", "a" * 43 + "; domain=evil", "a" * 43 + "\r\n"])
def test_only_a_well_formed_id_goes_into_a_header(device_id: str) -> None:
    message = "device_id must come from new_device_id() or a verified token"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        device_cookie().set_cookie(device_id)


# -- a bearer client's device token ---------------------------------------------------------


def token_scope(*values: str, header: bytes = b"device-token") -> Scope:
    return {"type": "http", "headers": [(header, value.encode("latin-1")) for value in values]}


def independently_signed(device_id: str, salt: bytes) -> str:
    """What 0.2 and 0.3 write, worked out with itsdangerous directly: HMAC-SHA256 under the
    salt, so a change of digest or salt in the library cannot pass unnoticed."""
    signer = Signer(SECRET.encode(), salt=salt, digest_method=hashlib.sha256)
    return f"{device_id}.{signer.get_signature(device_id).decode()}"


def test_tokens_and_cookies_are_signed_as_they_always_were() -> None:
    device_id = new_device_id()
    tokens = DeviceTokens([SECRET])
    cookie = device_cookie()
    assert tokens.issue(device_id) == independently_signed(device_id, b"sessionward.device-token")
    made_by_0_2 = independently_signed(device_id, b"sessionward.device")
    assert cookie.read(scope_with(f"__Host-device={made_by_0_2}")) == device_id
    assert tokens.read(token_scope(made_by_0_2)) is None  # a cookie is no token


def test_a_token_is_read_from_its_own_header_only() -> None:
    tokens = DeviceTokens([SECRET])
    token = tokens.issue(new_device_id())
    assert tokens.read(token_scope(token, header=b"x-device-token")) is None
    assert tokens.read(token_scope(token, header=b"user-agent")) is None
    assert tokens.read(token_scope("garbage", token)) is not None  # the first that verifies


def test_the_longest_id_fits_and_one_character_more_is_refused() -> None:
    tokens = DeviceTokens([SECRET])
    longest = "a" * 86
    token = tokens.issue(longest)
    assert len(token) == 130
    assert tokens.read(token_scope(token)) == longest
    assert tokens.read(token_scope(token + "A")) is None


def test_a_signature_over_a_malformed_id_is_refused() -> None:
    """Only a well-formed id is ever read back, even one signed with our key and salt (by a
    release that allowed other ids, say): it goes into headers and store keys."""
    tokens = DeviceTokens([SECRET])
    signer = Signer(SECRET.encode(), salt=b"sessionward.device-token", digest_method=hashlib.sha256)
    for device_id in ("short", "a" * 43 + ";", ""):
        signature = signer.get_signature(device_id).decode()
        assert tokens.read(token_scope(f"{device_id}.{signature}")) is None
        assert tokens.read(token_scope(signature)) is None  # no dot: no id at all


@pytest.mark.parametrize("tail", ["é" * 43, "\udcff", "sig\x00"])
def test_a_token_that_is_not_ascii_is_refused_not_an_error(tail: str) -> None:
    tokens = DeviceTokens([SECRET])
    device_id = new_device_id()
    assert (
        tokens.read(
            token_scope(f"{device_id}.{tail}".encode("utf-8", "surrogateescape").decode("latin-1"))
        )
        is None
    )
    assert (
        DeviceCookie(CookieTransport(), [SECRET]).read(
            {
                "type": "http",
                "headers": [
                    (
                        b"cookie",
                        f"__Host-device={device_id}.".encode()
                        + tail.encode("utf-8", "surrogateescape"),
                    )
                ],
            }
        )
        is None
    )
