"""Request helpers: sign a user in and out, and read the current session's record.

`login` rotates the session id (so an id fixed by an attacker before sign-in is worthless),
keeps the data, records the device and indexes the session under the user. `logout` ends the
session at once; the response tells the browser to drop the cookie.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from .middleware import RequestSession
from .tokens import new_session_id, session_hash
from .users import SessionInfo, UserSessions


def _current(connection: HTTPConnection) -> RequestSession:
    current = connection.scope.get("sessionward")
    if not isinstance(current, RequestSession):
        raise RuntimeError(
            "sessionward's SessionMiddleware is not installed around this route: add it with "
            "app.add_middleware(SessionMiddleware, ...)"
        )
    return current


async def login(connection: HTTPConnection, user_id: str) -> None:
    """Bind the session to `user_id` under a new id; the old id stops working at once."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty str, not {user_id!r}")
    current = _current(connection)
    middleware = current.middleware
    old_key, old_record = current.key, current.record
    now_ms = middleware.now_ms()
    record = middleware.new_record(connection.scope, now_ms, user_id)
    if old_record is not None and old_record.first_ip:
        record = record.replace(first_ip=old_record.first_ip)
    session_id = new_session_id()
    key = session_hash(session_id)
    await middleware.users.add(user_id, key, now_ms)  # first: a stale entry is harmless
    if not await middleware.store_new(current, record, session_id):
        raise RuntimeError("the session store refused a brand-new session id")
    if old_key is not None and old_record is not None:
        await middleware.store.delete(old_key)
        if old_record.user_id is not None:
            await middleware.users.forget(old_record.user_id, old_key)
    current.send_cookie, current.expire_cookie = True, False
    await middleware.users.emit("session.login", key, record)
    await middleware.users.enforce_limit(user_id, keep=key)


async def logout(connection: HTTPConnection) -> None:
    """End the session now and empty `request.session`; the response expires the cookie."""
    current = _current(connection)
    await current.middleware.end(current, "session.logout")
    current.session.clear()


def get_session(connection: HTTPConnection) -> SessionInfo | None:
    """The current session's record, or `None` for a visitor with no stored session."""
    current = _current(connection)
    if current.key is None or current.record is None:
        return None
    return SessionInfo.from_record(current.key, current.record, current=True)


def user_sessions(connection: HTTPConnection) -> UserSessions:
    """The middleware's `UserSessions`: list and revoke any user's sessions from a handler."""
    return _current(connection).middleware.users
