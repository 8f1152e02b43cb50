"""How many worker processes the server running this process starts, for apps that must
refuse per-process random keys (a session key or a signing secret made at start-up differs in
every worker, so a request served by another worker fails)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

_SERVERS = ("gunicorn", "uvicorn")


def worker_count(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """gunicorn's ``-w``/``--workers``, uvicorn's ``--workers`` (read from the command line,
    which uvicorn's spawned workers inherit), else ``WEB_CONCURRENCY`` (both servers'
    default); 1 when none says more."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    program = os.path.basename(
        os.path.dirname(argv[0])
        if argv and argv[0].endswith("__main__.py")
        else (argv[0] if argv else "")
    )
    count: str | None = None
    if any(server in program for server in _SERVERS):
        args = list(argv[1:])
        for index, arg in enumerate(args):
            if arg in ("-w", "--workers") and index + 1 < len(args):
                count = args[index + 1]
            elif arg.startswith("--workers="):
                count = arg.partition("=")[2]
            elif arg.startswith("-w") and arg[2:].isdigit():
                count = arg[2:]
    if count is None:
        count = environ.get("WEB_CONCURRENCY")
    try:
        return max(1, int(count)) if count is not None else 1
    except ValueError:
        return 1


# The exit status gunicorn (WORKER_BOOT_ERROR) and uvicorn (STARTUP_FAILURE) read as "this
# worker cannot boot": both then stop instead of starting it again and again.
BOOT_FAILURE = 3


def require_fixed(names: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Stop the process (one line on stderr, exit status 3, which gunicorn and uvicorn take
    as a worker that cannot boot) when ``names`` are missing and several workers would each
    make their own random value for them."""
    environ = os.environ if environ is None else environ
    missing = [name for name in names if not environ.get(name)]
    workers = worker_count(environ=environ)
    if missing and workers > 1:
        print(
            f"embedgate: {' and '.join(missing)} must be set when the server runs {workers} "
            "workers: each worker would make its own random key, and a request served by "
            "another worker would fail. Set it once for all of them, e.g. "
            f'export {missing[0]}="$(embedgate keygen)"',
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(BOOT_FAILURE)
