"""The demo analytics provider: a Starlette app that `embedgate demo` mounts next to a host.

Routes, relative to wherever the app is mounted:

- ``GET /``: a page describing the provider;
- ``POST /embed/generate-token``: Toucan-style minting (``x-api-key`` header, JSON body
  ``{"user": {"distinctId", "role", "attributes"}}``) of an opaque provider token;
- ``GET /api/dashboard/{id}``: dashboard data for ``Authorization: Bearer <token>``, a
  host-signed JWT or a provider-minted token, filtered by row-level security;
- ``GET /static/demo-dashboard.js`` and ``.css``: the ``<demo-dashboard>`` web component.
"""

from __future__ import annotations

import hmac
import html
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigurationError, VerificationError
from ..keys import KeySet
from ..secret import Secret
from .auth import TokenVerifier, bearer_token
from .dashboards import DASHBOARDS, DEFAULT_LIMIT, MAX_LIMIT, dashboard_data
from .dataset import SalesDatabase
from .minting import BodyError, ProviderTokens, parse_user
from .rls import row_filter

MAX_BODY_BYTES: Final = 16 * 1024
_NO_STORE: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_STATIC: Final = {
    "demo-dashboard.js": "text/javascript; charset=utf-8",
    "demo-dashboard.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class ProviderState:
    """Everything the routes share; kept on ``app.state.demo_provider``."""

    api_key: Secret
    minted: ProviderTokens
    verifier: TokenVerifier
    db: SalesDatabase
    clock: Clock
    static: dict[str, bytes]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={**_NO_STORE, **(headers or {})})


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = None
    if status == 401 and code not in ("missing_api_key", "invalid_api_key"):
        # RFC 6750: tell the client which Bearer problem it has.
        headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{code}"'}
    return _json({"error": code, "message": message, **extra}, status, headers)


def _state(request: Request) -> ProviderState:
    state: ProviderState = request.app.state.demo_provider
    return state


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def generate_token(request: Request) -> Response:
    """Mint a provider token for the body's user, for callers holding the API key."""
    state = _state(request)
    given = request.headers.get("x-api-key")
    if not given:
        return _error(401, "missing_api_key", "the x-api-key header is required")
    if not hmac.compare_digest(given.encode("latin-1"), state.api_key.reveal_bytes()):
        return _error(401, "invalid_api_key", "the x-api-key header does not match")
    raw = await _read_body(request)
    if raw is None:
        return _error(413, "body_too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "invalid_json", "the body is not valid UTF-8 JSON")
    try:
        user = parse_user(body)
    except BodyError as exc:
        return _error(422, "invalid_body", str(exc), field=exc.field)
    return _json(state.minted.mint(user).to_json())


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return None
    return int(raw)


async def dashboard(request: Request) -> Response:
    """A dashboard's data, restricted to the rows the token's identity may see."""
    state = _state(request)
    try:
        identity = state.verifier.identify(bearer_token(request.headers.get("authorization")))
    except VerificationError as exc:
        return _error(401, exc.code, str(exc))
    dashboard_id = request.path_params["dashboard_id"]
    board = DASHBOARDS.get(dashboard_id)
    if board is None:
        return _error(404, "unknown_dashboard", "no such dashboard", known=sorted(DASHBOARDS))
    if identity.resource is not None and identity.resource != board.id:
        return _error(403, "wrong_resource", "the token is for another dashboard")
    limit = _limit(request)
    if limit is None:
        return _error(400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    # An in-memory query over a few hundred rows takes well under a millisecond: no thread.
    data = dashboard_data(state.db, board, row_filter(identity), limit)
    now = state.clock.now()
    return _json({**data, "identity": identity.to_json(now), "server_time": int(now)})


async def static_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        return _error(404, "not_found", "no such file")
    return Response(
        _state(request).static[name],
        media_type=_STATIC[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embedgate demo provider</title>
<link rel="stylesheet" href="{root}/static/demo-dashboard.css"></head>
<body class="demo-provider">
<h1>embedgate demo analytics provider</h1>
<p>A stand-in for an embedded-analytics provider, serving a sales dataset with row-level
security. It trusts tokens signed by its host (issuer <code>{issuer}</code>, audience
<code>{audience}</code>) and tokens it mints itself for holders of its API key.</p>
<ul>
<li><code>POST {root}/embed/generate-token</code>: header <code>x-api-key</code>, body
<code>{{"user": {{"distinctId": "...", "role": "...", "attributes": {{...}}}}}}</code></li>
<li><code>GET {root}/api/dashboard/{{id}}</code> with <code>Authorization: Bearer ...</code>;
dashboards: {dashboards}</li>
<li><code>&lt;script src="{root}/static/demo-dashboard.js"&gt;</code>, then
<code>&lt;demo-dashboard auth-token="..." dashboard="sales"&gt;</code></li>
</ul>
</body></html>
"""


async def index(request: Request) -> Response:
    verifier = _state(request).verifier
    page = _PAGE.format(
        root=html.escape(request.scope.get("root_path", "").rstrip("/")),
        issuer=html.escape(verifier.issuer),
        audience=html.escape(verifier.audience),
        dashboards=", ".join(f"<code>{html.escape(d)}</code>" for d in sorted(DASHBOARDS)),
    )
    return HTMLResponse(page, headers={"X-Content-Type-Options": "nosniff"})


def _load_static() -> dict[str, bytes]:
    folder = resources.files("embedgate.demo").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in _STATIC}


def create_provider_app(
    *,
    keys: KeySet,
    audience: str,
    issuer: str,
    api_key: Secret,
    token_ttl: int = 3600,
    clock: Clock = SYSTEM_CLOCK,
    leeway: float = 10.0,
) -> Starlette:
    """The demo provider as an ASGI app.

    ``keys``, ``audience`` and ``issuer`` describe the host-signed JWTs it trusts (an HMAC
    secret or public keys); ``api_key`` guards generate-token; ``token_ttl`` is the lifetime
    of the tokens it mints, with a signing key generated here (so tokens do not survive a
    restart and are not shared between processes).
    """
    if len(api_key) == 0:
        raise ConfigurationError("api_key", "must not be empty")
    if token_ttl <= 0:
        raise ConfigurationError(
            "token_ttl", f"must be a positive number of seconds, not {token_ttl}"
        )
    if not audience or not issuer:
        raise ConfigurationError("audience" if not audience else "issuer", "must not be empty")
    minted = ProviderTokens(ttl=token_ttl, clock=clock)
    state = ProviderState(
        api_key=api_key,
        minted=minted,
        verifier=TokenVerifier(
            keys=keys, audience=audience, issuer=issuer, minted=minted, clock=clock, leeway=leeway
        ),
        db=SalesDatabase(),
        clock=clock,
        static=_load_static(),
    )
    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/embed/generate-token", generate_token, methods=["POST"]),
            Route("/api/dashboard/{dashboard_id}", dashboard, methods=["GET"]),
            Route("/static/{name}", static_file, methods=["GET"]),
        ]
    )
    app.state.demo_provider = state
    return app
