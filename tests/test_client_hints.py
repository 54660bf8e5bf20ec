"""User-Agent Client Hints: asked for on HTML pages, read into the device label, never a
downgrade, never a security input, and hostile ones ignored."""

from __future__ import annotations

from typing import Any

import http_sf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from sessionward import SessionMiddleware, Store, TrustedProxies, device_routes, login
from sessionward.client import Client
from sessionward.client_hints import (
    ACCEPT_CH,
    FINGERPRINT_CHARS,
    HINT_HEADERS,
    MAX_BRANDS,
    MAX_HINT_BYTES,
    _brand_list,
    _string,
    _string_list,
    fingerprint,
    parse_with_hints,
    read_hints,
)
from sessionward.devices import parse_user_agent
from sessionward.record import HINTS, SessionRecord, device_from_fields, device_to_fields
from tests.apps import SECRET, RecordingStore
from tests.client_hint_pairs import PAIRS, Pair, as_headers, as_hints, chromium
from tests.conftest import client_for

WINDOWS_11 = PAIRS[0]
ANDROID = next(pair for pair in PAIRS if "Pixel 8" in pair.after)
ASKED = ", ".join(ACCEPT_CH)


# -- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS, ids=[pair.name for pair in PAIRS])
def test_real_browsers_read_as_people_know_them(pair: Pair) -> None:
    assert parse_user_agent(pair.user_agent).label == pair.before
    device = parse_with_hints(pair.user_agent, as_hints(pair.hints))
    assert (device.label, device.kind) == (pair.after, pair.kind)


def test_the_device_has_the_platform_version_and_form_factor() -> None:
    device = parse_with_hints(ANDROID.user_agent, as_hints(ANDROID.hints))
    assert device.to_dict() == {
        "browser": "Chrome",
        "browser_version": "131",
        "os": "Android",
        "os_version": "15.0.0",
        "device_family": "Pixel 8",
        "brand": "Google",
        "model": "Pixel 8",
        "kind": "mobile",
        "label": "Chrome 131 on Android 15 (Pixel 8)",
        "platform_version": "15.0.0",
        "form_factor": "Mobile",
    }
    windows = parse_with_hints(WINDOWS_11.user_agent, as_hints(WINDOWS_11.hints))
    assert (windows.os, windows.os_version, windows.platform_version) == ("Windows", "11", "15.0.0")


@pytest.mark.parametrize(
    "grease",
    ["Not A;Brand", "Not/A)Brand", "Not_A Brand", "Not.A/Brand", "Not?A_Brand", "Not)A;Brand"],
)
def test_grease_brands_are_ignored(grease: str) -> None:
    brands = f'"{grease}";v="99", "Microsoft Edge";v="131", "Chromium";v="131"'
    assert read_hints(as_hints({"": brands}) or ()).browser == "Edge"
    assert read_hints(as_hints({"": f'"{grease}";v="99"'}) or ()).browser is None


def test_the_full_version_list_is_preferred_and_the_brand_list_stands_in() -> None:
    full = '"Opera";v="115.0.5322.109", "Chromium";v="130.0.6723.137"'
    assert read_hints(as_hints({"": '"Chromium";v="130"', "-full-version-list": full}) or ())[
        :2
    ] == ("Opera", "115")
    assert read_hints(as_hints({"": '"Opera";v="115"'}) or ())[:2] == ("Opera", "115")


@pytest.mark.parametrize("pair", [pair for pair in PAIRS if pair.hints], ids=lambda p: p.name)
def test_the_common_shapes_read_as_http_sf_reads_them(pair: Pair) -> None:
    """The regular expressions are a fast path only: http-sf, the reference, agrees."""
    for suffix, value in pair.hints.items():
        if suffix in ("", "-full-version-list"):
            brands: Any = http_sf.parse(value.encode(), tltype="list")
            assert _brand_list(value.encode()) == [(name, params["v"]) for name, params in brands]
        elif suffix == "-form-factors":
            names: Any = http_sf.parse(value.encode(), tltype="list")
            assert _string_list(value.encode()) == [name for name, _ in names]
        elif suffix != "-mobile":
            item: Any = http_sf.parse(value.encode(), tltype="item")
            assert _string(value.encode()) == item[0]


