"""The device cookie: a long-lived, signed random id that recognises a browser across sign-ins.

A session cookie dies with its session; this one outlives sign-out so that the next sign-in
from the same browser is known, and one from a browser never seen before can be told to the
user ("a new device signed in to your account"). It carries no session and grants nothing:
it only lets the server say "seen before". Stores never hold the id itself, only
`DeviceCookie.hashes`, HMACs under the secret keys, since a bearer client's own device id may
be guessable and a leaked Redis dump must not name the ids to plant.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

from itsdangerous import Signer
from starlette.types import Scope

from .tokens import normalise_secret_keys
from .transports import CookieTransport, default_cookie_name

DEVICE_ID_BYTES = 32
# Browsers cap a cookie's lifetime at 400 days (RFC 6265bis); asking for more gets 400.
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600
# Its own salt: a device cookie never verifies as a session cookie, nor one as the other.
_DEVICE_SALT = b"sessionward.device"
# And one for a bearer client's device token, so neither passes for the other.
_DEVICE_TOKEN_SALT = b"sessionward.device-token"
#: The request header in which a bearer client sends back its device token.
DEVICE_TOKEN_HEADER = "device-token"  # noqa: S105  (a header's name, not a secret)
_DEVICE_TOKEN_HEADER = DEVICE_TOKEN_HEADER.encode("ascii")
# A device token is at most an 86-character id, a dot and a 43-character signature.
_MAX_DEVICE_TOKEN = 130
# Keys the stored HMACs, so they share nothing with a signature made with the same secret.
_HASH_SALT = b"sessionward.device-hash"
# What `new_device_id` writes (43 characters), with room for longer ids; nothing else is read.
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{22,86}")


def new_device_id() -> str:
    """A fresh device id: 32 random bytes, base64url without padding."""
    return secrets.token_urlsafe(DEVICE_ID_BYTES)


class DeviceCookie:
    """The device cookie: the session cookie's Secure, SameSite and partitioning, but always
    host-only on path `/`, whatever the session cookie's domain and path.

    A cookie with a `Domain` can be set by every sibling subdomain: one of them could plant
    the attacker's own device id, and the attacker's later sign-in would look known. So it
    is `__Host-device` when Secure (no subdomain and no plain-http page can set that name)
    and `device` when not. HttpOnly, 400 days. Signed with the session's secret keys under
    a salt of its own: the first key signs, every key verifies.
    """

    def __init__(
        self, session_cookie: CookieTransport, secret_keys: str | bytes | Sequence[str | bytes]
    ) -> None:
        keys = normalise_secret_keys(secret_keys)
        secure = session_cookie.secure
        self._cookie = CookieTransport(
            name=default_cookie_name(secure=secure, path="/", domain=None, stem="device"),
            max_age=DEVICE_COOKIE_MAX_AGE,
            path="/",
            domain=None,
            same_site=session_cookie.same_site,
            secure=secure,
            http_only=True,
            partitioned=session_cookie.partitioned,
        )
        self.name = self._cookie.name
        self._ids = _SignedIds(keys, _DEVICE_SALT)
        self._hash_macs = [
            hmac.new(hmac.digest(key, _HASH_SALT, hashlib.sha256), digestmod=hashlib.sha256)
            for key in keys
        ]

    def read(self, scope: Scope) -> str | None:
        """The device id in the first cookie of our name that verifies, or `None`.

        Garbage, oversize, tampered or forged values are skipped, never an error.
        """
        for token in self._cookie.read(scope):
            device_id = self._ids.verify(token)
            if device_id is not None:
                return device_id
        return None

    def set_cookie(self, device_id: str) -> str:
        """A `Set-Cookie` value carrying `device_id`, signed with the first key, for 400 days."""
        return self._cookie.set_cookie(self._ids.sign(device_id), DEVICE_COOKIE_MAX_AGE)

    def hashes(self, device_id: str) -> list[str]:
        """What a store keeps for `device_id`: its HMAC-SHA256 (hex) under each key, current
        key first. Looking a device up by all of them keeps it known across key rotation."""
        value = device_id.encode("utf-8", "surrogatepass")  # a bearer client's id: any text
        found = []
        for keyed in self._hash_macs:
            mac = keyed.copy()
            mac.update(value)
            found.append(mac.hexdigest())
        return found


class DeviceTokens:
    """What a bearer client keeps instead of a device cookie: its device id, signed.

    A sign-in through `login_bearer()` or `login(transport="bearer")` returns one, and the
    client sends it back in the `Device-Token` request header at its next sign-in (and its
    refreshes), so the account knows the device. It grants nothing: it only lets the server
    say "seen before", and a sign-in without a valid one is from a new device. Signed with
    the session's secret keys under a salt of its own, so it never passes for a device
    cookie or a session token.
    """

    def __init__(self, secret_keys: str | bytes | Sequence[str | bytes]) -> None:
        self._ids = _SignedIds(normalise_secret_keys(secret_keys), _DEVICE_TOKEN_SALT)

    def issue(self, device_id: str) -> str:
        """A device token carrying `device_id`, signed with the first key."""
        return self._ids.sign(device_id)

    def read(self, scope: Scope) -> str | None:
        """The device id in the request's first `Device-Token` header that verifies, or
        `None`; garbage, oversize or forged values are skipped, never an error."""
        for name, value in scope.get("headers", ()):
            if name == _DEVICE_TOKEN_HEADER and len(value) <= _MAX_DEVICE_TOKEN:
                device_id = self._ids.verify(value.decode("latin-1").strip())
                if device_id is not None:
                    return device_id
        return None


class _SignedIds:
    """`<device id>.<signature>`: the first key signs, every key verifies."""

    def __init__(self, keys: Sequence[bytes], salt: bytes) -> None:
        self._signers = [Signer(key, salt=salt, digest_method=hashlib.sha256) for key in keys]

    def sign(self, device_id: str) -> str:
        if not _DEVICE_ID.fullmatch(device_id):  # it goes into a header: nothing else may
            raise ValueError("device_id must come from new_device_id() or a verified token")
        return f"{device_id}.{self._signers[0].get_signature(device_id).decode()}"

    def verify(self, token: str) -> str | None:
        device_id, dot, given = token.rpartition(".")
        if not dot or not _DEVICE_ID.fullmatch(device_id):
            return None
        # Compared as text with the one spelling we write: base64 leaves spare bits in its
        # last character, so any change to the token is a rejection.
        signature = given.encode()
        for signer in self._signers:
            if hmac.compare_digest(signer.get_signature(device_id), signature):
                return device_id
        return None
