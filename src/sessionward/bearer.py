"""JWT bearer tokens for API and mobile clients: issue, verify, rotate keys by `kid`."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import jwt
from itsdangerous.encoding import base64_decode
from jwt.utils import is_pem_format, is_ssh_key

from .exceptions import ConfigurationError, ExpiredToken, InvalidToken, TokenNotYetValid
from .tokens import MIN_SECRET_KEY_LENGTH, canonical_base64

if TYPE_CHECKING:
    from typing import TypeAlias

    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

    PrivateKey: TypeAlias = RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey
    PublicKey: TypeAlias = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey
    KeyMaterial: TypeAlias = str | bytes | PrivateKey | PublicKey

T = TypeVar("T", str, int)

# Ours are under 1 KB even with RS256; the cap bounds the work a forged token can cost.
MAX_BEARER_TOKEN_LENGTH = 8 * 1024
MIN_RSA_KEY_BITS = 2048
DEFAULT_BEARER_LIFETIME = 3600
ALGORITHMS = frozenset({"HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"})
# RFC 7518 3.2: an HMAC key must be at least as long as the hash output.
_HMAC_DIGEST_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
# A JWS that knows no other algorithm: even a bug in our checks cannot reach `none`.
_JWS = jwt.PyJWS(algorithms=sorted(ALGORITHMS))


@dataclass(frozen=True, slots=True, eq=False)
class JWTKey:
    """One bearer-token key, bound to exactly one algorithm.

    `key` is the HMAC secret for HS256/384/512; for RS256, ES256 (P-256) and EdDSA (Ed25519)
    it is a PEM string or a `cryptography` key object: a private key signs and verifies, a
    public key only verifies (a retired key, or a service that only checks tokens).
    Verification only ever runs this key's algorithm, so an HMAC token "signed" with an RSA
    public key cannot pass.
    """

    kid: str
    algorithm: str
    key: KeyMaterial = field(repr=False)
    signing_key: bytes | PrivateKey | None = field(init=False, repr=False)
    verifying_key: bytes | PublicKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not self.kid:
            raise ConfigurationError("a JWTKey needs a non-empty string kid")
        if self.algorithm not in ALGORITHMS:
            raise ConfigurationError(
                f"key {self.kid!r}: algorithm {self.algorithm!r} is not one of "
                f"{', '.join(sorted(ALGORITHMS))}"
            )
        signing: bytes | PrivateKey | None
        verifying: bytes | PublicKey
        if self.algorithm in _HMAC_DIGEST_BYTES:
            signing = verifying = _hmac_secret(self.kid, self.algorithm, self.key)
        else:
            signing, verifying = _key_pair(self.kid, self.algorithm, self.key)
        object.__setattr__(self, "signing_key", signing)
        object.__setattr__(self, "verifying_key", verifying)


@dataclass(frozen=True, slots=True)
class BearerClaims:
    """What a verified bearer token says; times are seconds since the epoch."""

    session_id: str
    user_id: str
    issued_at: int
    expires_at: int
    token_id: str
    issuer: str | None = None
    audience: str | None = None


class BearerSigner:
    """Issues and verifies JWT bearer tokens; the first key signs, every key verifies.

    Rotation: put the new key first and keep the old one until the last token it signed has
    expired (`lifetime` plus `leeway`), then remove it. The `kid` header picks the one key a
    token is checked against; a token without a `kid` is refused rather than tried against
    every key, since we always set one and trying all would let each forgery cost one
    signature check per key.
    """

    def __init__(
        self,
        keys: JWTKey | Sequence[JWTKey],
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: int = 0,
        lifetime: int = DEFAULT_BEARER_LIFETIME,
    ) -> None:
        keys = [keys] if isinstance(keys, JWTKey) else list(keys)
        self._signing_key = _check_bearer_keys(keys)
        self._keys = {key.kid: key for key in keys}
        if leeway < 0 or lifetime <= 0:
            raise ConfigurationError("leeway must be >= 0 seconds and lifetime > 0 seconds")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.lifetime = lifetime

    def issue(
        self,
        session_id: str,
        user_id: str,
        *,
        lifetime: int | None = None,
        now: float | None = None,
    ) -> str:
        """A signed JWT naming the session and its user, valid for `lifetime` seconds."""
        lifetime = self.lifetime if lifetime is None else lifetime
        if not session_id or not user_id or lifetime <= 0:
            raise ValueError("session_id and user_id must be non-empty and lifetime positive")
        issued_at = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sid": session_id,
            "sub": user_id,
            "iat": issued_at,
            "exp": issued_at + lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.audience is not None:
            claims["aud"] = self.audience
        key, signing_key = self._signing_key
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        return _JWS.encode(payload, signing_key, key.algorithm, headers={"kid": key.kid})

    def verify(self, token: str, *, now: float | None = None) -> BearerClaims:
        """The claims of `token`, or `InvalidToken` (or a subclass) saying why not.

        The signature is checked before any claim is read, so a forged token can only ever
        fail as "malformed", "unknown_key", "wrong_algorithm" or "bad_signature".
        """
        key = self._key_for(token)
        payload = _json_object(_verified_payload(token, key))
        claims = _claims(payload)
        self._check_issuer_and_audience(claims)
        self._check_times(claims, _optional(payload, "nbf", int), now)
        return claims

    def _key_for(self, token: str) -> JWTKey:
        """The configured key the token's header names, after the cheap shape checks."""
        segments = token.split(".")
        if (
            len(token) > MAX_BEARER_TOKEN_LENGTH
            or not token.isascii()
            or len(segments) != 3
            or not all(canonical_base64(segment) for segment in segments)
        ):
            raise InvalidToken("token is not a JWT this library issued", reason="malformed")
        header = _json_object(base64_decode(segments[0]))
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("token names no configured key id", reason="unknown_key")
        if header.get("alg") != key.algorithm:
            raise InvalidToken(
                f"key {key.kid!r} only verifies {key.algorithm}", reason="wrong_algorithm"
            )
        return key

    def _check_issuer_and_audience(self, claims: BearerClaims) -> None:
        if self.issuer is not None and claims.issuer != self.issuer:
            raise InvalidToken("token issuer is not ours", reason="wrong_issuer")
        # A token meant for a named audience is not for a signer that has none, as in pyjwt.
        if claims.audience != self.audience:
            raise InvalidToken("token audience is not ours", reason="wrong_audience")

    def _check_times(self, claims: BearerClaims, not_before: int | None, now: float | None) -> None:
        now = time.time() if now is None else now
        if now >= claims.expires_at + self.leeway:
            raise ExpiredToken("token has expired")
        starts = claims.issued_at if not_before is None else max(claims.issued_at, not_before)
        if starts > now + self.leeway:
            raise TokenNotYetValid("token is not valid yet (iat or nbf is in the future)")


