"""A fake Toucan AI token endpoint, written from Toucan's "Generate a token via API" page.

``POST /embed/generate-token`` with ``x-api-key`` and ``{"user": {"distinctId", "role",
"attributes"}}`` (all required) answers the token and its lifetime. Tests queue planned
answers (errors, delays, odd bodies) and read back what the fake received.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Plan:
    """One planned answer. ``body=None`` means a normal token answer."""

    status: int = 200
    delay: float = 0.0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)  # when the request arrived

    @property
    def user(self) -> str | None:
        """The ``distinctId`` asked for (one per session in the outage tests)."""
        try:
            return str(self.body["user"]["distinctId"])
        except (TypeError, KeyError):
            return None


class FakeToucan:
    """The app plus what it saw; ``plans`` are used first-in first-out, then plain success.
    ``fault``, while set, answers every request instead (an outage: a hang, a 500...)."""

    def __init__(self, api_key: str, *, lifetime: int = 3600, delay: float = 0.0) -> None:
        self.api_key = api_key
        self.lifetime = lifetime
        self.delay = delay
        self.plans: deque[Plan] = deque()
        self.fault: Plan | None = None
        self.seen: list[Seen] = []
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[Route("/embed/generate-token", self.generate, methods=["POST"])]
        )

    @property
    def calls(self) -> int:
        return len(self.seen)

    def plan(self, *plans: Plan) -> None:
        self.plans.extend(plans)

    async def generate(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.seen.append(Seen(request.url.path, request.url.query, dict(request.headers), body))
        plan = self.fault or (self.plans.popleft() if self.plans else Plan())
        delay = plan.delay or self.delay
        if delay:
            await asyncio.sleep(delay)
        if request.headers.get("x-api-key") != self.api_key:
            return JSONResponse({"error": "Invalid API key"}, status_code=401)
        problem = _check_body(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        if plan.status != 200 or plan.body is not None:
            content = plan.body if isinstance(plan.body, bytes) else json.dumps(plan.body).encode()
            return Response(content, plan.status, plan.headers, media_type="application/json")
        token = f"tc_{next(self._ids)}_{body['user']['distinctId']}"
        return JSONResponse({"token": token, "expiresIn": self.lifetime})


def _check_body(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("user"), dict):
        return "user is required"
    user = body["user"]
    if not isinstance(user.get("distinctId"), str) or not user["distinctId"]:
        return "user.distinctId is required"
    if not isinstance(user.get("role"), str) or not user["role"]:
        return "user.role is required"
    if not isinstance(user.get("attributes"), dict):
        return "user.attributes is required"
    return None
