"""A real redis-server on a free 127.0.0.1 port, which tests can stop and restart."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis

from tests.support.net import free_port, wait_for_port


class RedisServer:
    """One redis-server process: no persistence, loopback only, restartable on its port."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="embedgate-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """The same server over its Unix socket."""
        return f"unix://{self.socket_path}?db=0"

    @property
    def socket_path(self) -> str:
        return os.path.join(self._dir.name, "redis.sock")

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("redis-server is already running")
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--unixsocket", self.socket_path,
            "--unixsocketperm", "700",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=20.0, process=self.process)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM; it saves nothing) and wait until it is gone."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def restart(self) -> None:
        """Start again on the same port (with an empty data set)."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        """A plain client for inspecting the server (close it after use)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def redis_server(binary: str) -> Iterator[RedisServer]:
    """A running :class:`RedisServer`, stopped and cleaned up afterwards."""
    with RedisServer(binary) as server:
        yield server
