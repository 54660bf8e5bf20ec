"""What one request says about its client: IP, user-agent fingerprint and device.

Each is worked out at most once per request, and only when asked: a request that never loads
or creates a session never reads a forwarding header or parses a user-agent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

from starlette.datastructures import Headers
from starlette.types import Scope

from .addresses import TrustedProxies, client_ip, from_trusted_proxy
from .client_hints import (
    ABSENT,
    HINT_HEADERS,
    NO_VALUES,
    Hints,
    Values,
    checksum,
    fingerprint,
    more_or_changed,
    parse_with_hints,
)
from .devices import MAX_USER_AGENT_CHARS
from .locations import Locate, place
from .record import AGENT, HINTS, IP, LOCATION, device_to_fields


class Client:
    """The client of one request, as far as a session records it."""

    __slots__ = (
        "_agent",
        "_device_fields",
        "_hints",
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
        self._hints: Values | None = None  # read with the user-agent
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
            self._agent, self._hints = _user_agent(self.scope["headers"])
        return self._agent

    @property
    def hints(self) -> Hints | None:
        """The request's User-Agent Client Hints (`client_hints`); `None` if it sends none."""
        if self._agent is None:
            self._agent, self._hints = _user_agent(self.scope["headers"])
        values = self._hints
        return None if values is None else tuple(None if v == ABSENT else v for v in values)

    @property
    def agent_hash(self) -> str:
        """The user-agent's fingerprint, never the hints': a refresh's client check and a
        moved session's identity read it, and hints are labels only."""
        return _hash_agent(self.user_agent)

    @property
    def device_fields(self) -> dict[str, str]:
        """The parsed device as record fields; parsed once per distinct user-agent and hints
        (cached)."""
        if self._device_fields is None:
            hints = self.hints
            agent = parse_with_hints(self.user_agent.decode("latin-1"), hints)
            self._device_fields = device_to_fields(
                agent, None if hints is None else fingerprint(hints)
            )
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
        self,
        recorded_ip: str | None,
        recorded_agent: str | None,
        *,
        signed_in: bool,
        recorded_hints: str | None = None,
    ) -> dict[str, str]:
        """The record fields to update because the client's IP, user-agent hash or hints
        changed. Hints that say less than the recorded ones (a request without the ones a
        page asked for) change nothing: see `client_hints.more_or_changed`.

        Only a signed-in session is located again: an anonymous one's place is of no use.
        """
        changes: dict[str, str] = {}
        ip = self.ip
        if ip is not None and ip != recorded_ip:
            changes[IP] = ip
            if signed_in and self.locate is not None and (location := self.location()):
                changes[LOCATION] = location
        agent_hash = self.agent_hash
        values = self._hints  # read with the user-agent, just now
        if agent_hash != recorded_agent:
            changes[AGENT] = agent_hash
            changes.update(self.device_fields)
            if values is None and recorded_hints:
                changes[HINTS] = ""  # the device is the user-agent's alone now
        elif values is not None and (
            # Unchanged hints, the common case, cost a CRC: the fingerprint only on a change.
            recorded_hints is None or recorded_hints[2:10] != checksum(values)
        ):
            hints = self.hints
            if hints is not None and more_or_changed(fingerprint(hints), recorded_hints):
                changes.update(self.device_fields)
        return changes


_NO_HEADERS = Headers()


def _user_agent(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, Values | None]:
    """The user-agent, cut where parsing stops looking, and the client hints' raw values.

    One dictionary look-up a header and no other work: measured (callgrind) cheaper than a
    `dict` of the headers for the few an API client sends, and as cheap for a browser's
    dozen and a half. A repeated header counts once (the last).
    """
    found = [b"", *NO_VALUES]  # the user-agent, then each hint (ABSENT where not sent)
    slot_of = _SLOTS.get
    for name, value in headers:
        slot = slot_of(name)
        if slot is not None:
            found[slot] = value
    values = tuple(found[1:])
    return found[0][:MAX_USER_AGENT_CHARS], None if values == NO_VALUES else values


_SLOTS = {b"user-agent": 0, **{name: slot + 1 for slot, name in enumerate(HINT_HEADERS)}}


@lru_cache(maxsize=4096)  # a client sends the same user-agent on every request
def _hash_agent(agent: bytes) -> str:
    """A short fingerprint of the user-agent, to notice a change without storing the string."""
    return hashlib.blake2b(agent, digest_size=8).hexdigest()
