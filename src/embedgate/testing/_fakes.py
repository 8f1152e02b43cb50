"""In-process fake providers (no network): httpx transports that answer as Toucan's token
API and Superset's security API do, and remember what they issued to whom.

``fake.install(app)`` points the app's remote minter at the fake; ``fake.settings()`` are
the ``EMBEDGATE_*`` settings that select the provider (set them before the app is built).
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections import deque
from typing import Any, Final

import httpx
import jwt

from ..clock import SYSTEM_CLOCK
from ..engine import Engine
from ..issuers.remote import RemoteMinter
from ._apps import find_engine

GUEST_SECRET: Final = "fake-superset-guest-token-secret-0123456789"


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


class _FakeProvider:
    """What both fakes share: planned failures, the transport, installing."""

    provider = ""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.requests: list[httpx.Request] = []
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        self.transport = httpx.MockTransport(self._handle)

    def fail(self, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` (an outage, a refusal)."""
        with self._lock:
            self._failures.extend([status] * times)

    def install(self, target: Any = None) -> Engine:
        """Send the minting requests of ``target``'s engine (an app, a middleware, a test
        client, an Engine; ``None`` for Django's) to this fake; returns the engine."""
        engine = find_engine(target)
        issuer = engine.service.issuer
        if not isinstance(issuer, RemoteMinter) or issuer.name != self.provider:
            raise ValueError(
                f"the app's provider is {issuer.name!r}, not {self.provider!r}: "
                "configure it with this fake's settings() first"
            )
        issuer.use_transport(self.transport, self.transport)
        return engine

    def _handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            status = self._failures.popleft() if self._failures else None
        if status is not None:
            return _json(status, {"message": "planned failure"})
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError


class FakeToucan(_FakeProvider):
    """Toucan's ``POST /embed/generate-token`` (``x-api-key``, ``{"user": {...}}``):
    opaque tokens, each remembered with the user it was minted for."""

    provider = "toucan"

    def __init__(
        self,
        api_key: str = "fake-toucan-api-key",
        *,
        lifetime: int = 3600,
        base_url: str = "https://toucan.fake",
    ) -> None:
        super().__init__(base_url)
        self.api_key = api_key
        self.lifetime = lifetime
        self.issued: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def settings(self) -> dict[str, str]:
        """The ``EMBEDGATE_*`` settings that select this fake."""
        return {
            "EMBEDGATE_PROVIDER": "toucan",
            "EMBEDGATE_PROVIDER_URL": self.base_url,
            "EMBEDGATE_API_KEY": self.api_key,
        }

    def claims_of(self, token: str) -> dict[str, Any] | None:
        """What the token stands for, as claims: ``sub``, ``role``, ``attributes``."""
        user = self.issued.get(token)
        if user is None:
            return None
        attributes = dict(user.get("attributes") or {})
        return {
            "sub": user.get("distinctId"),
            "role": user.get("role"),
            "roles": [user.get("role")],
            "tenant": attributes.get("tenant"),
            "attributes": attributes,
        }

    def answer(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != "/embed/generate-token":
            return _json(404, {"error": "not found"})
        if request.headers.get("x-api-key") != self.api_key:
            return _json(401, {"error": "Invalid API key"})
        try:
            body = json.loads(request.content)
        except ValueError:
            return _json(400, {"error": "invalid JSON"})
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, dict) or not user.get("distinctId") or not user.get("role"):
            return _json(400, {"error": "user.distinctId and user.role are required"})
        if not isinstance(user.get("attributes"), dict):
            return _json(400, {"error": "user.attributes is required"})
        token = f"tc_fake_{next(self._ids)}_{secrets.token_hex(8)}"
        with self._lock:
            self.issued[token] = user
        return _json(200, {"token": token, "expiresIn": self.lifetime})


class FakeSuperset(_FakeProvider):
    """Superset's security API: service-account login, CSRF token with its session
    cookie, and guest tokens signed with ``guest_secret`` as Superset signs them."""

    provider = "superset"

    def __init__(
        self,
        *,
        username: str = "embedder",
        password: str = "fake-superset-password",  # noqa: S107 - the fake's own
        dashboards: tuple[str, ...] = ("fake-dashboard",),
        guest_secret: str = GUEST_SECRET,
        audience: str = "superset",
        guest_lifetime: int = 300,
        base_url: str = "https://superset.fake",
    ) -> None:
        super().__init__(base_url)
        self.username = username
        self.password = password
        self.dashboards = dashboards
        self.guest_secret = guest_secret
        self.audience = audience
        self.guest_lifetime = guest_lifetime
        self.guest_bodies: list[dict[str, Any]] = []
        self._access: set[str] = set()
        self._sessions: dict[str, str] = {}

    def settings(self) -> dict[str, str]:
        """The ``EMBEDGATE_*`` settings that select this fake (the API mode)."""
        return {
            "EMBEDGATE_PROVIDER": "superset",
            "EMBEDGATE_PROVIDER_URL": self.base_url,
            "EMBEDGATE_SUPERSET_USERNAME": self.username,
            "EMBEDGATE_SUPERSET_PASSWORD": self.password,
            "EMBEDGATE_SUPERSET_DASHBOARDS": ",".join(self.dashboards),
        }

    def claims_of(self, token: str) -> dict[str, Any] | None:
        """The guest token's claims, with ``sub`` set to its ``user.username``."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.guest_secret,
                algorithms=["HS256"],
                audience=self.audience,
                options={"verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        claims["sub"] = (claims.get("user") or {}).get("username")
        return claims

    def answer(self, request: httpx.Request) -> httpx.Response:
        route = (request.method, request.url.path)
        if route == ("POST", "/api/v1/security/login"):
            return self._login(request)
        if route == ("GET", "/api/v1/security/csrf_token/"):
            return self._csrf(request)
        if route == ("POST", "/api/v1/security/guest_token/"):
            return self._guest(request)
        return _json(404, {"message": "Not found"})

    def _login(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        if body.get("username") != self.username or body.get("password") != self.password:
            return _json(401, {"message": "Not authorized"})
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._access.add(access)
        return _json(200, {"access_token": access, "refresh_token": secrets.token_hex(8)})

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[len("Bearer ") :] in self._access

    def _csrf(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return _json(401, {"msg": "Token has expired"})
        session, csrf = secrets.token_hex(16), secrets.token_hex(20)
        with self._lock:
            self._sessions[session] = csrf
        cookie = f"session={session}; HttpOnly; Path=/; SameSite=Lax"
        return _json(200, {"result": csrf}, {"set-cookie": cookie})

    def _guest(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return _json(401, {"msg": "Token has expired"})
        cookies = dict(
            part.strip().split("=", 1)
            for part in request.headers.get("cookie", "").split(";")
            if "=" in part
        )
        expected = self._sessions.get(cookies.get("session", ""))
        if expected is None or request.headers.get("x-csrftoken") != expected:
            return _json(400, {"message": "400 Bad Request: The CSRF token is missing."})
        body = json.loads(request.content or b"{}")
        if not isinstance(body.get("user"), dict) or not body.get("resources"):
            return _json(400, {"message": "user and resources are required"})
        self.guest_bodies.append(body)
        now = SYSTEM_CLOCK.now()
        claims = {
            "user": body["user"],
            "resources": body["resources"],
            "rls_rules": body.get("rls", []),
            "iat": now,
            "exp": now + self.guest_lifetime,
            "aud": self.audience,
            "type": "guest",
        }
        return _json(200, {"token": jwt.encode(claims, self.guest_secret, algorithm="HS256")})
