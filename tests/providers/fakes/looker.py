"""A fake Looker signed-embed login, written from Looker's "Signed embedding" docs: it
recomputes the HMAC-SHA1 over the documented fields of the URL it receives, accepts each
nonce once, and only within five minutes of the URL's ``time``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

SIGNED = (
    "nonce",
    "time",
    "session_length",
    "external_user_id",
    "permissions",
    "models",
    "group_ids",
    "external_group_id",
    "user_attributes",
    "access_filters",
)
OPTIONAL = ("group_ids", "external_group_id", "user_attributes")


class FakeLooker:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.used_nonces: set[str] = set()
        self.sessions: list[dict[str, object]] = []
        self.app = Starlette(routes=[Route("/login/embed/{rest:path}", self.login)])

    async def login(self, request: Request) -> Response:
        raw_path = request.scope["raw_path"].decode("ascii")
        params = dict(parse_qsl(request.scope["query_string"].decode("ascii")))
        fields = [request.headers["host"], raw_path]
        for name in SIGNED:
            if name in params:
                fields.append(params[name])
            elif name not in OPTIONAL:
                return HTMLResponse(f"missing {name}", status_code=400)
        expected = base64.b64encode(
            hmac.new(self.secret.encode(), "\n".join(fields).encode("utf-8"), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(expected, params.get("signature", "")):
            return HTMLResponse("signature mismatch", status_code=403)
        if params["nonce"] in self.used_nonces:
            return HTMLResponse("nonce already used", status_code=403)
        if abs(time.time() - json.loads(params["time"])) > 300:
            return HTMLResponse("stale time", status_code=403)
        self.used_nonces.add(params["nonce"])
        self.sessions.append({k: json.loads(v) for k, v in params.items() if k != "signature"})
        return HTMLResponse("<div>looker embed</div>")