def _check_bearer_keys(keys: list[JWTKey]) -> tuple[JWTKey, bytes | PrivateKey]:
    """The signing key and its secret or private key, after checking the whole list."""
    if not keys:
        raise ConfigurationError("keys is empty: pass at least one JWTKey")
    kids = [key.kid for key in keys]
    duplicates = sorted({kid for kid in kids if kids.count(kid) > 1})
    if duplicates:
        raise ConfigurationError(f"key ids must be unique; used more than once: {duplicates}")
    if keys[0].signing_key is None:
        raise ConfigurationError(
            f"keys[0] ({keys[0].kid!r}) is a public key, but the first key signs: "
            "pass its private key"
        )
    return keys[0], keys[0].signing_key


def _hmac_secret(kid: str, algorithm: str, key: KeyMaterial) -> bytes:
    if not isinstance(key, (str, bytes)):
        raise ConfigurationError(f"key {kid!r}: {algorithm} needs a secret str or bytes")
    secret = key.encode("utf-8") if isinstance(key, str) else key
    minimum = max(MIN_SECRET_KEY_LENGTH, _HMAC_DIGEST_BYTES[algorithm])
    if len(secret) < minimum:
        raise ConfigurationError(
            f"key {kid!r} is {len(secret)} bytes long; {algorithm} needs at least {minimum} "
            f"(generate one with secrets.token_urlsafe({minimum}))"
        )
    # A public key as an HMAC secret is the algorithm-confusion attack set up by hand.
    if is_pem_format(secret) or is_ssh_key(secret):
        raise ConfigurationError(f"key {kid!r}: an {algorithm} secret must not be a PEM/SSH key")
    return secret


