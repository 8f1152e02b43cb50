"""Real Redis topologies on 127.0.0.1: a Cluster (three masters, three replicas) and a
Sentinel set-up (one master, one replica, three sentinels), started from redis-server."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis
from redis.cluster import RedisCluster

from tests.support.net import free_port, wait_for_port


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    import random

    for _ in range(200):
        port = random.randint(20000, 40000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class _Process:
    """One redis-server (or sentinel) process with its own directory and config file."""

    def __init__(self, binary: str, port: int, lines: Sequence[str], root: str) -> None:
        self.binary = binary
        self.port = port
        self.dir = os.path.join(root, str(port))
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "redis.conf")
        base = [
            f"port {port}",
            "bind 127.0.0.1",
            "protected-mode no",
            'save ""',
            "appendonly no",
            f"dir {self.dir}",
            "loglevel warning",
        ]
        with open(self.conf, "w", encoding="utf-8") as out:
            out.write("\n".join([*base, *lines]) + "\n")
        self.sentinel = any(line.startswith("sentinel ") for line in lines)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [self.binary, self.conf] + (["--sentinel"] if self.sentinel else [])
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=20.0, process=self.process)

    def kill(self) -> None:
        """Stop at once (SIGKILL): a crashed master, as failover tests need."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    raw = client.execute_command("CLUSTER INFO")
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _wait(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


class LocalCluster:
    """Six redis-server nodes in cluster mode; the first three start as masters."""

    def __init__(self, binary: str, cli: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="embedgate-cluster-")
        self.cli = cli
        self.nodes = [
            _Process(
                binary,
                cluster_port(),
                [
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    "cluster-node-timeout 1000",
                    "cluster-replica-validity-factor 0",
                    "cluster-allow-reads-when-down no",
                ],
                self._tmp.name,
            )
            for _ in range(6)
        ]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        _wait(self._healthy, "the cluster to be ok")

    def _healthy(self) -> bool:
        with self.nodes[0].client() as client:
            info = _cluster_info(client)
        return info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == "16384"

    def client(self) -> RedisCluster:
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, socket_timeout=2.0)

    def master_of(self, key: str) -> _Process:
        """The node currently serving ``key``'s slot as master."""
        with self.client() as cluster:
            node = cluster.get_node_from_key(key)
        return next(n for n in self.nodes if n.port == node.port)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        _wait(self._healthy_from_any, "the cluster to recover", timeout)

    def wait_failover(self, killed: _Process, timeout: float = 30.0) -> None:
        """Until a live node sees ``killed`` as failed and every slot served again."""

        def done() -> bool:
            live = next(n for n in self.nodes if n.process is not None)
            with live.client() as client:
                nodes = client.execute_command("CLUSTER NODES")
                info = _cluster_info(client)
            entry = nodes.get(f"127.0.0.1:{killed.port}", {}) if isinstance(nodes, dict) else {}
            failed = "fail" in str(entry.get("flags", "")).split(",")
            return failed and not entry.get("slots") and info.get("cluster_state") == "ok"

        _wait(done, "the cluster failover", timeout)

    def _healthy_from_any(self) -> bool:
        for node in self.nodes:
            if node.process is None:
                continue
            with node.client() as client:
                return _cluster_info(client).get("cluster_state") == "ok"
        return False

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        self._tmp.cleanup()


class LocalSentinel:
    """A master, one replica and three sentinels watching ``name``."""

    def __init__(self, binary: str, name: str = "embedgate") -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="embedgate-sentinel-")
        self.name = name
        self.master = _Process(binary, free_port(), [], self._tmp.name)
        self.replica = _Process(
            binary, free_port(), [f"replicaof 127.0.0.1 {self.master.port}"], self._tmp.name
        )
        self.sentinels = [
            _Process(
                binary,
                free_port(),
                [
                    f"sentinel monitor {name} 127.0.0.1 {self.master.port} 2",
                    f"sentinel down-after-milliseconds {name} 1000",
                    f"sentinel failover-timeout {name} 5000",
                    f"sentinel parallel-syncs {name} 1",
                ],
                self._tmp.name,
            )
            for _ in range(3)
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.name}/0"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        _wait(self._replica_synced, "the replica to sync")
        for sentinel in self.sentinels:
            sentinel.start()
        _wait(self._sentinels_agree, "the sentinels to see the master and its replica")

    def _replica_synced(self) -> bool:
        with self.replica.client() as client:
            return client.info("replication").get("master_link_status") == "up"

    def _sentinels_agree(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.execute_command("SENTINEL", "MASTER", self.name)
            fields = (
                dict(zip(state[::2], state[1::2], strict=False))
                if isinstance(state, list)
                else state
            )
            replicas = int(fields.get(b"num-slaves", fields.get("num-slaves", 0)))
            sentinels = int(
                fields.get(b"num-other-sentinels", fields.get("num-other-sentinels", 0))
            )
            if replicas < 1 or sentinels < 2:
                return False
        return True

    def current_master_port(self) -> int:
        for sentinel in self.sentinels:
            if sentinel.process is None:
                continue
            with sentinel.client() as client:
                _host, port = client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name
                )
            return int(port)
        raise RuntimeError("no sentinel is running")

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> None:
        _wait(lambda: self.current_master_port() != old_port, "the failover", timeout)

    def close(self) -> None:
        for process in [*self.sentinels, self.replica, self.master]:
            process.stop()
        self._tmp.cleanup()


@contextmanager
def local_cluster(binary: str, cli: str) -> Iterator[LocalCluster]:
    cluster = LocalCluster(binary, cli)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@contextmanager
def local_sentinel(binary: str) -> Iterator[LocalSentinel]:
    sentinel = LocalSentinel(binary)
    try:
        sentinel.start()
        yield sentinel
    finally:
        sentinel.close()
