"""JWT bearer tokens: keys bound to one algorithm, kid selection, claims, rotation, tampering."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward import bearer
from sessionward.bearer import ALGORITHMS, BearerSigner, JWTKey
from sessionward.exceptions import (
    ConfigurationError,
    ExpiredToken,
    InvalidToken,
    SessionwardError,
    TokenNotYetValid,
)
from sessionward.tokens import CookieSigner, new_session_id

SECRET = "s" * 64  # long enough for HS512
SECRET_BYTES = SECRET.encode()
OTHER_SECRET = "o" * 64
NOW = 1_750_000_000


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@cache
def private_key(algorithm: str) -> PrivateKey:
    """One generated key per family for the whole run: RSA generation is slow."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def make_key(algorithm: str, kid: str = "k1") -> JWTKey:
    if algorithm.startswith("HS"):
        return JWTKey(kid, algorithm, SECRET)
    return JWTKey(kid, algorithm, private_key(algorithm))


def public_pem(algorithm: str) -> bytes:
    return bytes(
        private_key(algorithm)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hand_made(header: Any, claims: Any, secret: bytes = b"") -> str:
    """A JWT assembled by hand, HMAC-SHA256-signed with `secret` (empty: no signature).

    `claims` may be raw bytes, for JSON that `json.dumps` would not write.
    """
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    if not secret:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for `NOW`; a change whose value is `...` removes the claim."""
    base: dict[str, Any] = {"sid": "s-1", "sub": "u-1", "iat": NOW, "exp": NOW + 60, "jti": "j"}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


def signed(payload: Any, **header: Any) -> str:
    """`payload` signed with the HS256 test key, as a careless holder of the key could."""
    return hand_made({"alg": "HS256", "kid": "k1", "typ": "JWT", **header}, payload, SECRET_BYTES)


def reason_of(signer: BearerSigner, token: str, now: float = NOW) -> str:
    with pytest.raises(InvalidToken) as raised:
        signer.verify(token, now=now)
    return raised.value.reason


HS256 = BearerSigner(make_key("HS256"))


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_allowed_algorithm_round_trips(algorithm: str) -> None:
    signer = BearerSigner(make_key(algorithm), lifetime=120)
    token = signer.issue("session", "user", now=NOW)
    verified = signer.verify(token, now=NOW + 1)
    assert (verified.session_id, verified.user_id) == ("session", "user")
    assert (verified.issued_at, verified.expires_at) == (NOW, NOW + 120)
    assert len(verified.token_id) >= 16
    assert (verified.issuer, verified.audience) == (None, None)
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "kid": "k1", "typ": "JWT"}


def test_token_ids_are_unique() -> None:
    tokens = [HS256.verify(HS256.issue("s", "u")).token_id for _ in range(100)]
    assert len(set(tokens)) == 100


def test_verify_uses_the_clock_when_now_is_not_given() -> None:
    assert HS256.verify(HS256.issue("s", "u")).session_id == "s"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_pem_private_key_signs_and_pem_public_key_verifies(algorithm: str) -> None:
    pem = private_key(algorithm).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    token = BearerSigner(JWTKey("k1", algorithm, pem.decode())).issue("s", "u", now=NOW)
    verifier = BearerSigner(
        [make_key("HS256", "signing"), JWTKey("k1", algorithm, public_pem(algorithm))]
    )
    assert verifier.verify(token, now=NOW).session_id == "s"


def test_issuer_and_audience_are_issued_and_checked() -> None:
    signer = BearerSigner(make_key("HS256"), issuer="https://auth", audience="api")
    verified = signer.verify(signer.issue("s", "u", now=NOW), now=NOW)
    assert (verified.issuer, verified.audience) == ("https://auth", "api")
    assert reason_of(signer, signed(claims(iss="https://evil", aud="api"))) == "wrong_issuer"
    assert reason_of(signer, signed(claims(aud="api"))) == "wrong_issuer"
    assert reason_of(signer, signed(claims(iss="https://auth", aud="other"))) == "wrong_audience"
    assert reason_of(signer, signed(claims(iss="https://auth"))) == "wrong_audience"


def test_a_token_for_an_audience_is_refused_by_a_signer_without_one() -> None:
    assert reason_of(HS256, signed(claims(aud="api"))) == "wrong_audience"


def test_an_issuer_is_reported_even_when_not_configured() -> None:
    assert HS256.verify(signed(claims(iss="someone")), now=NOW).issuer == "someone"


# --- algorithm confusion and key selection ---------------------------------------------------


def test_alg_none_is_refused() -> None:
    token = hand_made({"alg": "none", "kid": "k1", "typ": "JWT"}, claims())
    assert reason_of(HS256, token) == "wrong_algorithm"
    unsigned = hand_made({"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims())
    assert reason_of(HS256, unsigned) == "bad_signature"


def test_the_jws_underneath_knows_only_the_allowed_algorithms() -> None:
    assert set(bearer._JWS.get_algorithms()) == ALGORITHMS


def test_hmac_signed_with_the_rsa_public_key_is_refused() -> None:
    signer = BearerSigner(make_key("RS256", "rsa"))
    forged = hand_made({"alg": "HS256", "kid": "rsa", "typ": "JWT"}, claims(), public_pem("RS256"))
    assert reason_of(signer, forged) == "wrong_algorithm"


def test_the_rsa_public_key_cannot_be_configured_as_an_hmac_secret() -> None:
    with pytest.raises(ConfigurationError, match="PEM"):
        JWTKey("k1", "HS256", public_pem("RS256"))


@pytest.mark.parametrize("kid", ["unknown", "", 1, None, ["k1"], {"k": 1}])
def test_an_unknown_or_malformed_kid_is_refused(kid: Any) -> None:
    assert reason_of(HS256, signed(claims(), kid=kid)) == "unknown_key"


def test_a_token_without_kid_is_refused() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert reason_of(HS256, token) == "unknown_key"


def test_a_right_kid_with_the_wrong_secret_is_a_bad_signature() -> None:
    token = jwt.encode(claims(), OTHER_SECRET, algorithm="HS256", headers={"kid": "k1"})
    assert reason_of(HS256, token) == "bad_signature"


def test_a_header_algorithm_other_than_the_keys_is_refused() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS512", headers={"kid": "k1"})
    assert reason_of(HS256, token) == "wrong_algorithm"


# --- claims -----------------------------------------------------------------------------------


def test_an_expired_token_raises_expired_token() -> None:
    token = HS256.issue("s", "u", lifetime=60, now=NOW)
    assert HS256.verify(token, now=NOW + 59).session_id == "s"
    with pytest.raises(ExpiredToken) as raised:
        HS256.verify(token, now=NOW + 60)
    assert raised.value.reason == "expired"


@pytest.mark.parametrize("payload", [claims(nbf=NOW + 30), claims(iat=NOW + 30, exp=NOW + 90)])
def test_a_token_from_the_future_is_not_yet_valid(payload: dict[str, Any]) -> None:
    with pytest.raises(TokenNotYetValid) as raised:
        HS256.verify(signed(payload), now=NOW)
    assert raised.value.reason == "not_yet_valid"
    assert HS256.verify(signed(payload), now=NOW + 30).session_id == "s-1"


def test_leeway_tolerates_clock_skew_both_ways() -> None:
    lenient = BearerSigner(make_key("HS256"), leeway=10)
    expired = signed(claims(exp=NOW - 5))
    early = signed(claims(nbf=NOW + 5))
    assert reason_of(HS256, expired) == "expired"
    assert reason_of(HS256, early) == "not_yet_valid"
    assert lenient.verify(expired, now=NOW).session_id == "s-1"
    assert lenient.verify(early, now=NOW).session_id == "s-1"
    assert reason_of(lenient, expired, now=NOW + 5) == "expired"


@pytest.mark.parametrize("name", ["sid", "sub", "iat", "exp", "jti"])
def test_each_required_claim_is_required(name: str) -> None:
    assert reason_of(HS256, signed(claims(**{name: ...}))) == "missing_claim"


@pytest.mark.parametrize(
    "change",
    [
        {"sid": 1},
        {"sid": ""},
        {"sub": None},
        {"sub": ["u"]},
        {"jti": 7},
        {"iat": "1750000000"},
        {"exp": "9999999999"},
        {"exp": 1.75e9},
        {"exp": True},
        {"exp": None},
        {"exp": [1]},
        {"nbf": "0"},
        {"iss": 5},
        {"aud": ["api"]},
    ],
)
def test_claims_of_the_wrong_type_are_refused(change: dict[str, Any]) -> None:
    assert reason_of(HS256, signed(claims(**change))) == "invalid_claim"


def test_huge_and_infinite_numbers_do_not_escape() -> None:
    assert HS256.verify(signed(claims(exp=10**300)), now=NOW).expires_at == 10**300
    assert reason_of(HS256, signed(claims(exp=float("inf")))) == "invalid_claim"
    assert reason_of(HS256, signed(claims(iat=float("nan")))) == "invalid_claim"
    too_many_digits = b'{"sid":"s","sub":"u","iat":1,"exp":' + b"9" * 5000 + b',"jti":"j"}'
    assert reason_of(HS256, signed(too_many_digits)) == "malformed"
    assert reason_of(HS256, signed(b"[" * 3000 + b"]" * 3000)) == "malformed"


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, None, b"\xff\xfe", b"{"])
def test_a_payload_that_is_not_a_json_object_is_malformed(payload: Any) -> None:
    assert reason_of(HS256, signed(payload)) == "malformed"


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "eyJhbGciOiJIUzI1NiJ9",
        "x" * 9000,
        "\u00e9.\u00e9.\u00e9",
        "\x00\x01\x02",
        b64(b"\xff\xfe" * 20) + "." + b64(b"\x00") + "." + b64(b"\x01"),
        b64(b"[" * 3000) + ".e30.",
        b64(b"null") + ".e30.",
        b64(b'{"alg":"HS256","kid":"k1"}') + ".!!!!." + b64(b"x" * 32),
        b64(b'{"alg":"HS256","kid":"k1"}') + ".e30.====",
    ],
)
def test_garbage_is_malformed(token: str) -> None:
    assert reason_of(HS256, token) == "malformed"


# --- rotation ---------------------------------------------------------------------------------


def test_rotation_keeps_old_tokens_until_the_old_key_is_removed() -> None:
    old, new = JWTKey("2024", "HS256", SECRET), JWTKey("2025", "ES256", private_key("ES256"))
    old_token = BearerSigner(old).issue("s", "u", now=NOW)
    rotated = BearerSigner([new, old])
    assert rotated.verify(old_token, now=NOW).session_id == "s"
    assert jwt.get_unverified_header(rotated.issue("s", "u"))["kid"] == "2025"
    assert reason_of(BearerSigner(new), old_token) == "unknown_key"


def test_a_verify_only_key_can_follow_the_signing_key() -> None:
    token = BearerSigner(make_key("EdDSA", "old")).issue("s", "u", now=NOW)
    retired = JWTKey("old", "EdDSA", private_key("EdDSA").public_key())
    assert BearerSigner([make_key("HS256", "new"), retired]).verify(token, now=NOW).user_id == "u"


# --- configuration ----------------------------------------------------------------------------


def small_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: JWTKey("k", "HS256", "x" * 31), "31 bytes"),
        (lambda: JWTKey("k", "HS384", "x" * 47), "needs at least 48"),
        (lambda: JWTKey("k", "HS512", "x" * 63), "needs at least 64"),
        (lambda: JWTKey("k", "none", SECRET), "not one of"),
        (lambda: JWTKey("k", "RS512", SECRET), "not one of"),
        (lambda: JWTKey("", "HS256", SECRET), "kid"),
        (lambda: JWTKey("k", "HS256", private_key("RS256")), "secret"),
        (
            lambda: JWTKey("k", "RS256", SECRET),
            r"^key 'k' is not an unencrypted PEM private or public key "
            r"\(load an encrypted one yourself and pass the key object\)$",
        ),
        (lambda: JWTKey("k", "RS256", private_key("ES256")), "RS256: it is not an RSA key$"),
        (
            lambda: JWTKey("k", "ES256", private_key("RS256")),
            r"ES256: it is not a P-256 \(secp256r1\) EC key$",
        ),
        (lambda: JWTKey("k", "ES256", ec.generate_private_key(ec.SECP384R1())), "P-256"),
        (lambda: JWTKey("k", "EdDSA", private_key("ES256")), "EdDSA: it is not an Ed25519 key$"),
        (lambda: JWTKey("k", "RS256", small_rsa()), "1024 bits"),
        (lambda: BearerSigner([]), "empty"),
        (lambda: BearerSigner([make_key("HS256"), make_key("ES256")]), "unique"),
        (lambda: BearerSigner(JWTKey("k", "RS256", public_pem("RS256"))), "first key signs"),
        (lambda: BearerSigner(make_key("HS256"), lifetime=0), "lifetime"),
        (lambda: BearerSigner(make_key("HS256"), leeway=-1), "leeway"),
    ],
)
def test_bad_configuration_fails_at_start_up(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()


def test_keys_never_show_their_secret_in_repr() -> None:
    assert SECRET not in repr(make_key("HS256"))
    assert repr(make_key("HS256")) == "JWTKey(kid='k1', algorithm='HS256')"


@pytest.mark.parametrize(
    ("session_id", "user_id", "lifetime"), [("", "u", 1), ("s", "", 1), ("s", "u", 0)]
)
def test_issue_refuses_empty_ids_and_lifetimes(
    session_id: str, user_id: str, lifetime: int
) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        HS256.issue(session_id, user_id, lifetime=lifetime)


def test_the_exception_family() -> None:
    assert issubclass(ExpiredToken, InvalidToken)
    assert issubclass(TokenNotYetValid, InvalidToken)
    assert issubclass(InvalidToken, SessionwardError)
    assert InvalidToken("x").reason == "invalid"
    assert InvalidToken("x", reason="malformed").reason == "malformed"


# --- properties -------------------------------------------------------------------------------

ids = st.text(min_size=1, max_size=200)


@given(session_id=ids, user_id=ids)
def test_verify_inverts_issue_for_any_ids(session_id: str, user_id: str) -> None:
    verified = HS256.verify(HS256.issue(session_id, user_id, now=NOW), now=NOW)
    assert (verified.session_id, verified.user_id) == (session_id, user_id)


def one_character_changed(token: str, data: st.DataObject) -> str:
    position = data.draw(st.integers(0, len(token) - 1), label="position")
    replacement = data.draw(st.characters().filter(lambda c: c != token[position]))
    return token[:position] + replacement + token[position + 1 :]


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@settings(max_examples=300)
@given(data=st.data())
def test_any_single_character_change_to_a_jwt_is_rejected(
    algorithm: str, data: st.DataObject
) -> None:
    signer = BearerSigner(make_key(algorithm))
    changed = one_character_changed(signer.issue(new_session_id(), "user", now=NOW), data)
    with pytest.raises(InvalidToken):
        signer.verify(changed, now=NOW)


@settings(max_examples=300)
@given(data=st.data())
def test_any_single_character_change_to_a_cookie_token_is_rejected(data: st.DataObject) -> None:
    signer = CookieSigner(SECRET)
    changed = one_character_changed(signer.issue(new_session_id()), data)
    with pytest.raises(InvalidToken):
        signer.verify(changed)


def test_a_jwt_signature_spelt_another_way_is_rejected() -> None:
    """The last character of a 32-byte MAC carries 4 bits and 2 unused ones: find a twin."""
    token = HS256.issue("s", "u", now=NOW)
    body, _, signature = token.rpartition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twins = [
        c
        for c in alphabet
        if c != signature[-1]
        and base64.urlsafe_b64decode(signature[:-1] + c + "=")
        == base64.urlsafe_b64decode(signature + "=")
    ]
    assert len(twins) == 3
    with pytest.raises(InvalidToken) as raised:
        HS256.verify(f"{body}.{signature[:-1]}{twins[0]}", now=NOW)
    assert raised.value.reason == "malformed"


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda raw: b64(raw)))
def test_arbitrary_text_only_ever_raises_invalid_token(token: str) -> None:
    with pytest.raises(InvalidToken):
        HS256.verify(token, now=NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
claim_names = st.sampled_from(["sid", "sub", "iat", "exp", "jti", "nbf", "iss", "aud", "x"])


@given(
    st.dictionaries(claim_names, json_values),
    st.dictionaries(st.sampled_from(["kid", "alg", "typ", "crit", "b64"]), json_values),
)
def test_correctly_signed_nonsense_only_ever_raises_invalid_token(
    payload: dict[str, Any], header: dict[str, Any]
) -> None:
    for token in (signed(payload), signed(payload, **header)):
        with contextlib.suppress(InvalidToken):
            HS256.verify(token, now=NOW)


def test_each_refusal_says_why_in_words() -> None:
    """The reason is for the client; the message is for the app's logs, and names the check."""
    now = 1_800_000_000
    key = JWTKey("k1", "HS256", SECRET)
    signer = BearerSigner(key, issuer="us", audience="app")
    good = {"sid": "s", "sub": "ada", "iat": now, "exp": now + 60, "jti": "j", "iss": "us"}
    header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    secret = SECRET.encode()
    cases = {
        "a.b": "token is not a JWT this library issued",
        hand_made({**header, "kid": "k9"}, good, secret): "token names no configured key id",
        hand_made({**header, "alg": "HS384"}, good, secret): "key 'k1' only verifies HS256",
        hand_made(header, [1], secret): "token segment is not a JSON object",
        hand_made(header, {**good, "aud": "app", "iss": "them"}, secret): (
            "token issuer is not ours"
        ),
        hand_made(header, {**good, "aud": "them"}, secret): "token audience is not ours",
        hand_made(header, {**good, "aud": "app", "exp": now}, secret): "token has expired",
        hand_made(header, {**good, "aud": "app", "iat": now + 1}, secret): (
            "token is not valid yet (iat or nbf is in the future)"
        ),
    }
    for token, message in cases.items():
        with pytest.raises(InvalidToken) as raised:
            signer.verify(token, now=now)
        assert str(raised.value) == message
    too_long = "a" * (bearer.MAX_BEARER_TOKEN_LENGTH - 4) + ".b.c"
    with pytest.raises(InvalidToken) as raised:
        signer.verify(too_long, now=now)
    assert raised.value.reason == "malformed"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: JWTKey("", "HS256", SECRET), "a JWTKey needs a non-empty string kid"),
        (
            lambda: JWTKey("k", "HS1", SECRET),
            "key 'k': algorithm 'HS1' is not one of ES256, EdDSA, HS256, HS384, HS512, RS256",
        ),
        (lambda: JWTKey("mine", "HS256", "x" * 31), "key 'mine' is 31 bytes long"),
        (lambda: JWTKey("mine", "RS256", private_key("ES256")), "key 'mine' cannot be used"),
        (lambda: BearerSigner([]), "keys is empty: pass at least one JWTKey"),
        (
            lambda: BearerSigner(JWTKey("k", "RS256", public_pem("RS256"))),
            "keys[0] ('k') is a public key, but the first key signs: pass its private key",
        ),
        (
            lambda: BearerSigner(make_key("HS256"), lifetime=1, leeway=-1),
            "leeway must be >= 0 seconds and lifetime > 0 seconds",
        ),
    ],
)
def test_configuration_errors_name_the_key_and_the_fix(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        make()
    assert str(raised.value).startswith(message)


def test_a_one_second_lifetime_and_the_default_leeway_are_kept() -> None:
    signer = BearerSigner(make_key("HS256"), lifetime=1)
    assert (signer.lifetime, signer.leeway) == (1, 0)
    token = signer.issue("s", "ada", lifetime=1, now=100)
    assert signer.verify(token, now=100).expires_at == 101
    with pytest.raises(ValueError, match=r"^session_id and user_id must be non-empty"):
        signer.issue("s", "ada", lifetime=0)


def test_the_payload_is_compact_json_with_a_128_bit_jti() -> None:
    token = BearerSigner(make_key("HS256")).issue("s", "ada", now=100)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert b", " not in payload
    assert b'": ' not in payload
    assert len(json.loads(payload)["jti"]) == 22  # 16 random bytes in base64url
