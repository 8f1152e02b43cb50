"""The Django adapter's process-wide state (one engine per settings) and its translation
between Django requests/responses and the sans-I/O web rules."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ...config import PREFIX, Config
from ...engine import Engine
from ...errors import ConfigurationError
from ...web.gate import WebGate
from ...web.headers import Headers
from ...web.templating import PageHelpers
from ...web.values import WebRequest, WebResponse

REQUEST_ATTRIBUTE = "embedgate"  # request.embedgate: the request's PageHelpers


@dataclass(frozen=True)
class DjangoState:
    engine: Engine
    gate: WebGate


class _Runtime:
    """Holds the one state of the process (a module-level slot without ``global``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: DjangoState | None = None


_runtime = _Runtime()


def settings_mapping(raw: Any) -> dict[str, Any]:
    """``settings.EMBEDGATE`` as ``EMBEDGATE_*`` keys: ``"audience"``, ``"AUDIENCE"`` and
    ``"EMBEDGATE_AUDIENCE"`` all name the same setting."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError("EMBEDGATE", f"expected a dict, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise ConfigurationError("EMBEDGATE", "keys must be setting names")
        name = key.upper()
        out[name if name.startswith(PREFIX) else PREFIX + name] = value
    return out


def build_state() -> DjangoState:
    """A new engine from ``settings.EMBEDGATE`` (then the environment)."""
    mapping = settings_mapping(getattr(settings, "EMBEDGATE", None))
    engine = Engine(
        Config.load(mapping), config_source=mapping, production=not bool(settings.DEBUG)
    )
    return DjangoState(engine, WebGate(engine))


def get_state() -> DjangoState:
    """The process's engine and gate, built on first use."""
    state = _runtime.state
    if state is None:
        with _runtime.lock:
            if _runtime.state is None:
                _runtime.state = build_state()
            state = _runtime.state
    return state


def reset() -> None:
    """Forget the engine (settings changed); the next request builds a new one."""
    with _runtime.lock:
        _runtime.state = None


def web_request(request: HttpRequest) -> WebRequest:
    headers = Headers(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in request.headers.items()
    )
    return WebRequest(
        method=request.method or "GET",
        path=request.path_info or "/",
        scheme=request.scheme or "http",
        host=request.get_host(),
        headers=headers,
        root=str(request.META.get("SCRIPT_NAME", "")).rstrip("/"),
    )


def response_headers(response: HttpResponse) -> Headers:
    """The response's headers (cookies are kept apart by Django and left out)."""
    return Headers(
        (name.lower().encode("latin-1"), str(value).encode("latin-1"))
        for name, value in response.items()
    )


def apply_headers(response: HttpResponse, headers: Headers) -> None:
    """Make ``headers`` the response's headers; ``Set-Cookie`` goes to ``response.cookies``."""
    for name in list(response.headers):
        del response.headers[name]
    for name, value in headers:
        if name == b"set-cookie":
            response.cookies.load(value.decode("latin-1"))
        else:
            response.headers[name.decode("latin-1")] = value.decode("latin-1")


def to_django(response: WebResponse) -> HttpResponse:
    out = HttpResponse(response.body, status=response.status)
    apply_headers(out, response.headers)
    return out


def page_of(request: Any) -> PageHelpers | None:
    page = getattr(request, REQUEST_ATTRIBUTE, None)
    return page if isinstance(page, PageHelpers) else None


def purge_on_logout(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``user_logged_out``: purge the session's tokens; nothing more is injected after."""
    if request is None:
        return
    state = get_state()
    page = page_of(request)
    decided = page.decision if page is not None else None
    if page is not None:
        page.set_principal(None)
    state.gate.logout(request.headers.get("Cookie"), decided.session_id if decided else None)
