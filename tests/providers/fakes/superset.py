"""A fake Apache Superset security API, written from Superset's REST API docs and its
security manager: service-account login, CSRF token (with its session cookie), and guest
tokens signed the way ``create_guest_access_token`` signs them."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ACCESS_KEY = "fake-superset-flask-secret-key-0123456789"


class FakeSuperset:
    def __init__(
        self,
        *,
        username: str,
        password: str,
        guest_secret: str,
        audience: str = "superset",
        access_lifetime: int = 900,
        guest_lifetime: int = 300,
    ) -> None:
        self.username = username
        self.password = password
        self.guest_secret = guest_secret
        self.audience = audience
        self.access_lifetime = access_lifetime
        self.guest_lifetime = guest_lifetime
        self.logins = 0
        self.csrf_calls = 0
        self.guest_calls = 0
        self.guest_bodies: list[Any] = []
        self._revoked: set[str] = set()
        self._issued: set[str] = set()
        self._sessions: dict[str, str] = {}
        self.app = Starlette(
            routes=[
                Route("/api/v1/security/login", self.login, methods=["POST"]),
                Route("/api/v1/security/csrf_token/", self.csrf_token, methods=["GET"]),
                Route("/api/v1/security/guest_token/", self.guest_token, methods=["POST"]),
            ]
        )

    def revoke(self) -> None:
        """Make every access token issued so far fail (as after a restart with a new key)."""
        self._revoked |= self._issued

    async def login(self, request: Request) -> Response:
        self.logins += 1
        body = await request.json()
        if (
            body.get("username") != self.username
            or body.get("password") != self.password
            or body.get("provider") != "db"
        ):
            return JSONResponse({"message": "Not authorized"}, status_code=401)
        now = int(time.time())
        claims = {
            "sub": "1",
            "type": "access",
            "fresh": True,
            "iat": now,
            "exp": now + self.access_lifetime,
            "jti": secrets.token_hex(8),
        }
        access = jwt.encode(claims, ACCESS_KEY, algorithm="HS256")
        self._issued.add(access)
        return JSONResponse({"access_token": access, "refresh_token": secrets.token_hex(16)})

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :]
        if token in self._revoked:
            return False
        try:
            jwt.decode(token, ACCESS_KEY, algorithms=["HS256"])
        except jwt.PyJWTError:
            return False
        return True

    async def csrf_token(self, request: Request) -> Response:
        self.csrf_calls += 1
        if not self._authorized(request):
            return JSONResponse({"msg": "Token has expired"}, status_code=401)
        session = secrets.token_hex(16)
        csrf = secrets.token_hex(20)
        self._sessions[session] = csrf
        response = JSONResponse({"result": csrf})
        response.set_cookie("session", session, httponly=True, samesite="lax")
        return response

    async def guest_token(self, request: Request) -> Response:
        self.guest_calls += 1
        if not self._authorized(request):
            return JSONResponse({"msg": "Token has expired"}, status_code=401)
        session = request.cookies.get("session")
        expected = self._sessions.get(session or "")
        if expected is None or request.headers.get("x-csrftoken") != expected:
            return JSONResponse({"message": "400 Bad Request: The CSRF token is missing."}, 400)
        if not request.headers.get("referer"):
            return JSONResponse(
                {"message": "400 Bad Request: The referrer header is missing."}, 400
            )
        body = await request.json()
        self.guest_bodies.append(body)
        problem = _check(body)
        if problem:
            return JSONResponse({"message": problem}, status_code=400)
        now = time.time()
        claims = {
            "user": body["user"],
            "resources": body["resources"],
            "rls_rules": body["rls"],
            "iat": now,
            "exp": now + self.guest_lifetime,
            "aud": self.audience,
            "type": "guest",
        }
        return JSONResponse({"token": jwt.encode(claims, self.guest_secret, algorithm="HS256")})


def _check(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("user"), dict):
        return "user: Missing data for required field."
    if not isinstance(body.get("resources"), list) or not body["resources"]:
        return "resources: Missing data for required field."
    for resource in body["resources"]:
        if resource.get("type") != "dashboard" or not isinstance(resource.get("id"), str):
            return "resources: invalid resource"
    if not isinstance(body.get("rls"), list):
        return "rls: Missing data for required field."
    for rule in body["rls"]:
        if not isinstance(rule.get("clause"), str) or set(rule) - {"clause", "dataset"}:
            return "rls: invalid rule"
    return None
