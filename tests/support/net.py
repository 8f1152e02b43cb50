"""Loopback helpers: free ports, waiting for a server, running one as a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import IO


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until 127.0.0.1:port accepts connections (or fail, with the process's output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            out = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{out[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@contextlib.contextmanager
def run_server(
    argv: Sequence[str],
    port: int,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    log: IO[bytes] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait for its port, and stop it (and its children) after.

    Its output goes to ``log`` when given (a file the caller reads, never full), else to
    a pipe (``process.stdout``)."""
    full_env = {**os.environ, **(env or {})}
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=timeout, process=process)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


PYTHON = sys.executable
