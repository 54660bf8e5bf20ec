"""Session ids and cookie signing with key rotation."""

from __future__ import annotations

import hashlib

import pytest
from itsdangerous import Signer

from sessionward import ConfigurationError, CookieSigner, InvalidToken
from sessionward.tokens import (
    MAX_TOKEN_LENGTH,
    VERIFIED_TOKENS_CACHED,
    new_session_id,
    session_hash,
)

KEY_A = "a" * 32
KEY_B = "b" * 40
KEY_C = "c" * 36
KEY_D = "d" * 33  # never configured below: the forger's key

# Every rotation state: one key, a new key before an old one, and two old keys kept. Each
# negative test runs with each, and with the token signed by each configured key, since the
# second and later keys are checked by a path of their own.
ROTATIONS = [[KEY_A], [KEY_A, KEY_B], [KEY_A, KEY_B, KEY_C]]
SIGNED_BY = [
    pytest.param(keys, signing, id=f"{len(keys)}-keys-signed-by-{position}")
    for keys in ROTATIONS
    for position, signing in enumerate(keys)
]


def test_session_ids_are_32_random_bytes_in_base64url() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(session_id) == 43 for session_id in ids)


def test_the_hash_is_sha256_hex_and_hides_the_id() -> None:
    session_id = new_session_id()
    digest = session_hash(session_id)
    assert len(digest) == 64
    assert session_id not in digest


def test_issue_then_verify_returns_the_id() -> None:
    signer = CookieSigner([KEY_A])
    session_id = new_session_id()
    verified = signer.verify(signer.issue(session_id))
    assert verified.session_id == session_id
    assert verified.signed_with_current_key


def test_an_old_key_verifies_and_is_reported_stale() -> None:
    token = CookieSigner([KEY_A]).issue("some-id")
    verified = CookieSigner([KEY_B, KEY_A]).verify(token)
    assert verified.session_id == "some-id"
    assert not verified.signed_with_current_key


@pytest.mark.parametrize("keys", ROTATIONS, ids=len)
def test_a_removed_key_no_longer_verifies(keys: list[str]) -> None:
    token = CookieSigner([KEY_D]).issue("some-id")
    with pytest.raises(InvalidToken) as raised:
        CookieSigner(keys).verify(token)
    assert raised.value.reason == "bad_signature"


@pytest.mark.parametrize(("keys", "signing"), SIGNED_BY)
def test_each_configured_key_verifies_its_own_tokens_and_only_the_first_is_current(
    keys: list[str], signing: str
) -> None:
    verified = CookieSigner(keys).verify(CookieSigner([signing]).issue("some-id"))
    assert verified.session_id == "some-id"
    assert verified.signed_with_current_key == (signing == keys[0])


@pytest.mark.parametrize("keys", ROTATIONS, ids=len)
@pytest.mark.parametrize("token", ["", "abc", "abc.def", "x" * 200, "caf\u00e9.sig"])
def test_malformed_tokens_are_invalid(keys: list[str], token: str) -> None:
    with pytest.raises(InvalidToken) as raised:
        CookieSigner(keys).verify(token)
    assert raised.value.reason in {"malformed", "bad_signature"}


@pytest.mark.parametrize(("keys", "signing"), SIGNED_BY)
def test_every_single_character_change_is_rejected(keys: list[str], signing: str) -> None:
    signer = CookieSigner(keys)
    token = CookieSigner([signing]).issue(new_session_id())
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        changed = token[:position] + replacement + token[position + 1 :]
        with pytest.raises(InvalidToken) as raised:
            signer.verify(changed)
        assert raised.value.reason in {"malformed", "bad_signature"}


@pytest.mark.parametrize(
    ("keys", "message"),
    [([], "empty"), (["short"], r"secret_keys\[0\] is 5 bytes"), ([KEY_A, "x"], r"\[1\]")],
)
def test_missing_or_short_keys_are_configuration_errors(keys: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CookieSigner(keys)


def test_a_single_string_key_is_accepted() -> None:
    signer = CookieSigner(KEY_A)
    assert signer.verify(signer.issue("id")).session_id == "id"


def test_tokens_are_itsdangerous_signatures() -> None:
    """The fast path derives the key once; the format stays itsdangerous' own."""
    reference = Signer(KEY_A, salt=b"sessionward.cookie", digest_method=hashlib.sha256)
    session_id = new_session_id()
    token = CookieSigner([KEY_A]).issue(session_id)
    assert token == reference.sign(session_id).decode()
    assert CookieSigner([KEY_A]).verify(reference.sign("x").decode()).session_id == "x"


def test_only_tokens_that_verified_are_remembered() -> None:
    signer = CookieSigner([KEY_A])
    token = signer.issue("id")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for _ in range(3):
        with pytest.raises(InvalidToken):
            signer.verify(forged)
    assert signer._verified.cache_info().currsize == 0
    assert signer.verify(token) == signer.verify(token)
    assert signer._verified.cache_info().currsize == 1
    assert signer.verify(token).key == session_hash("id")


def test_the_hash_takes_any_string_a_bearer_sid_may_hold() -> None:
    lone_surrogate = "sess\udcff"
    expected = hashlib.sha256(lone_surrogate.encode("utf-8", "surrogatepass")).hexdigest()
    assert session_hash(lone_surrogate) == expected


def test_bytes_keys_are_taken_as_they_are() -> None:
    signer = CookieSigner([b"k" * 32, KEY_A])
    assert signer.verify(signer.issue("id")).signed_with_current_key
    assert CookieSigner([KEY_A]).verify(CookieSigner(KEY_A.encode()).issue("id"))


def test_no_keys_names_the_fix() -> None:
    with pytest.raises(ConfigurationError) as raised:
        CookieSigner([])
    assert str(raised.value) == (
        "secret_keys is empty: pass at least one random key of 32 or more characters, "
        "e.g. secrets.token_urlsafe(32)"
    )


def test_the_signature_is_after_the_last_dot_and_tokens_up_to_the_limit_verify() -> None:
    signer = CookieSigner([KEY_A])
    assert signer.verify(signer.issue("a.dotted.id")).session_id == "a.dotted.id"
    longest = signer.issue("x" * (MAX_TOKEN_LENGTH - 44))
    assert len(longest) == MAX_TOKEN_LENGTH
    assert signer.verify(longest).session_id == "x" * (MAX_TOKEN_LENGTH - 44)


@pytest.mark.parametrize("token", ["no-dot-at-all", "x" * (MAX_TOKEN_LENGTH + 1), "caf\u00e9.sig"])
def test_what_we_never_issue_is_malformed_before_any_signature_work(token: str) -> None:
    with pytest.raises(InvalidToken) as raised:
        CookieSigner([KEY_A, KEY_B]).verify(token)
    assert raised.value.reason == "malformed"
    assert str(raised.value) == "token is not one this library issued"


def test_a_bad_signature_says_so() -> None:
    with pytest.raises(InvalidToken) as raised:
        CookieSigner([KEY_A, KEY_B]).verify(CookieSigner([KEY_D]).issue("id"))
    assert str(raised.value) == "token signature does not match any configured key"


def test_the_cache_of_verified_tokens_is_bounded() -> None:
    maxsize = CookieSigner([KEY_A])._verified.cache_info().maxsize
    assert maxsize == VERIFIED_TOKENS_CACHED
