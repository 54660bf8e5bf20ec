"""`UserSessions`' known devices on every store: sightings, the listing, forgetting."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sessionward import (
    CookieTransport,
    DeviceCookie,
    KnownDevice,
    RedisStore,
    Store,
    UserSessions,
)
from sessionward.device_ids import new_device_id
from sessionward.users import KNOWN_DEVICE_TTL, MAX_KNOWN_DEVICES
from tests.apps import OLD_SECRET, SECRET, build_app
from tests.conftest import client_for

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000_000
COOKIE = DeviceCookie(CookieTransport(), [SECRET])


def users_of(store: Store) -> UserSessions:
    return UserSessions(store, idle_ttl=3600, absolute_ttl=7200)


async def test_devices_are_listed_most_recently_seen_first(store: Store) -> None:
    users = users_of(store)
    laptop, phone = new_device_id(), new_device_id()
    assert await users.see_device("ada", COOKIE.hashes(laptop), "Chrome", "Berlin", T0) == (
        True,
        True,
        True,  # the account's first sign-in
    )
    assert await users.see_device("ada", COOKIE.hashes(phone), "Safari", None, T0 + 1000) == (
        True,
        False,
        False,
    )
    assert await users.see_device("ada", COOKIE.hashes(laptop), "Chrome", "Berlin", T0 + 2000) == (
        False,
        False,
        False,
    )
    listed = await users.known_devices("ada")
    assert [device.label for device in listed] == ["Chrome", "Safari"]
    assert listed[0] == KnownDevice(
        id=COOKIE.hashes(laptop)[0],
        first_seen=datetime.fromtimestamp(T0 / 1000, tz=timezone.utc),
        last_seen=datetime.fromtimestamp((T0 + 2000) / 1000, tz=timezone.utc),
        label="Chrome",
        location="Berlin",
    )
    assert listed[1].to_dict() == {
        "id": COOKIE.hashes(phone)[0],
        "label": "Safari",
        "location": None,
        "first_seen": "2027-01-15T08:00:01+00:00",
        "last_seen": "2027-01-15T08:00:01+00:00",
    }
    assert await users.known_devices("bob") == []


async def test_a_device_stays_known_across_key_rotation(store: Store) -> None:
    users = users_of(store)
    device_id = new_device_id()
    before = DeviceCookie(CookieTransport(), [OLD_SECRET])
    after = DeviceCookie(CookieTransport(), [SECRET, OLD_SECRET])
    await users.see_device("ada", before.hashes(device_id), "Chrome", None, T0)
    assert await users.see_device("ada", after.hashes(device_id), "Chrome", None, T0 + 1) == (
        False,
        False,
        False,
    )
    (device,) = await users.known_devices("ada")
    assert device.id == COOKIE.hashes(device_id)[0]  # now under the current key
    assert await users.see_device("ada", COOKIE.hashes(device_id), "Chrome", None, T0 + 2) == (
        False,
        False,
        False,
    )  # and known once the old key is gone


async def test_the_log_keeps_the_most_recently_seen_devices(store: Store) -> None:
    users = users_of(store)
    ids = [new_device_id() for _ in range(MAX_KNOWN_DEVICES + 10)]
    for number, device_id in enumerate(ids):
        await users.see_device("ada", COOKIE.hashes(device_id), f"d{number}", None, T0 + number)
    listed = await users.known_devices("ada")
    assert len(listed) == MAX_KNOWN_DEVICES
    assert listed[-1].label == "d10"
    first, _, _ = await users.see_device("ada", COOKIE.hashes(ids[0]), "d0", None, T0 + 100)
    assert first  # forgotten, so new again


async def test_forgetting_a_device_by_id_or_entry(store: Store) -> None:
    users = users_of(store)
    laptop, phone = new_device_id(), new_device_id()
    await users.see_device("ada", COOKIE.hashes(laptop), "Chrome", None, T0)
    await users.see_device("ada", COOKIE.hashes(phone), "Safari", None, T0 + 1)
    newest, oldest = await users.known_devices("ada")
    assert not await users.forget_device("bob", newest)  # someone else's
    assert await users.forget_device("ada", newest)
    assert not await users.forget_device("ada", newest)  # already gone
    assert await users.forget_device("ada", oldest.id)
    assert await users.known_devices("ada") == []
    new_device, _, _ = await users.see_device("ada", COOKIE.hashes(phone), "Safari", None, T0 + 2)
    assert new_device


@pytest.mark.parametrize(
    "public_id", ["", "x", "A" * 64, "a" * 63, "a" * 65, "a" * 64 + "\n", "../" * 30, 7, None]
)
async def test_a_malformed_device_id_never_reaches_the_store(store: Store, public_id: str) -> None:
    assert not await users_of(store).forget_device("ada", public_id)


async def test_forgetting_every_device_is_for_account_deletion(store: Store) -> None:
    users = users_of(store)
    for number in range(3):
        await users.see_device("ada", [f"{number:064x}"], "Chrome", f"place-{number}", T0)
    await users.see_device("bob", ["f" * 64], "Chrome", None, T0)
    assert await users.forget_devices("ada") == 3
    assert await users.known_devices("ada") == []
    assert len(await users.known_devices("bob")) == 1
    assert await users.see_device("ada", ["0" * 64], "Chrome", "place-0", T0 + 1) == (
        True,
        True,
        False,
    )


async def test_signing_out_everywhere_keeps_the_known_devices(store: Store) -> None:
    app = build_app(store)
    users = users_of(store)
    async with client_for(app) as browser:
        await browser.post("/login/ada")  # logs the browser's device
        now_ms = users.config.now_ms()  # the app's clock: the memory store follows the latest
        await users.see_device("ada", COOKIE.hashes(new_device_id()), "Chrome", "Berlin", now_ms)
        assert await users.revoke_all("ada") == 1
    assert len(await users.known_devices("ada")) == 2


async def test_labels_and_locations_any_store_can_keep(store: Store) -> None:
    users = users_of(store)
    await users.see_device("ada", ["a" * 64], "Chrome \ud800" + "x" * 1000, "Berl\udfffin", T0)
    (device,) = await users.known_devices("ada")
    assert device.label == "Chrome ?" + "x" * 248
    assert device.location == "Berl?in"


async def test_a_sighting_needs_a_hash(store: Store) -> None:
    with pytest.raises(ValueError, match="hashes"):
        await users_of(store).see_device("ada", [], "Chrome", None, T0)


async def test_the_log_lives_as_long_as_the_device_cookie(store: Store) -> None:
    assert KNOWN_DEVICE_TTL == 400 * 24 * 3600
    users = users_of(store)
    await users.see_device("ada", ["a" * 64], "Chrome", None, T0)
    if isinstance(store, RedisStore):
        ttl = await store.client.pttl(store.device_log_key("ada"))
        assert KNOWN_DEVICE_TTL * 1000 - 60_000 < ttl <= KNOWN_DEVICE_TTL * 1000
        return
    late = T0 + KNOWN_DEVICE_TTL * 1000 - 1
    assert await users.see_device("ada", ["a" * 64], "Chrome", None, late) == (
        False,
        False,
        False,
    )
    await users.see_device("bob", ["b" * 64], "Chrome", None, late + KNOWN_DEVICE_TTL * 1000)
    assert await users.known_devices("ada") == []
