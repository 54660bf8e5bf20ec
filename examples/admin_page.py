"""The example's admin page, mounted at /admin by examples/app.py: the latest sign-ins across
every user, and a "Sign out everywhere" button for each user.

The demo grants the admin role by name: the names in `SESSIONWARD_ADMINS` (comma-separated;
"admin" when unset). The page is built on `AdminSessions`, which walks every session the
store holds with a bounded SCAN: fine for a demo and for an admin page, never for a page
every visitor loads.
"""

from __future__ import annotations

import heapq
import html
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionward import AdminSessions, SessionInfo, get_session, user_sessions

RECENT = timedelta(days=7)  # sign-ins this recent are listed
SHOWN = 50  # at most, latest first
Render = Callable[[str, str, int], HTMLResponse]


def admin_routes(environ: Mapping[str, str], render: Render) -> list[Route]:
    """The admin page's routes; `render(title, body, status)` draws a page in the app's style."""
    names = environ.get("SESSIONWARD_ADMINS", "admin")
    page = AdminPage(frozenset(name.strip() for name in names.split(",") if name.strip()), render)
    return [
        Route("/", page.show),
        Route("/sign-out", page.sign_out_everywhere, methods=["POST"]),
    ]


class AdminPage:
    def __init__(self, admins: frozenset[str], render: Render) -> None:
        self.admins = admins
        self.render = render

    async def show(self, request: Request) -> Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        admin = AdminSessions(user_sessions(request).config)
        latest: list[tuple[datetime, str, SessionInfo]] = []  # a bounded heap: one page in memory
        async for info in admin.sessions(signed_in=True, active_since=RECENT):
            signed_in_at = info.authenticated_at or info.created_at
            item = (signed_in_at, info.public_id, info)
            if len(latest) < SHOWN:
                heapq.heappush(latest, item)
            else:
                heapq.heappushpop(latest, item)
        rows = "".join(_row(info) for _, _, info in sorted(latest, reverse=True))
        flash = request.query_params.get("done", "")
        return self.render(
            "Admin: recent sign-ins",
            "<h1>Recent sign-ins</h1>"
            + (f'<p class="flash" role="status">{html.escape(flash)}</p>' if flash else "")
            + '<table id="sign-ins"><thead><tr><th>User</th><th>Device</th><th>IP</th>'
            "<th>Signed in</th><th></th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            '<p><a href="/devices">Your devices</a></p>',
            200,
        )

    async def sign_out_everywhere(self, request: Request) -> Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        user_id = form.get("user", [""])[0]
        if not user_id:
            return self.render("No user", "<h1>Say which user to sign out</h1>", 400)
        me = get_session(request)
        keep = me.public_id if me is not None and me.user_id == user_id else None
        ended = await user_sessions(request).revoke_all(user_id, keep=keep)
        but = " except this one" if keep else ""
        done = f"Signed {user_id} out of {ended} session{'s' if ended != 1 else ''}{but}."
        return RedirectResponse("/admin/?" + urlencode({"done": done}), status_code=303)

    def _refusal(self, request: Request) -> Response | None:
        me = get_session(request)
        if me is None or me.user_id is None:
            return RedirectResponse("/login", status_code=303)
        if me.user_id not in self.admins:
            return self.render("Not allowed", "<h1>Admins only</h1>", 403)
        return None


def _row(info: SessionInfo) -> str:
    user = html.escape(info.user_id or "")
    at = (info.authenticated_at or info.created_at).astimezone(timezone.utc)
    label = html.escape(info.device.label if info.device else "Unknown device")
    return (
        f'<tr data-user="{user}"><td>{user}</td><td>{label}</td>'
        f"<td>{html.escape(info.ip or '-')}</td>"
        f'<td><time datetime="{at:%Y-%m-%dT%H:%M:%SZ}">{at:%Y-%m-%d %H:%M} UTC</time></td>'
        '<td><form method="post" action="/admin/sign-out">'
        f'<input type="hidden" name="user" value="{user}">'
        f'<button type="submit">Sign {user} out everywhere</button></form></td></tr>'
    )