def _key_pair(kid: str, algorithm: str, key: KeyMaterial) -> tuple[PrivateKey | None, PublicKey]:
    """The private key (None for a verify-only key) and public key of an asymmetric JWTKey.

    cryptography is imported here, not at the top, so HMAC-only users need not install it.
    """
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    except ImportError:
        raise ConfigurationError(
            f"{algorithm} needs the cryptography package: pip install 'pyjwt[crypto]'"
        ) from None
    loaded = _load_pem(kid, key) if isinstance(key, (str, bytes)) else key
    private_types = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
    private = loaded if isinstance(loaded, private_types) else None
    public = loaded if private is None else private.public_key()
    problem = _unfit_public_key(public, algorithm)
    if problem:
        raise ConfigurationError(f"key {kid!r} cannot be used for {algorithm}: {problem}")
    return private, cast("PublicKey", public)


def _load_pem(kid: str, pem: str | bytes) -> object:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    try:
        return load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    try:
        return load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigurationError(
            f"key {kid!r} is not an unencrypted PEM private or public key "
            "(load an encrypted one yourself and pass the key object)"
        ) from None


def _unfit_public_key(public: object, algorithm: str) -> str | None:
    """Why `public` cannot verify `algorithm`, or None if it can."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if algorithm == "RS256":
        if not isinstance(public, rsa.RSAPublicKey):
            return "it is not an RSA key"
        if public.key_size < MIN_RSA_KEY_BITS:
            return f"it has {public.key_size} bits; at least {MIN_RSA_KEY_BITS} are needed"
    elif algorithm == "ES256":
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1
        ):
            return "it is not a P-256 (secp256r1) EC key"
    elif not isinstance(public, ed25519.Ed25519PublicKey):
        return "it is not an Ed25519 key"
    return None


def _json_object(data: bytes) -> dict[str, Any]:
    """A JSON object, or InvalidToken; nesting bombs and huge numbers fail the same way."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise InvalidToken("token segment is not a JSON object", reason="malformed")
    return value


def _verified_payload(token: str, key: JWTKey) -> bytes:
    try:
        payload: bytes = _JWS.decode(token, key.verifying_key, algorithms=[key.algorithm])
    except jwt.InvalidSignatureError as error:
        raise InvalidToken(
            f"token signature does not match key {key.kid!r}", reason="bad_signature"
        ) from error
    except jwt.PyJWTError as error:
        raise InvalidToken("token is not a valid JWS", reason="malformed") from error
    return payload


def _claims(payload: dict[str, Any]) -> BearerClaims:
    return BearerClaims(
        session_id=_required(payload, "sid", str),
        user_id=_required(payload, "sub", str),
        issued_at=_required(payload, "iat", int),
        expires_at=_required(payload, "exp", int),
        token_id=_required(payload, "jti", str),
        issuer=_optional(payload, "iss", str),
        audience=_optional(payload, "aud", str),
    )


def _required(payload: dict[str, Any], name: str, kind: type[T]) -> T:
    if name not in payload:
        raise InvalidToken(f"token has no {name!r} claim", reason="missing_claim")
    return _typed(payload, name, kind)


def _optional(payload: dict[str, Any], name: str, kind: type[T]) -> T | None:
    return _typed(payload, name, kind) if name in payload else None


def _typed(payload: dict[str, Any], name: str, kind: type[T]) -> T:
    """The claim as a non-empty str or an int; JSON `true`, `1.5` or `"17"` are refused."""
    value = payload[name]
    if isinstance(value, kind) and not isinstance(value, bool) and value != "":
        return value
    expected = "a non-empty string" if kind is str else "an integer"
    raise InvalidToken(f"token claim {name!r} is not {expected}", reason="invalid_claim")
