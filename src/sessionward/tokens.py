"""Session ids and the signed cookie tokens that carry them, with key rotation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from itsdangerous import BadData, Signer
from itsdangerous.encoding import base64_decode, base64_encode

from .exceptions import ConfigurationError, InvalidToken

SESSION_ID_BYTES = 32
MIN_SECRET_KEY_LENGTH = 32
# base64url of 32 bytes is 43 characters; a signed token is that, ".", and a 43-character MAC.
MAX_TOKEN_LENGTH = 128
VERIFIED_TOKENS_CACHED = 4096
_COOKIE_SALT = b"sessionward.cookie"


def new_session_id() -> str:
    """A fresh secret session id: 32 random bytes, base64url without padding."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def session_hash(session_id: str) -> str:
    """The store key and public id of a session.

    Stores only ever see this SHA-256, so a leaked Redis dump cannot be replayed as cookies.
    """
    # Our ids are ASCII; a bearer `sid` is whatever text was signed, so take any string.
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class VerifiedToken(NamedTuple):  # a tuple: built on every request, and cheaply
    session_id: str
    signed_with_current_key: bool
    key: str  # `session_hash(session_id)`: the store key and public id


def normalise_secret_keys(secret_keys: str | bytes | Sequence[str | bytes]) -> list[bytes]:
    """Check the configured keys and return them as bytes, the signing key first."""
    if isinstance(secret_keys, (str, bytes)):
        secret_keys = [secret_keys]
    keys = [key.encode("utf-8") if isinstance(key, str) else key for key in secret_keys]
    if not keys:
        raise ConfigurationError(
            "secret_keys is empty: pass at least one random key of 32 or more characters, "
            "e.g. secrets.token_urlsafe(32)"
        )
    for position, key in enumerate(keys):
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigurationError(
                f"secret_keys[{position}] is {len(key)} bytes long; each key needs at least "
                f"{MIN_SECRET_KEY_LENGTH} (generate one with secrets.token_urlsafe(32))"
            )
    return keys


class CookieSigner:
    """Signs session ids for cookies; the first key signs, every key verifies.

    Rotation: put the new key first and keep the old one after it. Cookies signed with the
    old key still verify and are reported as stale so the middleware re-signs them; removing
    the old key later signs out whatever was not re-signed by then.
    """

    def __init__(self, secret_keys: str | bytes | Sequence[str | bytes]) -> None:
        keys = normalise_secret_keys(secret_keys)
        self.key_lengths = tuple(len(key) for key in keys)  # what `sessionward check` shows
        signers = [Signer(key, salt=_COOKIE_SALT, digest_method=hashlib.sha256) for key in keys]
        # itsdangerous derives the HMAC key from the secret on every call; derive it once, and
        # keep an HMAC keyed with it to copy: a copy skips the key set-up a one-shot HMAC redoes.
        self._macs = [hmac.new(signer.derive_key(), digestmod=hashlib.sha256) for signer in signers]
        # A browser sends the same cookie on every request: remember the tokens that verified
        # lately (never one that failed, so forged tokens cannot crowd out real ones).
        self._verified = lru_cache(maxsize=VERIFIED_TOKENS_CACHED)(self._verify)

    def issue(self, session_id: str) -> str:
        return f"{session_id}.{_signature(self._macs[0], session_id.encode('ascii')).decode()}"

    def verify(self, token: str) -> VerifiedToken:
        """Return the session id inside `token`, or raise `InvalidToken`.

        No store is consulted: a forged token costs one HMAC per configured key, nothing more.
        The signature's text is compared with the one we would write, so the one spelling we
        issue is the only one accepted (base64 leaves spare bits in its last character).
        """
        return self._verified(token)

    def key_position(self, token: str) -> int:
        """Which configured key (its position, 0 for the signing key) verifies `token`, or
        `InvalidToken`: for an operator asking about a cookie (`sessionward inspect`)."""
        session_id = self.verify(token).session_id
        value = session_id.encode("ascii")
        given = token.rpartition(".")[2].encode("ascii")
        for position, keyed in enumerate(self._macs):
            if hmac.compare_digest(_signature(keyed, value), given):
                return position
        raise InvalidToken("no configured key verifies this token", reason="bad_signature")

    def _verify(self, token: str) -> VerifiedToken:
        session_id, dot, signature = token.rpartition(".")
        if not dot or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken("token is not one this library issued", reason="malformed")
        value, given = session_id.encode("ascii"), signature.encode("ascii")
        for position, keyed in enumerate(self._macs):
            if hmac.compare_digest(_signature(keyed, value), given):
                return VerifiedToken(session_id, position == 0, session_hash(session_id))
        raise InvalidToken(
            "token signature does not match any configured key", reason="bad_signature"
        )


def _signature(keyed: hmac.HMAC, value: bytes) -> bytes:
    """itsdangerous' signature of `value`: the HMAC-SHA256, base64url without padding."""
    mac = keyed.copy()
    mac.update(value)
    return base64_encode(mac.digest())


def canonical_base64(segment: str) -> bool:
    """Whether a base64url segment is spelt the one way we write it (no padding, no junk).

    base64 leaves the low bits of the last character unused, so several spellings decode to
    the same signature; accepting only ours means any change to a token's text is a
    rejection. A JWS signs the text of its header and payload, so only the signature needs
    this for that; JWTs check every segment anyway, so junk fails the same way before any
    signature work, whichever pyjwt version is installed.
    """
    encoded = segment.encode("ascii")
    try:
        return base64_encode(base64_decode(encoded)) == encoded
    except BadData:
        return False
