"""Token pairs for bearer clients: sign in with a short-lived access token and a rotating
refresh token, trade the refresh token for the next pair, and catch a stolen one.

`TokenPairs` does the work; the request helpers (`login_bearer`, `refresh_tokens`) and the
token endpoint use the middleware's, and an app that mints tokens in its own auth service
builds one on the same settings. How a family rotates and how theft is told is in
`sessionward.refresh`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.types import Scope

from .client import Client
from .config import SessionConfig
from .core import DEFAULT_CHOICES, SessionCore, SignInChoices
from .exceptions import InvalidGrant
from .record import REFRESH, USER, SessionRecord
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
    ) -> TokenPair:
        """Sign `user_id` in as a new bearer session and return its first pair.

        A sign-in like any other (the device log, `session.login`, the per-user limit). In a
        request the client is the request's; outside one, `ip` and `user_agent` describe it
        for the device list.
        """
        secret, family = self.new_family()
        signed_in = await self.core.sign_in(
            user_id,
            client or self._client(ip, user_agent),
            transport="bearer",
            values={},
            choices=choices,
            device_id=device_id,
            refresh=family,
        )
        return self.pair(signed_in.session_id, user_id, secret)

    async def refresh(self, token: str) -> TokenPair:
        """The next pair for a refresh token, or `InvalidGrant`.

        Not a sign-in: no event, and the session's sign-in time stays, so refreshing never
        passes for the recent sign-in that `recently_authenticated` asks for. A token used
        moments ago (within the transport's `reuse_grace`) gets the same next pair again; one
        used earlier than that revokes its session and fires `session.theft_suspected`.
        """
        parsed = parse(token)
        if parsed is None:
            raise InvalidGrant("malformed refresh token")
        session_id, secret = parsed
        key = session_hash(session_id)
        config = self.config
        keys = config.refresh_keys
        outcome, position, fields = await config.store.refresh(
            key,
            config.now_ms(),
            config.idle_ttl_ms,
            secret_hash(secret),
            keys.successors(secret),
            self.bearer.reuse_grace * 1000,
        )
        if outcome in (Outcome.ROTATED, Outcome.REPLAYED) and fields and fields.get(USER):
            return self.pair(session_id, fields[USER], keys.successor(secret, position))
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
        return secret, {REFRESH: secret_hash(secret)}

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

    def _client(self, ip: str | None, user_agent: str | None) -> Client:
        headers = (
            [] if user_agent is None else [(b"user-agent", user_agent.encode("latin-1", "replace"))]
        )
        scope: Scope = {"type": "http", "headers": headers, "client": (ip, 0) if ip else None}
        return Client(scope, self.config.trusted_proxies)
