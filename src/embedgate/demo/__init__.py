"""The built-in demo: ``embedgate demo`` serves a host app (:mod:`.host`) with three
authentication models, a demo identity provider (:mod:`.idp`) and the demo analytics
provider (:mod:`.provider`) from one process.

The provider modules import without the demo's web server; :func:`run_demo` needs the
``[demo]`` extra (FastAPI, Jinja2, uvicorn...).
"""

from __future__ import annotations


def run_demo(*, host: str = "127.0.0.1", port: int = 8000, ttl: int = 60) -> int:
    """Serve the demo on ``host:port`` until interrupted; the process exit code (1 when the
    port is taken). ``ttl`` is the embed tokens' lifetime in seconds."""
    from .server import run

    return run(host=host, port=port, ttl=ttl)


__all__ = ["run_demo"]
