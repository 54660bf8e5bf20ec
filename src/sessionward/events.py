"""Lifecycle events: who signed in, out or was signed out, delivered to listeners and pub/sub.

Events are for audit logs, "new sign-in" e-mails and live updates. Delivery never breaks the
request that caused it: a failing listener or an unreachable Redis is logged, not raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from .exceptions import ConfigurationError

if TYPE_CHECKING:  # redis-py is imported by the app that hands us a client, not by us
    from redis.asyncio import Redis, RedisCluster

logger = logging.getLogger("sessionward")

EventType = Literal[
    "session.created",
    "session.login",
    "session.logout",
    "session.revoked",
    "session.reauthenticated",
    "session.theft_suspected",
]


@dataclass(frozen=True, slots=True)
class SessionEvent:
    type: EventType
    public_id: str
    user_id: str | None
    device_label: str | None
    ip: str | None
    at: float  # Unix epoch seconds
    # Sign-ins only: the first sign-in to this account from this device, or from this place.
    new_device: bool = False
    location: str | None = None
    new_location: bool = False
    # The account's very first sign-in (a new device, as expected): an alert can skip it.
    first_sign_in: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


Listener = Callable[[SessionEvent], Awaitable[None]]
DEFAULT_TIMEOUT = 1.0  # seconds each listener, and the publish, may take


class Events:
    """Sends each event to every listener in turn and, if given a client, to a Redis channel.

    Each listener and the publish get `timeout` seconds: a slow or stuck one is logged and
    given up on, so delivery never holds up the request that caused the event. Nothing runs
    on after the request in the background.
    """

    def __init__(
        self,
        listeners: Sequence[Listener] = (),
        *,
        redis: Redis | RedisCluster | None = None,
        channel: str = "sessionward:events",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not timeout > 0:
            raise ConfigurationError(f"Events timeout must be a positive number, not {timeout!r}")
        self.listeners = list(listeners)
        self.redis = redis
        self.channel = channel
        self.timeout = timeout

    @property
    def redis(self) -> Redis | RedisCluster | None:
        """The client events are published with, if any."""
        return self._redis

    @redis.setter
    def redis(self, client: Redis | RedisCluster | None) -> None:
        self._redis = client
        # What a publish may raise without failing the request: looked up here, once, so
        # that an app without a Redis client never imports redis-py for it.
        self._publish_errors: tuple[type[BaseException], ...] = (asyncio.TimeoutError,)
        if client is not None:
            from redis.exceptions import RedisError

            self._publish_errors = (RedisError, asyncio.TimeoutError)

    def listen(self, listener: Listener) -> Listener:
        """Register a listener; usable as a decorator."""
        self.listeners.append(listener)
        return listener

    async def emit(self, event: SessionEvent) -> None:
        for listener in self.listeners:
            try:
                await asyncio.wait_for(listener(event), self.timeout)
            except asyncio.TimeoutError:
                logger.error(
                    "sessionward: event listener %r took over %ss on %s %s; given up",
                    listener,
                    self.timeout,
                    event.type,
                    event.public_id,
                )
            except Exception:
                logger.exception(
                    "sessionward: event listener %r failed on %s", listener, event.type
                )
        redis = self._redis
        if redis is not None:
            try:
                await asyncio.wait_for(redis.publish(self.channel, event.to_json()), self.timeout)
            except self._publish_errors as exc:
                logger.error(
                    "sessionward: could not publish %s %s: %s",
                    event.type,
                    event.public_id,
                    exc or type(exc).__name__,
                )
