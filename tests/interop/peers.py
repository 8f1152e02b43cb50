"""Helpers for the interop suite: the pinned npm packages, node scripts, servers on
127.0.0.1 whose output goes to a log file (a full pipe would stall a chatty server)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.support.binaries import require_binary
from tests.support.net import wait_for_port

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"


def node() -> str:
    """The node binary, once the pinned packages are installed (``make interop`` does)."""
    path = require_binary("node")
    if not (NODE_MODULES / "jose").is_dir() or not (NODE_MODULES / "oidc-provider").is_dir():
        pytest.fail("tests/interop/node_modules is missing: run `make interop`", pytrace=False)
    return path


def run_node(script: str, payload: Any, *, timeout: float = 60.0) -> Any:
    """Run ``tests/interop/<script>`` with ``payload`` as JSON on stdin; its JSON output."""
    done = subprocess.run(
        [node(), str(HERE / script)],
        input=json.dumps(payload).encode(),
        capture_output=True,
        cwd=HERE,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    return json.loads(done.stdout)


@contextlib.contextmanager
def serve_wsgi(app: Any, port: int) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1:``port`` in a thread; yields its base URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def server_process(
    argv: Sequence[str],
    port: int,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait for its port, stop it (and its children) afterwards. Its output
    goes to ``log``, shown when it fails to start."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            try:
                wait_for_port(port, timeout=timeout, process=process)
            except (RuntimeError, TimeoutError) as exc:
                tail = log.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"{argv[0]} did not start: {exc}\n{tail}") from None
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
