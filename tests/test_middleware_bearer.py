"""Bearer sessions over HTTP: JWT sign-in, refusal with WWW-Authenticate, rotation, revocation."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jwt
import pytest

from sessionward import BearerSigner, BearerTransport, JWTKey, Store, UserSessions
from tests.apps import RecordingStore, build_app
from tests.conftest import Clock, client_for
from tests.test_bearer import hand_made, private_key, public_pem

pytestmark = pytest.mark.anyio

RSA = private_key("RS256")
KEY_1 = JWTKey("k1", "RS256", RSA)
KEY_2 = JWTKey("k2", "HS256", "h" * 32)


def bearer_app(store: Store, clock: Clock, *keys: JWTKey, **signer: Any) -> Any:
    transport = BearerTransport(BearerSigner(list(keys or [KEY_1]), **signer))
    return build_app(store, bearer=transport, clock=clock)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def sign_in(client: httpx.AsyncClient, user: str = "ada") -> str:
    response = await client.post(f"/api/login/{user}")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    token: str = response.json()["token"]
    return token


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return decoded


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    assert "set-cookie" not in response.headers


async def test_a_bearer_sign_in_returns_a_jwt_that_authenticates(
    store: Store, clock: Clock
) -> None:
    async with client_for(bearer_app(store, clock)) as api:
        token = await sign_in(api)
        me = await api.get("/me", headers=auth(token))
        written = await api.post("/session", json={"device": "phone"}, headers=auth(token))
        read = await api.get("/session", headers=auth(token))
    assert me.json()["user_id"] == "ada"
    assert me.json()["transport"] == "bearer"
    assert "set-cookie" not in written.headers
    assert read.json() == {"device": "phone"}
    assert jwt.decode(token, options={"verify_signature": False})["sid"] != me.json()["id"]


def forged_tokens(now: float) -> dict[str, str]:
    claims = {"sid": "x" * 43, "sub": "ada", "iat": int(now), "exp": int(now) + 3600, "jti": "j"}
    rs256 = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
    return {
        "alg none": hand_made({"alg": "none", "kid": "k1", "typ": "JWT"}, claims),
        "hs256 with the rsa public key": hand_made(
            {"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims, public_pem("RS256")
        ),
        "wrong kid": jwt.encode(claims, RSA, algorithm="RS256", headers={"kid": "other"}),
        "expired": jwt.encode({**claims, "exp": int(now) - 10}, RSA, "RS256", headers=rs256),
        "not yet valid": jwt.encode({**claims, "nbf": int(now) + 600}, RSA, "RS256", rs256),
        "wrong audience": jwt.encode({**claims, "aud": "other"}, RSA, "RS256", rs256),
        "missing sid": jwt.encode({**claims, "sid": None}, RSA, "RS256", rs256),
        "missing exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, RSA, "RS256"),
        "random bytes": base64.urlsafe_b64encode(bytes(range(90))).decode(),
        "empty": "",
        "garbage": "a.b.c",
    }


@pytest.mark.parametrize("case", list(forged_tokens(0)))
async def test_bad_tokens_get_401_with_a_challenge(store: Store, clock: Clock, case: str) -> None:
    token = forged_tokens(clock())[case]
    async with client_for(bearer_app(store, clock)) as api:
        response = await api.get("/me", headers=auth(token))
    assert_refused(response)


async def test_wrong_issuer_or_audience_is_refused(store: Store, clock: Clock) -> None:
    async with client_for(bearer_app(store, clock, issuer="a", audience="b")) as issuing:
        token = await sign_in(issuing)
        assert (await issuing.get("/me", headers=auth(token))).status_code == 200
    for signer in ({"issuer": "other", "audience": "b"}, {"issuer": "a", "audience": "other"}):
        async with client_for(bearer_app(store, clock, **signer)) as verifying:
            assert_refused(await verifying.get("/me", headers=auth(token)))


async def test_a_revoked_session_is_refused_although_exp_is_hours_away(
    store: Store, clock: Clock
) -> None:
    async with client_for(bearer_app(store, clock, lifetime=6 * 3600)) as api:
        token = await sign_in(api)
        assert (await api.get("/me", headers=auth(token))).status_code == 200
        await UserSessions(store, idle_ttl=3600, absolute_ttl=7200, clock=clock).revoke_all("ada")
        response = await api.get("/me", headers=auth(token))
    assert_refused(response)
    assert 'error_description="session_ended"' in response.headers["www-authenticate"]


async def test_an_expired_jwt_is_refused_even_on_a_live_session(store: Store, clock: Clock) -> None:
    async with client_for(bearer_app(store, clock, lifetime=60)) as api:
        token = await sign_in(api)
        clock.advance(61)
        response = await api.get("/me", headers=auth(token))
    assert_refused(response)
    assert 'error_description="expired"' in response.headers["www-authenticate"]


async def test_key_rotation_for_bearer_tokens(store: Store, clock: Clock) -> None:
    async with client_for(bearer_app(store, clock, KEY_1)) as before:
        old_token = await sign_in(before)
    async with client_for(bearer_app(store, clock, KEY_2, KEY_1)) as during:
        assert (await during.get("/me", headers=auth(old_token))).status_code == 200
        new_token = await sign_in(during)
    assert header_of(old_token)["kid"] == "k1"
    assert header_of(new_token)["kid"] == "k2"
    async with client_for(bearer_app(store, clock, KEY_2)) as after:
        assert (await after.get("/me", headers=auth(new_token))).status_code == 200
        assert_refused(await after.get("/me", headers=auth(old_token)))


async def test_refresh_issues_a_new_jwt_for_the_same_session(store: Store, clock: Clock) -> None:
    async with client_for(bearer_app(store, clock, lifetime=60)) as api:
        token = await sign_in(api)
        clock.advance(30)
        with pytest.warns(DeprecationWarning, match="login_bearer"):
            refreshed = (await api.post("/api/refresh", headers=auth(token))).json()["token"]
        clock.advance(40)  # past the first token's exp, within the second's
        assert_refused(await api.get("/me", headers=auth(token)))
        assert (await api.get("/me", headers=auth(refreshed))).json()["user_id"] == "ada"
    old, new = (jwt.decode(t, options={"verify_signature": False}) for t in (token, refreshed))
    assert old["sid"] == new["sid"]
    assert old["jti"] != new["jti"]


async def test_cookie_and_bearer_sessions_of_one_user_are_listed_together(
    store: Store, clock: Clock
) -> None:
    app = bearer_app(store, clock)
    async with client_for(app) as browser, client_for(app) as api:
        await browser.post("/login/ada")
        token = await sign_in(api)
        listed = (await browser.get("/account/sessions")).json()["sessions"]
        from_api = (await api.get("/account/sessions", headers=auth(token))).json()["sessions"]
    assert sorted(entry["transport"] for entry in listed) == ["bearer", "cookie"]
    assert [entry["current"] for entry in from_api if entry["transport"] == "bearer"] == [True]


async def test_a_bearer_client_can_sign_out_other_devices_without_an_origin(
    store: Store, clock: Clock
) -> None:
    app = bearer_app(store, clock)
    async with client_for(app) as browser, client_for(app) as api:
        await browser.post("/login/ada")
        token = await sign_in(api)
        response = await api.delete("/account/sessions", headers=auth(token))
        assert response.json() == {"revoked": 1}
        assert (await browser.get("/me")).json() is None


async def test_a_bearer_session_cleared_by_the_handler_ends(store: Store, clock: Clock) -> None:
    async with client_for(bearer_app(store, clock)) as api:
        token = await sign_in(api)
        assert (await api.post("/logout", headers=auth(token))).status_code == 200
        assert_refused(await api.get("/me", headers=auth(token)))


async def test_refusals_touch_nothing_in_the_store(store: Store, clock: Clock) -> None:
    recording = RecordingStore(store)
    async with client_for(bearer_app(recording, clock)) as api:
        for token in forged_tokens(clock()).values():
            assert_refused(await api.post("/session", json={"a": 1}, headers=auth(token)))
    assert recording.calls == []


async def test_a_signed_token_with_a_non_ascii_sid_is_refused_not_a_500(
    store: Store, clock: Clock
) -> None:
    token = BearerSigner(KEY_1).issue("sess\u00e3o-42", "ada", now=clock())
    async with client_for(bearer_app(store, clock)) as api:
        assert_refused(await api.get("/me", headers=auth(token)))


async def test_the_challenge_does_not_tell_which_key_ids_exist(store: Store, clock: Clock) -> None:
    """Unknown kid and bad signature look alike to the client; the app's logs tell them apart."""
    async with client_for(bearer_app(store, clock, KEY_2)) as api:
        token = await sign_in(api)
        _, payload, _ = token.split(".")
        forged = jwt.encode(
            json.loads(base64.urlsafe_b64decode(payload + "==")),
            "x" * 32,
            algorithm="HS256",
            headers={"kid": "k2"},
        )
        unknown = jwt.encode({"sub": "ada"}, "x" * 32, algorithm="HS256", headers={"kid": "nope"})
        challenges = set()
        for attempt in (forged, unknown):
            response = await api.get("/me", headers=auth(attempt))
            assert_refused(response)
            challenges.add(response.headers["www-authenticate"])
    assert challenges == {'Bearer error="invalid_token", error_description="invalid"'}


async def test_a_bearer_response_that_read_the_session_varies_on_authorization(
    store: Store, clock: Clock
) -> None:
    async with client_for(bearer_app(store, clock)) as api:
        token = await sign_in(api)
        response = await api.get("/session", headers=auth(token))
    assert response.status_code == 200
    assert response.headers["vary"] == "Authorization"


async def test_a_genuine_token_naming_another_user_for_the_session_is_refused(
    store: Store, clock: Clock
) -> None:
    """Signed with the real key, for a live session: only the session's own user may use it."""
    async with client_for(bearer_app(store, clock)) as api:
        token = await sign_in(api, "ada")
        sid = jwt.decode(token, options={"verify_signature": False})["sid"]
        as_bob = BearerSigner(KEY_1).issue(sid, "bob", now=clock())
        response = await api.get("/me", headers=auth(as_bob))
        still_ada = await api.get("/me", headers=auth(token))
    assert_refused(response)
    assert 'error_description="session_ended"' in response.headers["www-authenticate"]
    assert still_ada.json()["user_id"] == "ada"
