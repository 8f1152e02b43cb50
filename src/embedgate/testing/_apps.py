"""Finding the :class:`~embedgate.Engine` behind an app, a middleware or a test client."""

from __future__ import annotations

from typing import Any

from ..engine import Engine

_DEPTH = 32  # wrappers followed before giving up


def find_engine(target: Any = None) -> Engine:
    """The engine serving ``target``: an :class:`~embedgate.Engine`, an embedgate
    middleware or Flask/Quart extension, a Flask or Quart app, a Litestar app (its plugin),
    a Starlette/FastAPI app (its middleware stack is built if it was not yet), a test client
    of either, or ``None`` for Django's (from ``settings.EMBEDGATE``)."""
    if target is None:
        from ..integrations.django.runtime import get_state

        return get_state().engine
    seen = target
    for _ in range(_DEPTH):
        if isinstance(seen, Engine):
            return seen
        engine = getattr(seen, "engine", None)
        if isinstance(engine, Engine):
            return engine
        extensions = getattr(seen, "extensions", None)  # Flask
        if isinstance(extensions, dict) and "embedgate" in extensions:
            return find_engine(extensions["embedgate"])
        for plugin in _plugins(seen):  # Litestar
            if isinstance(getattr(plugin, "engine", None), Engine):
                return find_engine(plugin)
        if hasattr(seen, "build_middleware_stack"):  # Starlette, FastAPI
            if getattr(seen, "middleware_stack", None) is None:
                seen.middleware_stack = seen.build_middleware_stack()
            seen = seen.middleware_stack
            continue
        # Test clients (Starlette's .app, Werkzeug's .application) and middleware (.app).
        inner = getattr(seen, "application", None) or getattr(seen, "app", None)
        if inner is None or inner is seen:
            break
        seen = inner
    raise LookupError(f"no embedgate engine found behind {type(target).__name__}")


def _plugins(app: Any) -> list[Any]:
    """A Litestar app's plugins (none for anything else)."""
    registry = getattr(app, "plugins", None)
    if registry is None or not hasattr(registry, "init"):
        return []
    return list(registry.init)
