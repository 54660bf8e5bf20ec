"""Token pairs for bearer clients: sign in with a short-lived access token and a rotating
refresh token, trade the refresh token for the next pair, and catch a stolen one.

`TokenPairs` does the work; the request helpers (`login_bearer`, `refresh_tokens`) and the
token endpoint use the middleware's, and an app that mints tokens in its own auth service
builds one on the same settings. How a family rotates and how theft is told is in
`sessionward.refresh`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace

from starlette.types import Scope

from .client import Client
from .config import SessionConfig
from .core import DEFAULT_CHOICES, SessionCore, SignInChoices
from .device_ids import DEVICE_TOKEN_HEADER
from .exceptions import InvalidGrant
from .record import REFRESH, REFRESH_SALT, USER, SessionRecord
from .refresh import Outcome, TokenPair, new_secret, parse, refresh_token, secret_hash
from .tokens import session_hash

logger = logging.getLogger("sessionward")


class TokenPairs:
    """Issue and refresh token pairs on one configuration's sessions.

    Takes the `SessionConfig` the middleware runs on (with `secret_keys` and a `bearer`
    transport), or the middleware's `SessionCore`.
    """

    def __init__(self, config: SessionConfig | SessionCore) -> None:
        self.core = config if isinstance(config, SessionCore) else SessionCore(config)
        self.config = self.core.config
        self.bearer = self.config.bearer_transport()  # fails now if there is none

    async def issue(
        self,
        user_id: str,
        *,
        client: Client | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        choices: SignInChoices = DEFAULT_CHOICES,
        device_id: str | None = None,
        device_token: str | None = None,
    ) -> TokenPair:
        """Sign `user_id` in as a new bearer session and return its first pair.

        A sign-in like any other (the device log, `session.login`, the per-user limit). In a
        request the client is the request's; outside one, `ip`, `user_agent` and the
        `Device-Token` header's value describe it. The pair carries the device token the
        client sends back next time (`SessionCore.bearer_device`).
        """
        client = client or self._client(ip, user_agent, device_token)
        device, token = self.core.bearer_device(client, device_id)
        secret, family = self.new_family()
        signed_in = await self.core.sign_in(
            user_id,
            client,
            transport="bearer",
            values={},
            choices=choices,
            device_id=device,
            refresh=family,
        )
        return replace(self.pair(signed_in.session_id, user_id, secret), device_token=token)

    async def refresh(
        self,
        token: str,
        *,
        client: Client | None = None,
        user_agent: str | None = None,
        device_token: str | None = None,
    ) -> TokenPair:
        """The next pair for a refresh token, or `InvalidGrant`.

        Not a sign-in: no event, and the session's sign-in time stays, so refreshing never
        passes for the recent sign-in that `recently_authenticated` asks for. A token used
        moments ago (within the transport's `reuse_grace`) gets the same next pair again, if
        it comes from the client that used it (`fingerprint`), at most `MAX_GRACE_REPLAYS`
        times; one used earlier than that revokes its session and fires
        `session.theft_suspected`. In a request the client is the request's; outside one,
        pass its `user_agent` and `Device-Token` header.

        Two round trips: the family's random value is read first, since the successors are
        HMACs that Redis cannot compute; the rotation itself is one atomic script, which
        decides on the record as it is then.
        """
        parsed = parse(token)
        if parsed is None:
            raise InvalidGrant("malformed refresh token")
        session_id, secret = parsed
        key = session_hash(session_id)
        config = self.config
        (meta,) = await config.store.read_records([key])
        if meta is None:
            raise InvalidGrant("unknown refresh token, or its session has ended")
        salt, keys = meta.get(REFRESH_SALT, ""), config.refresh_keys
        outcome, position, fields = await config.store.refresh(
            key,
            config.now_ms(),
            config.idle_ttl_ms,
            secret_hash(secret),
            keys.successors(secret, salt),
            self.bearer.reuse_grace * 1000,
            self.fingerprint(client or self._client(None, user_agent, device_token)),
        )
        if outcome in (Outcome.ROTATED, Outcome.REPLAYED) and fields and fields.get(USER):
            return self.pair(session_id, fields[USER], keys.successor(secret, position, salt))
        if outcome == Outcome.STOLEN and fields is not None:
            await self._revoked_as_stolen(key, fields)
            raise InvalidGrant("a used refresh token came back: session revoked as stolen")
        raise InvalidGrant("unknown refresh token, or its session has ended")

    def pair(self, session_id: str, user_id: str, secret: str) -> TokenPair:
        """The access token for the session and the refresh token carrying `secret`."""
        lifetime = self.bearer.access_token_lifetime
        access = self.bearer.signer.issue(
            session_id, user_id, now=self.config.clock(), lifetime=lifetime
        )
        return TokenPair(access, refresh_token(session_id, secret), lifetime)

    def new_family(self) -> tuple[str, dict[str, str]]:
        """A first secret and the record fields of a family that starts with it."""
        secret = new_secret()
        return secret, {REFRESH: secret_hash(secret), REFRESH_SALT: new_secret()}

    def fingerprint(self, client: Client) -> str:
        """Who a refresh comes from, as a grace replay must match it: the device its
        `Device-Token` names, else its user-agent. A hash: the record never holds a device id."""
        device = self.config.device_tokens.read(client.scope)
        if device is not None:
            return "d:" + hashlib.sha256(device.encode()).hexdigest()[:32]
        return "u:" + client.agent_hash

    async def _revoked_as_stolen(self, key: str, fields: Mapping[str, str]) -> None:
        """The store has deleted the session; unindex it and tell the listeners."""
        record = SessionRecord.from_fields(fields, self.config.idle_ttl_ms)
        if record is None or record.user_id is None:
            return
        logger.warning(
            "sessionward: a used refresh token came back (after its grace, or after its "
            "successor was used too); session %s of user %r revoked as stolen",
            key[:12],
            record.user_id,
        )
        try:  # the alert first: the session is gone already, and an outage must not lose it
            await self.core.users.emit("session.theft_suspected", key, record)
        finally:
            await self.core.users.forget(record.user_id, key)

    def _client(self, ip: str | None, user_agent: str | None, device_token: str | None) -> Client:
        headers = []
        if user_agent is not None:
            headers.append((b"user-agent", user_agent.encode("latin-1", "replace")))
        if device_token is not None:
            headers.append(
                (DEVICE_TOKEN_HEADER.encode(), device_token.encode("latin-1", "replace"))
            )
        scope: Scope = {"type": "http", "headers": headers, "client": (ip, 0) if ip else None}
        return Client(scope, self.config.trusted_proxies)
