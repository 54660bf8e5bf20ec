"""`sessionward check`: the configuration as the library sees it, and the Redis it talks to:
version and mode, round-trip time, whether the store's scripts are loaded, clock skew."""

from __future__ import annotations

import statistics
import time
from typing import Any

import click

from ..config import SessionConfig
from .output import duration, emit_json, facts
from .target import Target, redis_client, run, target_options

PINGS = 5
SKEW_WARNING_MS = 1000  # idle and absolute deadlines are Redis-side and host-side times


def configuration(config: SessionConfig) -> dict[str, Any]:
    """What the library will do, never a secret: key lengths, not keys."""
    cookie = config.cookie
    lengths = list(config.signer.key_lengths)
    flags = [part.strip() for part in cookie.expire_cookie().split(";")[1:]]
    flags = [flag for flag in flags if not flag.lower().startswith(("max-age", "expires"))]
    store = getattr(config.store, "wrapped", config.store)
    bearer = config.bearer
    return {
        "secret_keys": f"{len(lengths)} ({', '.join(map(str, lengths))} bytes; the first signs)",
        "key_lengths": lengths,
        "cookie": cookie.name,
        "cookie_flags": "; ".join(flags),
        "cookie_max_age": cookie.max_age,
        "idle_ttl": duration(config.idle_ttl_ms),
        "absolute_ttl": duration(config.absolute_ttl_ms),
        "max_sessions_per_user": config.max_sessions_per_user,
        "bearer": "on" if bearer is not None else "off",
        "store": type(store).__name__,
        "prefix": getattr(store, "prefix", None),
    }


async def server(config: SessionConfig) -> dict[str, Any]:
    """The Redis server's facts, from the client the store uses."""
    from redis.asyncio import RedisCluster

    client = redis_client(config)
    store = getattr(config.store, "wrapped", config.store)
    nodes: list[Any] = [None]
    if isinstance(client, RedisCluster):
        await client.initialize()  # a client that has sent nothing yet knows no nodes
        nodes = sorted(client.get_primaries(), key=lambda node: node.name)
    info = await _on(client, nodes[0], "INFO", "server")
    times = []
    for _ in range(PINGS):
        started = time.perf_counter()
        await _on(client, nodes[0], "PING")
        times.append((time.perf_counter() - started) * 1000)
    before = time.time()
    seconds, micros = await _on(client, nodes[0], "TIME")
    after = time.time()
    skew_ms = ((before + after) / 2 - (int(seconds) + int(micros) / 1e6)) * 1000
    scripts = {
        name: getattr(store, attribute).sha
        for name, attribute in (
            ("load", "_load_and_touch"),
            ("load untouched", "_load_untouched"),
            ("save", "_save_if_live"),
            ("sign-in device log", "_device_seen"),
            ("sign-in index", "_index_add"),
        )
    }
    loaded = {name: True for name in scripts}
    for node in nodes:  # each primary keeps its own script cache
        found = await _on(client, node, "SCRIPT EXISTS", *scripts.values())
        for name, exists in zip(scripts, found, strict=True):
            loaded[name] = loaded[name] and bool(int(exists))
    return {
        "redis_version": _text(info.get("redis_version")),
        "mode": _text(info.get("redis_mode")),
        "primaries": len(nodes),
        "round_trip_ms": round(statistics.median(times), 3),
        "clock_skew_ms": round(skew_ms, 1),
        "scripts_loaded": loaded,
    }


async def _on(client: Any, node: Any, *command: Any) -> Any:
    if node is None:
        return await client.execute_command(*command)
    reply = await client.execute_command(*command, target_nodes=node)
    return reply[node.name] if isinstance(reply, dict) and node.name in reply else reply


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@click.command()
@target_options
def check(target: Target) -> None:
    """Show the configuration as the library sees it (key lengths, never keys; the cookie's
    name and flags; lifetimes), then the Redis server: version and mode, round-trip time,
    whether the store's scripts are loaded, and the clock skew between here and Redis."""

    async def work(config: SessionConfig) -> dict[str, Any]:
        from ..stores.redis import RedisStore

        settings = configuration(config)
        held = isinstance(getattr(config.store, "wrapped", config.store), RedisStore)
        return {"configuration": settings, "redis": await server(config) if held else None}

    report = run(target, work)
    if target.as_json:
        emit_json(report)
        return
    settings = report["configuration"]
    del settings["key_lengths"]
    facts("Configuration", settings)
    redis = report["redis"]
    if redis is None:
        facts("Redis", {"none": "the sessions live in the app's own process (MemoryStore)"})
        return
    skew = redis["clock_skew_ms"]
    loaded = redis.pop("scripts_loaded")
    facts(
        "Redis",
        {
            "version": redis["redis_version"],
            "mode": f"{redis['mode']} ({redis['primaries']} primaries)"
            if redis["mode"] == "cluster"
            else redis["mode"],
            "round trip": f"{redis['round_trip_ms']} ms (median of {PINGS} PINGs)",
            "clock skew": f"{skew:+.1f} ms (this host minus Redis)"
            + ("  WARNING: deadlines will be off" if abs(skew) > SKEW_WARNING_MS else ""),
            "scripts": ", ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in loaded.items())
            + ("" if all(loaded.values()) else " (each is loaded at its first use)"),
        },
    )