def test_odd_but_valid_fields_go_to_http_sf() -> None:
    escaped = as_hints(
        {
            "": r'"Google Chrome";v="131";x=1, "Chromium";v="131"',
            "-platform": '"macOS";a=1',
            "-platform-version": '"15.1.0"',
            "-model": r'"Pixel \"8\""',
            "-mobile": "?0;x",
        }
    )
    hints = read_hints(escaped or ())
    assert (hints.browser, hints.platform, hints.platform_version, hints.mobile) == (
        "Chrome",
        "macOS",
        "15.1.0",
        False,
    )
    assert hints.model == "Pixel 8"  # the quotes, unsafe in a label, are gone


# -- hostile hints ------------------------------------------------------------------------------


HOSTILE = {
    "huge brand list": {"": '"Evil";v="1", ' * 5000 + '"Chromium";v="131"'},
    "too many brands": {"": ", ".join(f'"B{i}";v="1"' for i in range(MAX_BRANDS + 1))},
    "huge model": {"-model": '"' + "A" * 10_000 + '"'},
    "unterminated": {"": '"Chromium;v="131', "-platform": '"Windows', "-model": '"Pixel'},
    "not strings": {"": "Chromium;v=131", "-platform": "Windows", "-platform-version": "15"},
    "binary": {"": "\x00\x01\xff", "-platform": '"\xe9"', "-model": '"\x1b[31m"'},
    "markup": {"-model": '"<script>alert(1)</script>"', "": '"<b>Evil</b>";v="1"'},
    "bad versions": {"-platform-version": '"15.0.0.0.0.0"', "": '"Chromium";v="99999999999"'},
    "nested lists": {"": '("a" "b");v="1", "Chromium";v="131"', "-form-factors": '("XR")'},
    "booleans where strings go": {"-platform": "?1", "-model": "?0", "-form-factors": "?1"},
}


@pytest.mark.parametrize("hints", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_hints_are_ignored(hints: dict[str, str]) -> None:
    raw = {name.encode(): value.encode("latin-1") for name, value in as_headers(hints).items()}
    hostile = tuple(raw.get(name) for name in HINT_HEADERS)
    device = parse_with_hints(WINDOWS_11.user_agent, hostile)
    assert device.label.startswith(("Chrome 131 on Windows", "Evil 1 on Windows"))
    assert device.platform_version is None
    assert not any(char in device.label for char in "<>\"'\x00\x1b")
    assert len(device.label) < 100


def test_a_header_over_the_cap_is_as_good_as_absent() -> None:
    padded = '"Microsoft Edge";v="131"' + " " * MAX_HINT_BYTES
    assert read_hints(as_hints({"": padded}) or ()).browser is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=7, max_size=7))
def test_no_hints_make_parsing_raise(values: list[bytes | None]) -> None:
    device = parse_with_hints(WINDOWS_11.user_agent, tuple(values))
    assert device.label


# -- asking for them ----------------------------------------------------------------------------


