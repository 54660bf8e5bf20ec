"""Refresh tokens: opaque, rotating credentials that a bearer client trades for access tokens.

A refresh token is `<session id>.<secret>`: it names its session, so a refresh reads and
writes one store key, and carries 256 random bits. The store keeps only hashes of secrets,
in the session's own record, so the session's lifetimes bound the token and a leaked Redis
dump holds nothing that refreshes.

Each use rotates the token. A family is a hash chain: the successor of a secret is an HMAC of
it and the family's own random value (kept only in the session's record, so a leaked server
key and an old token are not enough to work out the current one) under a server key
(`RefreshKeys.successors`), never stored. That is what lets a retry
(two tabs, a lost response) get the very pair the first use got while the store holds only
hashes: within `reuse_grace` seconds of its first use, the parent's successor is worked out
again and is still the family's current token. And it is what tells theft: a secret whose
successors, a few generations on, include the family's current token is an old one, and its
second presenter is one of two parties holding it. `decide` is the one rule; the Redis
script repeats it and tests/test_refresh.py pins both to it.

A retry within the grace is honoured only from the client that made the rotation it repeats
(the same device token, else the same user-agent) and at most `MAX_GRACE_REPLAYS` times: a
thief replaying the victim's last token inside the grace after each of the victim's
refreshes would otherwise share the family for ever. A replay that fails those tests, or
whose link to the current token this process cannot work out (a rolling deploy of a new
key), gets nothing but is not judged theft: a phone that retried from another network must
not be signed out as a thief.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from .record import (
    REFRESH,
    REFRESH_CLIENT,
    REFRESH_PARENT,
    REFRESH_REPLAYS,
    REFRESH_ROTATED,
    stored_int,
)
from .tokens import normalise_secret_keys

SECRET_BYTES = 32
# How many generations back a reused token is still recognised as one of the family's: a
# token older than that is merely invalid (and, to be presented at all, long stolen).
GENERATIONS = 16
DEFAULT_ACCESS_LIFETIME = 15 * 60  # seconds: an access token from a pair
DEFAULT_REUSE_GRACE = 30  # seconds in which a used refresh token gets the same answer again
MAX_GRACE_REPLAYS = 3  # times the same client may get that answer again
_SUCCESSOR_SALT = b"sessionward.refresh-successor"
_PART = r"[A-Za-z0-9_-]{43}"  # base64url of 32 bytes, as new_session_id and new_secret write
_TOKEN = re.compile(f"({_PART})\\.({_PART})")


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token and the refresh token that gets the next one."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token is valid
    token_type: str = "Bearer"  # noqa: S105  (the RFC 6750 type, not a secret)
    # From a sign-in: what the client sends back in the `Device-Token` header at its next
    # sign-in and its refreshes (`device_ids.DeviceTokens`); `None` when the app passed a
    # `device_id` of its own, and on a refresh.
    device_token: str | None = None

    def to_dict(self) -> dict[str, str | int]:
        """The token response body of RFC 6749 §5.1, with `device_token` when there is one."""
        body: dict[str, str | int] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }
        if self.device_token is not None:
            body["device_token"] = self.device_token
        return body


class Outcome(IntEnum):
    """What presenting a refresh token comes to (the values the Redis script returns)."""

    INVALID = 0  # unknown, malformed, or its session has ended
    ROTATED = 1  # the family's current token: it gets the next one
    REPLAYED = 2  # used moments ago: it gets the same next one again
    STOLEN = 3  # used before, by someone: the session is revoked


# `decide`'s answers that name no key (only a `REPLAYED` one says whose successor is current).
_NO_GRANT = (Outcome.INVALID, 0)
_THEFT = (Outcome.STOLEN, 0)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_hash(secret: str) -> str:
    """What a record keeps of a secret. Unkeyed: 256 random bits need no key to stay unguessable."""
    return hashlib.sha256(secret.encode()).hexdigest()


def refresh_token(session_id: str, secret: str) -> str:
    return f"{session_id}.{secret}"


def parse(token: object) -> tuple[str, str] | None:
    """The session id and secret of a well-formed refresh token, else `None`."""
    if not isinstance(token, str) or len(token) != 87:
        return None
    match = _TOKEN.fullmatch(token)
    return None if match is None else (match[1], match[2])


class RefreshKeys:
    """The server keys that derive each secret's successor: one per secret key, the current
    first, so a family keeps working while keys rotate."""

    def __init__(self, secret_keys: str | bytes | Sequence[str | bytes]) -> None:
        self._keys = [
            hmac.digest(key, _SUCCESSOR_SALT, hashlib.sha256)
            for key in normalise_secret_keys(secret_keys)
        ]

    def successor(self, secret: str, position: int = 0, salt: str = "") -> str:
        """The next secret of `secret`'s family, whose random value is `salt` (empty for a
        family started by 0.2), under the key at `position`."""
        mac = hmac.digest(self._keys[position], (salt + secret).encode(), hashlib.sha256)
        return _base64url(mac)

    def successors(self, secret: str, salt: str = "") -> list[list[str]]:
        """Per key, the hashes of `secret`'s next `GENERATIONS` successors, nearest first."""
        chains = []
        for position in range(len(self._keys)):
            chain, current = [], secret
            for _ in range(GENERATIONS):
                current = self.successor(current, position, salt)
                chain.append(secret_hash(current))
            chains.append(chain)
        return chains


def decide(
    fields: Mapping[str, str],
    presented: str,
    chains: Sequence[Sequence[str]],
    now_ms: int,
    grace_ms: int,
    client: str,
) -> tuple[Outcome, int]:
    """The one rotation rule, for a live bearer session's stored `fields`: what presenting a
    secret whose hash is `presented` (and whose successors' hashes are `chains`) from
    `client` (`TokenPairs.fingerprint`) comes to, and for `REPLAYED` the position of the key
    whose successor is the current token."""
    current, parent = fields.get(REFRESH), fields.get(REFRESH_PARENT)
    if not current:
        return _NO_GRANT
    if presented == current:
        return Outcome.ROTATED, 0
    if presented == parent:
        rotated = stored_int(fields.get(REFRESH_ROTATED))
        if rotated is None or now_ms - rotated > grace_ms:
            return _THEFT
        position = next((j for j, chain in enumerate(chains) if chain[0] == current), None)
        if position is None or fields.get(REFRESH_CLIENT) != client:
            return _NO_GRANT  # not linked by our keys, or another client: no grant
        if _replays(fields) >= MAX_GRACE_REPLAYS:
            return _NO_GRANT
        return Outcome.REPLAYED, position
    if any(current in chain[1:] for chain in chains):
        return _THEFT
    return _NO_GRANT


def rotated_fields(
    presented: str, chains: Sequence[Sequence[str]], now_ms: int, client: str
) -> dict[str, str]:
    """The fields a `ROTATED` outcome writes: the next secret (under the current key) becomes
    the family's current token, the presented one its parent, used now by `client`."""
    return {
        REFRESH: chains[0][0],
        REFRESH_PARENT: presented,
        REFRESH_ROTATED: str(now_ms),
        REFRESH_CLIENT: client,
        REFRESH_REPLAYS: "0",
    }


def replayed_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """What a `REPLAYED` outcome writes: one more replay of the last rotation."""
    return {REFRESH_REPLAYS: str(_replays(fields) + 1)}


def _replays(fields: Mapping[str, str]) -> int:
    """How many times the last rotation has been replayed (none where a record never said)."""
    return stored_int(fields.get(REFRESH_REPLAYS)) or 0


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
