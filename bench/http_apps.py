"""The apps :mod:`bench.http` serves: ``BENCH_VARIANT`` picks bare, embedgate or the
hand-written peer; ``BENCH_SESSIONS`` names a file of session ids (one a line) the peer
pre-renders snippets for. The user comes from an ``X-User`` header (the app's own
authentication, the same cost in every variant): a user object whose ``embed_principal()``
builds a new Principal on every request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, request

from bench import handwritten
from bench.web import PAGE, SECRET, User, engine, flask_app, starlette_app
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.flask import EmbedGate

VARIANT = os.environ.get("BENCH_VARIANT", "bare")
USERS = [User(n) for n in range(500)]


def _ids() -> list[str]:
    path = os.environ.get("BENCH_SESSIONS")
    return Path(path).read_text().split() if path else []


def _scope_user(scope: Any) -> Any:
    for name, value in scope["headers"]:
        if name == b"x-user":
            return USERS[int(value)]
    return None


def _asgi() -> Any:
    app = starlette_app(PAGE)
    if VARIANT == "embedgate":
        return EmbedgateMiddleware(app, engine(), user_resolver=_scope_user)
    if VARIANT == "hand":
        return handwritten.AsgiInjector(app, handwritten.snippets(_ids(), SECRET))
    return app


def _wsgi() -> Any:
    if VARIANT == "embedgate":  # what the README recommends: the extension
        app = flask_app(PAGE)
        ext = EmbedGate()
        ext.init_app(app, engine=engine())

        @ext.user_loader
        def load_user() -> Any:
            user = request.headers.get("X-User")
            return USERS[int(user)] if user else None

        return app
    if VARIANT == "hand":
        return handwritten.WsgiInjector(flask_app(PAGE), handwritten.snippets(_ids(), SECRET))
    return flask_app(PAGE)


asgi_app = _asgi()
wsgi_app: Flask = _wsgi()
