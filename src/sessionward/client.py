"""What one request says about its client: IP, user-agent fingerprint and device.

Each is worked out at most once per request, and only when asked: a request that never loads
or creates a session never reads a forwarding header or parses a user-agent.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from starlette.datastructures import Headers
from starlette.types import Scope

from .addresses import TrustedProxies, client_ip, from_trusted_proxy
from .devices import MAX_USER_AGENT_CHARS, parse_user_agent
from .locations import Locate, place
from .record import AGENT, IP, LOCATION, device_to_fields


class Client:
    """The client of one request, as far as a session records it."""

    __slots__ = (
        "_agent",
        "_device_fields",
        "_ip",
        "_ip_known",
        "locate",
        "scope",
        "trusted_proxies",
    )

    def __init__(
        self, scope: Scope, trusted_proxies: TrustedProxies, locate: Locate | None = None
    ) -> None:
        # What a client is read from, not the scope itself: the scope holds this request's
        # session, which holds this client, and a cycle per request is work for the garbage
        # collector that plain reference counting would have done.
        self.scope: Scope = {"client": scope.get("client"), "headers": scope.get("headers", ())}
        self.trusted_proxies = trusted_proxies
        self.locate = locate
        self._ip: str | None = None
        self._ip_known = False
        self._agent: bytes | None = None
        self._device_fields: dict[str, str] | None = None

    @property
    def ip(self) -> str | None:
        """The client's IP, read through trusted proxies only (see `addresses.client_ip`)."""
        if not self._ip_known:
            self._ip, self._ip_known = client_ip(self.scope, self.trusted_proxies), True
        return self._ip

    @property
    def user_agent(self) -> bytes:
        """The user-agent, cut where parsing stops looking, so a huge one costs no more."""
        if self._agent is None:
            self._agent = _user_agent(self.scope)
        return self._agent

    @property
    def agent_hash(self) -> str:
        return _hash_agent(self.user_agent)

    @property
    def device_fields(self) -> dict[str, str]:
        """The parsed device as record fields; parsed once per distinct user-agent (cached)."""
        if self._device_fields is None:
            agent = parse_user_agent(self.user_agent.decode("latin-1"))
            self._device_fields = device_to_fields(agent)
        return self._device_fields

    def location(self) -> str | None:
        """Where the client is, by the configured `locate`; `None` without one.

        Asked at sign-in and when the IP changes only: a lookup may cost a database read.
        """
        if self.locate is None:
            return None
        trusted = from_trusted_proxy(self.scope, self.trusted_proxies)
        headers = Headers(scope=self.scope) if trusted else _NO_HEADERS
        return place(self.locate, self.ip, headers)

    def changes(
        self, recorded_ip: str | None, recorded_agent: str | None, *, signed_in: bool
    ) -> dict[str, str]:
        """The record fields to update because the client's IP or user-agent hash changed.

        Only a signed-in session is located again: an anonymous one's place is of no use.
        """
        changes: dict[str, str] = {}
        ip = self.ip
        if ip is not None and ip != recorded_ip:
            changes[IP] = ip
            if signed_in and self.locate is not None and (location := self.location()):
                changes[LOCATION] = location
        agent_hash = self.agent_hash
        if agent_hash != recorded_agent:
            changes[AGENT] = agent_hash
            changes.update(self.device_fields)
        return changes


_NO_HEADERS = Headers()


def _user_agent(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"user-agent":
            agent: bytes = value[:MAX_USER_AGENT_CHARS]
            return agent
    return b""


@lru_cache(maxsize=4096)  # a client sends the same user-agent on every request
def _hash_agent(agent: bytes) -> str:
    """A short fingerprint of the user-agent, to notice a change without storing the string."""
    return hashlib.blake2b(agent, digest_size=8).hexdigest()
