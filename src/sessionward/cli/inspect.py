"""`sessionward inspect`: is this cookie or bearer token one of ours, and what session does it
name? The token is read from standard input, never from the command line (which the shell's
history and `ps` keep), and no secret or session value is printed unless asked for."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from itsdangerous.encoding import base64_decode

from ..config import SessionConfig
from ..exceptions import ExpiredToken, InvalidToken, TokenNotYetValid
from ..record import SessionRecord, data_of
from ..tokens import session_hash
from .output import emit_json, facts, iso, moment
from .target import Target, run, target_options


def read_token(text: str, cookie_name: str) -> str:
    """The token in what was pasted: a bare value, `Bearer <jwt>`, `name=value`, or a whole
    `Cookie:` or `Authorization:` header line."""
    text = text.strip()
    name, colon, rest = text.partition(":")
    if colon and name.strip().lower() in ("cookie", "authorization"):
        text = rest.strip()
    if text[:7].lower() == "bearer ":
        return text[7:].strip()
    if "=" in text:
        pairs = (part.strip().partition("=") for part in text.split(";"))
        cookies = {key.strip(): value.strip().strip('"') for key, _, value in pairs}
        if cookie_name in cookies:
            return cookies[cookie_name]
        if len(cookies) == 1:
            return next(iter(cookies.values()))
    return text


@click.command("inspect")
@click.option("--data", "show_data", is_flag=True, help="Also print the session's data values.")
@target_options
def inspect_token(target: Target, show_data: bool) -> None:
    """Verify a session cookie or bearer token read from standard input.

    Says which configured key verified it (its position, or a bearer key's id: never the key),
    a bearer token's issue and expiry times, and the session it names: when it was created
    and last signed in to, and whether it is live. Data keys are listed; their values only
    with --data.
    """
    if sys.stdin.isatty():
        click.echo("Paste the cookie value or bearer token, then Ctrl-D:", err=True)
    text = sys.stdin.read()
    if not text.strip():
        raise click.ClickException("nothing on standard input: pipe a cookie or a token in")

    async def work(config: SessionConfig) -> dict[str, Any]:
        token = read_token(text, config.cookie.name)
        verified = _verify_bearer(config, token) if token.count(".") == 2 else None
        if verified is None:
            verified = _verify_cookie(config, token)
        key = session_hash(verified.pop("session_id"))
        if _in_process(config):
            raise click.ClickException(
                f"the token is ours ({verified['verified_by']}), and its session {key} is in "
                "the app's MemoryStore, in its own process: the command line cannot read it"
            )
        verified["session"] = await _session(config, key, show_data)
        return verified

    report = run(target, work)
    if target.as_json:
        emit_json(report)
        return
    session = report.pop("session")
    facts("token", report)
    if session is None:
        facts("session", {"stored": "no: it has ended (or was never stored)"})
        return
    data = session.pop("data")
    facts("session", session)
    if data:
        facts("data", data)


def _in_process(config: SessionConfig) -> bool:
    from ..stores.memory import MemoryStore

    return isinstance(getattr(config.store, "wrapped", config.store), MemoryStore)


def _verify_cookie(config: SessionConfig, token: str) -> dict[str, Any]:
    signer = config.signer  # a ConfigurationError, one line, when no key is configured
    try:
        position = signer.key_position(token)
    except InvalidToken as exc:
        raise click.ClickException(_refusal("session cookie", exc)) from None
    which = "the signing key" if position == 0 else "an older key: re-signed at its next use"
    session_id = signer.verify(token).session_id
    return {
        "kind": "cookie",
        "verified_by": f"secret_keys[{position}] ({which})",
        "key_position": position,
        "session_id": session_id,
    }


def _verify_bearer(config: SessionConfig, token: str) -> dict[str, Any] | None:
    """The bearer token's facts; `None` when no bearer transport is configured (then the
    token is tried as a cookie, which it is not, and says so)."""
    if config.bearer is None:
        raise click.ClickException(
            "this looks like a bearer token, and the configuration has no bearer transport: "
            "give --app the app that issues them"
        )
    signer = config.bearer.signer
    expired = False
    try:
        claims = signer.verify(token)
        session_id, user_id = claims.session_id, claims.user_id
        issued, expires = claims.issued_at, claims.expires_at
    except (ExpiredToken, TokenNotYetValid) as exc:  # signature checked before the times
        payload = json.loads(base64_decode(token.split(".")[1]))
        session_id, user_id = payload["sid"], payload["sub"]
        issued, expires = payload["iat"], payload["exp"]
        expired = isinstance(exc, ExpiredToken)
        if not expired:
            raise click.ClickException(f"the bearer token is not valid yet ({exc})") from None
    except InvalidToken as exc:
        raise click.ClickException(_refusal("bearer token", exc)) from None
    kid = json.loads(base64_decode(token.split(".")[0]))["kid"]
    return {
        "kind": "bearer",
        "verified_by": f"key id {kid!r}",
        "key_id": kid,
        "user_id": user_id,
        "issued_at": moment(issued * 1000),
        "expires_at": moment(expires * 1000),
        "expired": expired,
        "session_id": session_id,
    }


def _refusal(what: str, exc: InvalidToken) -> str:
    if exc.reason in ("bad_signature", "unknown_key", "wrong_algorithm"):
        return f"not one of ours: no configured key verifies this {what} ({exc.reason})"
    return f"not a valid {what}: {exc} ({exc.reason})"


async def _session(config: SessionConfig, key: str, show_data: bool) -> dict[str, Any] | None:
    """What the store holds of the session, live or not; its data only while it is live (a
    load that does not count as activity)."""
    (meta,) = await config.store.read_records([key])
    record = SessionRecord.from_fields(meta, config.idle_ttl_ms) if meta else None
    if record is None:
        return None
    now_ms = config.now_ms()
    live = record.remaining_ms(now_ms) is not None
    fields = await config.store.load(key, now_ms, config.idle_ttl_ms, touch=False) if live else None
    data = data_of(fields) if fields else {}
    device = record.device
    return {
        "public_id": key,
        "user_id": record.user_id,  # None: anonymous
        "live": live,
        "transport": record.transport,
        "device": device.label if device else None,
        "ip": record.ip,
        "created_at": iso(record.created_at_ms),
        "last_sign_in": iso(record.signed_in_at_ms) if record.user_id else None,
        "last_seen_at": iso(record.last_seen_at_ms),
        "expires_at": iso(record.expires_at_ms),
        "data_keys": sorted(data),
        "data": {name: _value(text) for name, text in data.items()} if show_data else {},
    }


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
