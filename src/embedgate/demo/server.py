"""``embedgate demo``: bind the port, print how to use the demo, serve it with uvicorn."""

from __future__ import annotations

import errno
import logging
import socket
import sys
from typing import TextIO

from .models import Timing
from .users import PASSWORD, USERS

EXIT_OK, EXIT_ERROR = 0, 1
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; raises OSError when it cannot have one.

    Binding here, before uvicorn starts, turns a taken port into one clear message, and
    handing the socket to uvicorn leaves no window for another process to take it.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restart reuse a port whose old connections linger in TIME_WAIT; on
        # Linux it never allows two listeners on one port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def bind_problem(host: str, port: int, error: OSError) -> str:
    """The one line printed when the port cannot be had."""
    if error.errno == errno.EADDRINUSE:
        return (
            f"embedgate demo: port {port} on {host} is already in use "
            "(is the demo already running?); stop that program or choose another port "
            "with --port"
        )
    reason = error.strerror or type(error).__name__
    return f"embedgate demo: cannot listen on {host} port {port} ({reason})"


def self_url(host: str, port: int) -> str:
    """How the server reaches itself (and what to open in a browser)."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def banner(url: str, timing: Timing, out: TextIO) -> None:
    lines = [
        f"embedgate demo running on {url}/  (Ctrl+C stops it)",
        f'  Log in as one of these users, password "{PASSWORD}":',
        *(f"    {user.id:<7} {user.describe()}" for user in USERS.values()),
        "  Switch between the three authentication models in the page header:",
        f"    {url}/token/     token-based: the host signs EdDSA JWTs, the provider verifies",
        f"    {url}/sandbox/   API-key sandbox: the provider mints tokens (DEVELOPMENT ONLY)",
        f"    {url}/sso/       SSO: sign in at the demo identity provider ({url}/idp/)",
        f"  Embed tokens live {timing.ttl} s and are refreshed about "
        f"{timing.refresh_margin} s before they expire.",
        "  The api_key WARNING logged at start-up is expected: the /sandbox/ model runs",
        "  embedgate in api_key mode (tokens minted straight from the provider's API key),",
        "  which is for development only and refused when EMBEDGATE_ENV=production.",
    ]
    print("\n".join(lines), file=out, flush=True)


def run(host: str = "127.0.0.1", port: int = 8000, ttl: int = 60) -> int:
    """Serve the demo until interrupted; 1 when the port cannot be had."""
    timing = Timing.for_ttl(ttl)  # a bad --ttl is refused before anything starts
    try:
        sock = bind(host, port)
    except OSError as error:
        print(bind_problem(host, port, error), file=sys.stderr, flush=True)
        return EXIT_ERROR
    import uvicorn

    from .host import create_demo_app

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        url = self_url(host, int(sock.getsockname()[1]))
        app = create_demo_app(url, ttl)
        banner(url, timing, sys.stdout)
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn has shut down gracefully, then re-raises the Ctrl+C it caught.
        print("embedgate demo: stopped", file=sys.stderr)
    finally:
        sock.close()
    return EXIT_OK
