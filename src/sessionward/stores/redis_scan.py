"""Walking every session a `RedisStore` holds: a bounded `SCAN` on one server, or on each
primary of a Cluster in turn, never `KEYS`.

Only operators' tools walk the keyspace (`sessionward.admin.AdminSessions`, the `sessionward`
command line); requests never do. The cursor is text that can be printed and given back later:
a standalone server's own cursor, or `<primary>:<cursor>` on a Cluster, the primaries taken
in the order of their names. A Cluster whose primaries change during a walk may so repeat or
skip part of it, as a resharding would with `SCAN` itself.
"""

from __future__ import annotations

import re
from typing import Any

from redis.asyncio import RedisCluster
from redis.client import NEVER_DECODE

_GLOB = re.compile(r"([*?\[\]\\])")
_RAW: dict[str, Any] = {NEVER_DECODE: []}


def session_pattern(prefix: str) -> str:
    """The `MATCH` pattern of every session key under `prefix`, its glob characters escaped."""
    return _GLOB.sub(r"\\\1", prefix) + "s:{*"


async def scan_sessions(client: Any, prefix: str, cursor: str, count: int) -> tuple[str, list[str]]:
    """One `SCAN ... MATCH <prefix>s:{* COUNT <count> TYPE hash` step: the next cursor and the
    session keys (their hashes, as the store's calls take them) it found."""
    if count < 1:
        raise ValueError(f"count must be a positive int, not {count!r}")
    head = len(prefix) + 3  # "<prefix>s:{"
    arguments = ("MATCH", session_pattern(prefix), "COUNT", count, "TYPE", "hash")
    if isinstance(client, RedisCluster):
        return await _scan_cluster(client, cursor, arguments, head)
    if not cursor.isdigit():
        raise ValueError(f"{cursor!r} is not a cursor of a standalone Redis: digits only")
    following, keys = await client.execute_command("SCAN", cursor, *arguments, **_RAW)
    return str(int(following)), _session_keys(keys, head)


async def _scan_cluster(
    client: RedisCluster, cursor: str, arguments: tuple[str | int, ...], head: int
) -> tuple[str, list[str]]:
    await client.initialize()  # a client that has sent nothing yet knows no nodes
    primaries = sorted(client.get_primaries(), key=lambda node: node.name)
    position, _, node_cursor = cursor.partition(":") if cursor != "0" else ("0", "", "0")
    if not (position.isdigit() and node_cursor.isdigit()) or int(position) >= len(primaries):
        raise ValueError(f"{cursor!r} is not a cursor of this Redis Cluster")
    node = primaries[int(position)]
    reply = await client.execute_command("SCAN", node_cursor, *arguments, target_nodes=node, **_RAW)
    following, keys = reply[node.name] if isinstance(reply, dict) else reply
    if isinstance(following, dict):  # redis-py's cluster callback: the cursor by node name
        following = following[node.name]
    if int(following) != 0:
        return f"{position}:{int(following)}", _session_keys(keys, head)
    after = int(position) + 1
    return (f"{after}:0" if after < len(primaries) else "0"), _session_keys(keys, head)


def _session_keys(keys: list[bytes | str], head: int) -> list[str]:
    texts = (key.decode("utf-8", "replace") if isinstance(key, bytes) else key for key in keys)
    return [text[head:-1] for text in texts if text.endswith("}")]
