"""Lifecycle events: who signed in, out or was signed out, delivered to listeners and pub/sub.

Events are for audit logs, "new sign-in" e-mails and live updates. Delivery never breaks the
request that caused it: a failing listener or an unreachable Redis is logged, not raised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

logger = logging.getLogger("sessionward")

EventType = Literal["session.created", "session.login", "session.logout", "session.revoked"]


@dataclass(frozen=True, slots=True)
class SessionEvent:
    type: EventType
    public_id: str
    user_id: str | None
    device_label: str | None
    ip: str | None
    at: float  # Unix epoch seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


Listener = Callable[[SessionEvent], Awaitable[None]]


class Events:
    """Sends each event to every listener in turn and, if given a client, to a Redis channel."""

    def __init__(
        self,
        listeners: Sequence[Listener] = (),
        *,
        redis: Redis | RedisCluster | None = None,
        channel: str = "sessionward:events",
    ) -> None:
        self.listeners = list(listeners)
        self.redis = redis
        self.channel = channel

    def listen(self, listener: Listener) -> Listener:
        """Register a listener; usable as a decorator."""
        self.listeners.append(listener)
        return listener

    async def emit(self, event: SessionEvent) -> None:
        for listener in self.listeners:
            try:
                await listener(event)
            except Exception:
                logger.exception(
                    "sessionward: event listener %r failed on %s", listener, event.type
                )
        if self.redis is not None:
            try:
                await self.redis.publish(self.channel, event.to_json())
            except RedisError as exc:
                logger.warning("sessionward: could not publish %s: %s", event.type, exc)
