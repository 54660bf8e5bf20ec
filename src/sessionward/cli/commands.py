"""The `sessionward` command group, and the commands on one user's sessions: `sessions`,
`revoke` and `end`. The others live beside it: `inspect`, `stats`, `check`."""

from __future__ import annotations

from typing import Any

import click

from ..admin import AdminSessions
from ..config import SessionConfig
from ..record import SessionRecord
from ..users import SessionInfo
from .check import check
from .inspect import inspect_token
from .output import emit_json, iso, moment, table
from .stats import stats
from .target import Target, redis_client, run, target_options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sessionward")
def cli() -> None:
    """Operate sessionward's sessions: who is signed in, sign them out, inspect a token,
    count what Redis holds, check the set-up.

    Each command finds the sessions through --app module:attribute (the app, its
    SessionMiddleware or a SessionConfig, imported as uvicorn does) or through --redis-url
    with the keys in $SESSIONWARD_SECRET_KEYS (comma-separated, the signing key first).
    """


def idle_deadline_ms(record: SessionRecord) -> int:
    """When the session ends if it is not used again: its idle or its absolute deadline."""
    return min(record.last_seen_at_ms + record.idle_ttl_ms, record.expires_at_ms)


def session_row(info: SessionInfo, record: SessionRecord) -> dict[str, Any]:
    return {**info.to_dict(), "idle_deadline": iso(idle_deadline_ms(record))}


@cli.command()
@click.argument("user_id")
@target_options
def sessions(target: Target, user_id: str) -> None:
    """List USER_ID's live sessions, most recently active first.

    Read from the user's own index (never a walk over every session), and read only: the
    index is left as it is.
    """

    async def work(config: SessionConfig) -> list[tuple[SessionInfo, SessionRecord]]:
        redis_client(config)
        admin = AdminSessions(config)
        found = [item async for page in admin.pages(user_id=user_id) for item in page.records]
        found.sort(key=lambda item: item[1].last_seen_at_ms, reverse=True)
        return [(SessionInfo.from_record(key, record), record) for key, record in found]

    found = run(target, work)
    if target.as_json:
        emit_json([session_row(info, record) for info, record in found])
        return
    rows = [
        [
            info.device.label if info.device else "Unknown device",
            info.ip or "-",
            info.location or "-",
            moment(info.last_seen_at),
            moment(idle_deadline_ms(record)),
            info.transport,
            info.public_id,
        ]
        for info, record in found
    ]
    columns = ["device", "IP", "place", "last seen", "expires", "transport", "public id"]
    table(f"{len(rows)} live session(s) of {user_id}", columns, rows)


@cli.command()
@click.argument("user_id")
@click.option("--except", "keep", metavar="PUBLIC_ID", help="A session to leave signed in.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@target_options
def revoke(target: Target, user_id: str, keep: str | None, yes: bool) -> None:
    """Sign USER_ID out everywhere (but --except one session).

    `UserSessions.revoke_all`: each session deleted, the user's index kept up, and a
    `session.revoked` event for each, to the app's own callbacks when --app names it.
    """
    but = f" except {keep}" if keep else ""
    if not yes:
        click.confirm(f"Sign {user_id} out of every session{but}?", abort=True)

    async def work(config: SessionConfig) -> int:
        redis_client(config)
        return await AdminSessions(config).users.revoke_all(user_id, keep=keep)

    revoked = run(target, work)
    if target.as_json:
        emit_json({"user_id": user_id, "revoked": revoked, "kept": keep})
    else:
        click.echo(f"Signed {user_id} out of {revoked} session(s){but}.")


@cli.command()
@click.argument("public_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@target_options
def end(target: Target, public_id: str, yes: bool) -> None:
    """Sign out the one session PUBLIC_ID (as a device list shows it), whoever's it is."""
    if not yes:
        click.confirm(f"Sign out session {public_id}?", abort=True)

    async def work(config: SessionConfig) -> bool:
        redis_client(config)
        return await AdminSessions(config).end(public_id)

    ended = run(target, work)
    if target.as_json:
        emit_json({"public_id": public_id, "ended": ended})
    elif ended:
        click.echo(f"Signed out session {public_id}.")
    if not ended:
        if not target.as_json:
            click.echo(f"No live session {public_id}.", err=True)
        raise SystemExit(1)


cli.add_command(inspect_token)
cli.add_command(stats)
cli.add_command(check)
