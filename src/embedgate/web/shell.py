"""What the ASGI and WSGI middleware share: the engine, the web rules and the resolvers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..engine import Engine
from ..settings import Settings, Unpack
from .gate import WebGate

AppT = TypeVar("AppT")
Resolver = Callable[[Any], Any]


class MiddlewareBase(Generic[AppT]):
    """Holds configuration only: every request's state lives in the call."""

    def __init__(
        self,
        app: AppT,
        engine: Engine | None = None,
        *,
        user_resolver: Resolver | None = None,
        session_resolver: Resolver | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        self.app = app
        self.engine = engine if engine is not None else Engine.from_settings(**settings)
        self.gate = WebGate(self.engine)
        self.user_resolver = user_resolver
        self.session_resolver = session_resolver
