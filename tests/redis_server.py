"""Start and stop real `redis-server` processes on free loopback ports for the test suite.

`start_server()` gives one standalone server; `start_cluster()` gives a real three-primary
Redis Cluster, so the cluster tests exercise slot routing, not a mock of it; `start_sentinel()`
gives a Sentinel watching a server, so the docs' Sentinel set-up is run, not just read.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import redis


def require_redis() -> bool:
    """Under CI a missing Redis fails the run; elsewhere Redis tests skip with a reason."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(
        "SESSIONWARD_REQUIRE_REDIS"
    ) in ("1", "true")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A `redis-server` this test run started, and so may stop and restart by pid."""

    binary: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    directory: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="sessionward-redis-"))
    config_file: str | None = None  # passed first when set: Sentinel needs a writable one

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str, timeout: float = 10.0) -> None:
        command = [self.binary, *([self.config_file] if self.config_file else [])]
        command += ["--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", self.directory, *extra]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} exited at start-up")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        """Stop for good and delete the data directory (a restart after this is not possible)."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_server() -> RedisServer:
    """Start a server, trying a new port if the chosen one was taken meanwhile."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH")
    for _ in range(3):
        server = RedisServer(binary)
        try:
            server.start()
            return server
        except RuntimeError:
            server.stop()
    raise RuntimeError("could not start redis-server on a free loopback port")


@dataclass
class LocalCluster:
    """A Redis Cluster of primaries on loopback, started and owned by this test run."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """Any node's URL is enough: the client discovers the rest with CLUSTER SLOTS."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def stop(self) -> None:
        """Terminate every node by its pid and delete its directory (config and data)."""
        for node in self.nodes:
            node.remove()


def start_cluster(
    size: int = 3, *, replicas: int = 0, node_timeout_ms: int = 5000, timeout: float = 20.0
) -> LocalCluster:
    """Start `size` primaries (and `replicas` replicas of each), joined with `redis-cli
    --cluster create`. A replica takes over a primary that stays unreachable for
    `node_timeout_ms` (`benchmarks/load.py --fault failover`).

    Returns once every node reports `cluster_state:ok`, so the first test does not race the
    gossip that spreads the slot map. Each node gets its own directory and an explicit cluster
    bus port (`--cluster-port`, Redis 7+) instead of the default port + 10000, which can be
    taken or past 65535 when the client port is a high ephemeral one.
    """
    binary = shutil.which("redis-server")
    cli = shutil.which("redis-cli")
    if binary is None or cli is None:
        raise FileNotFoundError("redis-server and redis-cli must be on PATH for the cluster")
    nodes: list[RedisServer] = []
    try:
        for _ in range(size * (1 + replicas)):
            nodes.append(_start_cluster_node(binary, node_timeout_ms))
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        create = [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas)]
        created = subprocess.run(
            [*create, "--cluster-yes"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if created.returncode != 0:
            output = (created.stdout + created.stderr).decode(errors="replace")
            raise RuntimeError(f"redis-cli --cluster create failed: {output[-500:]}")
        _wait_for_cluster_ok(nodes, timeout)
    except BaseException:
        for node in nodes:
            node.remove()
        raise
    return LocalCluster(nodes)


def _start_cluster_node(binary: str, node_timeout_ms: int) -> RedisServer:
    for _ in range(3):
        node = RedisServer(binary)
        config_file = os.path.join(node.directory, f"nodes-{node.port}.conf")
        try:
            node.start(
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                config_file,
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                str(node_timeout_ms),
            )
            return node
        except RuntimeError:  # a port was taken meanwhile: try others
            node.remove()
    raise RuntimeError("could not start a cluster node on free loopback ports")


def _wait_for_cluster_ok(nodes: list[RedisServer], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    clients = [redis.Redis(host="127.0.0.1", port=node.port) for node in nodes]
    try:
        while True:
            states = [client.cluster("INFO").get("cluster_state") for client in clients]
            if all(state == "ok" for state in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not reach cluster_state:ok: {states}")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def start_sentinel(master_port: int, service: str = "mymaster") -> RedisServer:
    """A Sentinel on loopback that knows the server at `master_port` as `service`'s primary."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not on PATH")
    for _ in range(3):
        sentinel = RedisServer(binary)
        sentinel.config_file = os.path.join(sentinel.directory, "sentinel.conf")
        with open(sentinel.config_file, "w") as config:  # Sentinel rewrites it as it learns
            config.write(f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n")
        try:
            sentinel.start("--sentinel")
            return sentinel
        except RuntimeError:
            sentinel.remove()
    raise RuntimeError("could not start redis-sentinel on a free loopback port")
