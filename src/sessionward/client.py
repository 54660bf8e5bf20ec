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
    NO_VALUES,
    SLOTS,
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
        "_device_fields",
        "_hints",
        "_ip",
        "_ip_known",
        "authorizations",
        "cookies",
        "locate",
        "scope",
        "trusted_proxies",
        "user_agent",
    )

    def __init__(
        self, scope: Scope, trusted_proxies: TrustedProxies, locate: Locate | None = None
    ) -> None:
        headers = scope.get("headers", ())
        # What a client is read from, not the scope itself: the scope holds this request's
        # session, which holds this client, and a cycle per request is work for the garbage
        # collector that plain reference counting would have done.
        self.scope: Scope = {"client": scope.get("client"), "headers": headers}
        self.trusted_proxies = trusted_proxies
        self.locate = locate
        self._ip: str | None = None
        self._ip_known = False
        self._device_fields: dict[str, str] | None = None
        self._read(headers)

    def _read(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """The cookies, authorizations, user-agent and client hints' raw values, in one pass.

        Every request needs its cookie, and the cookie comes last: one pass that picks up
        the rest on the way is cheaper than a pass each (callgrind: about half as many
        instructions as the cookie's and the user-agent's own passes, for a browser's dozen
        and a half headers and for the three of an API client). A header repeated counts
        once (the last), but for cookies and authorizations, which are read in order. As
        few containers as can be: each one a request makes brings the garbage collector's
        next pass over the whole heap nearer.
        """
        cookies: list[bytes] = []
        authorizations: list[bytes] | None = None
        agent = b""
        hints: list[bytes] | None = None
        watched = _WATCHED
        for name, value in headers:
            if name not in watched:
                continue
            slot = watched[name]
            if slot >= 0:
                if hints is None:
                    hints = [*NO_VALUES]
                hints[slot] = value
            elif slot == _USER_AGENT:
                agent = value
            elif slot == _COOKIE:
                cookies.append(value)
            elif authorizations is None:
                authorizations = [value]
            else:
                authorizations.append(value)
        self.cookies = cookies  # every `Cookie` header's value, for the cookie transport
        self.authorizations = authorizations  # every `Authorization`'s; None without one
        self.user_agent = agent[:MAX_USER_AGENT_CHARS]  # parsing looks no further
        self._hints: Values | None = hints  # each hint's raw value, ABSENT where not sent

    @property
    def ip(self) -> str | None:
        """The client's IP, read through trusted proxies only (see `addresses.client_ip`)."""
        if not self._ip_known:
            self._ip, self._ip_known = client_ip(self.scope, self.trusted_proxies), True
        return self._ip

    @property
    def hints(self) -> Hints | None:
        """The request's User-Agent Client Hints (`client_hints`); `None` if it sends none."""
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


# A hint's slot in `Values`, or one of these for the other headers read.
_USER_AGENT, _COOKIE, _AUTHORIZATION = -1, -2, -3
_WATCHED = {b"user-agent": _USER_AGENT, b"cookie": _COOKIE, b"authorization": _AUTHORIZATION}
_WATCHED.update(SLOTS)


@lru_cache(maxsize=4096)  # a client sends the same user-agent on every request
def _hash_agent(agent: bytes) -> str:
    """A short fingerprint of the user-agent, to notice a change without storing the string."""
    return hashlib.blake2b(agent, digest_size=8).hexdigest()