def asking_app(store: Store, **options: Any) -> Starlette:
    async def page(request: Request) -> Response:
        return HTMLResponse("<form method=post action=/login></form>")

    async def own(request: Request) -> Response:
        return HTMLResponse("<p>", headers={"Accept-CH": "Sec-CH-UA-Arch, sec-ch-ua-model"})

    async def data(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def sign_in(request: Request) -> Response:
        await login(request, "ada")
        return PlainTextResponse("signed in")

    async def touch(request: Request) -> Response:
        request.app.state.changes = dict(request.scope["sessionward"].meta_changes)
        return PlainTextResponse(str(request.session.get("n")))

    return Starlette(
        routes=[
            Route("/", page),
            Route("/own", own),
            Route("/data", data),
            Route("/login", sign_in, methods=["POST"]),
            Route("/touch", touch),
            Mount("/account", routes=device_routes()),
        ],
        middleware=[Middleware(SessionMiddleware, store=store, secret_keys=[SECRET], **options)],
    )


@pytest.mark.anyio
async def test_html_pages_ask_for_the_hints_and_nothing_else_does(store: Store) -> None:
    async with client_for(asking_app(store)) as client:
        page, data = await client.get("/"), await client.get("/data")
    assert page.headers["accept-ch"] == ASKED
    assert "critical-ch" not in page.headers
    assert "accept-ch" not in data.headers


@pytest.mark.anyio
async def test_the_apps_own_accept_ch_is_merged_into_one_header(store: Store) -> None:
    async with client_for(asking_app(store)) as client:
        response = await client.get("/own")
    assert response.headers.get_list("accept-ch") == [
        "Sec-CH-UA-Arch, sec-ch-ua-model, Sec-CH-UA-Platform-Version, "
        "Sec-CH-UA-Full-Version-List, Sec-CH-UA-Form-Factors"
    ]


@pytest.mark.anyio
async def test_client_hints_false_asks_for_none(store: Store) -> None:
    async with client_for(asking_app(store, client_hints=False)) as client:
        assert "accept-ch" not in (await client.get("/")).headers


# -- the session's device -----------------------------------------------------------------------


async def sign_in_and_list(client: Any, pair: Pair) -> dict[str, Any]:
    headers = {"user-agent": pair.user_agent, **as_headers(pair.hints)}
    assert (await client.post("/login", headers=headers)).status_code == 200
    listed = await client.get("/account/sessions", headers=headers)
    device: dict[str, Any] = listed.json()["sessions"][0]["device"]
    return device


@pytest.mark.anyio
async def test_a_sign_in_with_hints_lists_the_device_they_describe(store: Store) -> None:
    async with client_for(asking_app(store)) as client:
        device = await sign_in_and_list(client, ANDROID)
    assert device["label"] == "Chrome 131 on Android 15 (Pixel 8)"
    assert (device["platform_version"], device["form_factor"]) == ("15.0.0", "Mobile")


@pytest.mark.anyio
async def test_fewer_hints_never_downgrade_the_label_and_write_nothing(store: Store) -> None:
    recording = RecordingStore(store)
    app = asking_app(recording)
    async with client_for(app) as client:
        await sign_in_and_list(client, WINDOWS_11)
        low = {key: value for key, value in WINDOWS_11.hints.items() if key in ("", "-platform")}
        for hints in (low, {}, WINDOWS_11.hints):
            recording.calls.clear()
            headers = {"user-agent": WINDOWS_11.user_agent, **as_headers(hints)}
            assert (await client.get("/touch", headers=headers)).status_code == 200
            assert app.state.changes == {}
            assert "save" not in recording.calls
        listed = await client.get("/account/sessions")
    assert listed.json()["sessions"][0]["label"] == "Chrome 131 on Windows 11"


@pytest.mark.anyio
async def test_new_or_changed_hints_update_the_device(store: Store) -> None:
    app = asking_app(store)
    upgraded = {**WINDOWS_11.hints, "-platform-version": '"16.0.0"', "-form-factors": '"XR"'}
    async with client_for(app) as client:
        low = {key: value for key, value in WINDOWS_11.hints.items() if key in ("", "-platform")}
        await sign_in_and_list(client, WINDOWS_11._replace(hints=low))
        for hints, label in ((WINDOWS_11.hints, "Chrome 131 on Windows 11"), (upgraded, None)):
            headers = {"user-agent": WINDOWS_11.user_agent, **as_headers(hints)}
            await client.get("/touch", headers=headers)
            assert HINTS in app.state.changes
            device = (await client.get("/account/sessions")).json()["sessions"][0]["device"]
            assert label is None or device["label"] == label
    assert (device["platform_version"], device["form_factor"], device["kind"]) == (
        "16.0.0",
        "XR",
        "other",
    )


@pytest.mark.anyio
async def test_a_new_user_agent_without_hints_drops_the_hinted_device(store: Store) -> None:
    app = asking_app(store)
    async with client_for(app) as client:
        await sign_in_and_list(client, WINDOWS_11)
        firefox = PAIRS[-3]
        await client.get("/touch", headers={"user-agent": firefox.user_agent})
        assert app.state.changes[HINTS] == ""
        device = (await client.get("/account/sessions")).json()["sessions"][0]["device"]
    assert device["label"] == "Firefox 133 on Windows"
    assert device["platform_version"] is None


def test_hints_are_no_part_of_the_user_agents_fingerprint() -> None:
    """A refresh's client check and a moved session's identity read `agent_hash`: hints are
    labels only, so they must not move it."""

    def client(hints: dict[str, str]) -> Client:
        headers = [(b"user-agent", WINDOWS_11.user_agent.encode())]
        headers += [(name.encode(), value.encode()) for name, value in as_headers(hints).items()]
        return Client({"type": "http", "headers": headers}, TrustedProxies([]))

    assert client(WINDOWS_11.hints).agent_hash == client({}).agent_hash
    assert client(WINDOWS_11.hints).hints is not None
    assert client({}).hints is None


# -- the record ---------------------------------------------------------------------------------


def test_a_hinted_device_adds_at_most_40_bytes_to_the_record() -> None:
    for pair in PAIRS:
        if not pair.hints:
            continue
        hints = as_hints(pair.hints)
        assert hints is not None
        fields = device_to_fields(parse_with_hints(pair.user_agent, hints), fingerprint(hints))
        assert len(HINTS) + len(fields[HINTS]) <= 40, pair.name
        assert device_from_fields(fields) == parse_with_hints(pair.user_agent, hints)


def test_records_without_the_hints_field_still_load() -> None:
    device = parse_user_agent(WINDOWS_11.user_agent)
    fields = {"m:created": "1", "m:expires": "9", "m:seen": "1", **device_to_fields(device)}
    record = SessionRecord.from_fields(fields, 1000)
    assert record is not None
    assert record.device == device
    assert record.device.platform_version is None


def test_the_fingerprint_is_short_and_says_which_hints_are_present() -> None:
    hints = as_hints(WINDOWS_11.hints)
    assert hints is not None
    assert len(fingerprint(hints)) == FINGERPRINT_CHARS
    assert fingerprint(hints)[:2] == "7f"  # all seven
    low = as_hints({"": GOOGLE_BRANDS, "-mobile": "?0", "-platform": '"Windows"'})
    assert low is not None
    assert fingerprint(low)[:2] == "07"


GOOGLE_BRANDS = chromium('"Google Chrome";v="131"', "Windows", "15.0.0")[""]


def test_results_are_cached_by_user_agent_and_hints() -> None:
    hints = as_hints(ANDROID.hints)
    assert parse_with_hints(ANDROID.user_agent, hints) is parse_with_hints(
        ANDROID.user_agent, hints
    )


@pytest.mark.anyio
@pytest.mark.parametrize("hints", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_hints_never_fail_a_request(hints: dict[str, str]) -> None:
    from sessionward import MemoryStore

    headers = [
        (name.encode(), value.encode("latin-1")) for name, value in as_headers(hints).items()
    ]
    async with client_for(asking_app(MemoryStore())) as client:
        signed_in = await client.post("/login", headers=headers)
        listed = await client.get("/account/sessions", headers=headers)
    assert (signed_in.status_code, listed.status_code) == (200, 200)
    assert listed.json()["sessions"][0]["device"]["platform_version"] is None


def test_hints_beside_a_browser_that_sends_none_are_an_emulation_and_ignored() -> None:
    """Only Chromium sends hints: beside Safari's user-agent (an automated Chromium posing as
    an iPhone), the user-agent wins."""
    iphone = PAIRS[-1]
    device = parse_with_hints(iphone.user_agent, as_hints(WINDOWS_11.hints))
    assert (device.label, device.kind) == ("Safari on iPhone", "mobile")
