"""Fake servers for Power BI (Azure AD + GenerateToken), Preset, ThoughtSpot, Sigma and
QuickSight, each validating requests the way the provider's documentation says the real one
does (see the module docstrings under ``embedgate.providers``). Tests read back what each
fake received and may queue failures (``fail``: status codes answered first, in order).
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

GUID = "0123abcd-0000-4000-8000-00000000000"


class Fake:
    """What every fake shares: the requests seen, queued failures, counters."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.fail: deque[int] = deque()
        self._ids = itertools.count(1)

    def record(self, request: Request, body: Any) -> None:
        self.seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": body,
            }
        )

    def failure(self) -> Response | None:
        if self.fail:
            status = self.fail.popleft()
            return JSONResponse({"error": "planned"}, status_code=status)
        return None

    def calls(self, path_part: str) -> list[dict[str, Any]]:
        return [seen for seen in self.seen if path_part in seen["path"]]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakePowerBi(Fake):
    """Azure AD's client-credentials token endpoint and Power BI's GenerateToken (V2).

    Azure AD: form body with ``grant_type=client_credentials``, the client id and secret and
    the Power BI scope; answers ``access_token`` and ``expires_in``. GenerateToken: a bearer
    issued by the fake, ``reports``/``datasets`` lists of ``{id}`` (at most 50 each),
    ``identities`` whose ``datasets`` are among the requested ones and whose ``username`` is
    set; answers ``token``, ``tokenId`` and an ISO 8601 ``expiration``.
    """

    SCOPE = "https://analysis.windows.net/powerbi/api/.default"

    def __init__(
        self, tenant: str, client_id: str, client_secret: str, *, aad_lifetime: int = 3599
    ) -> None:
        super().__init__()
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.aad_lifetime = aad_lifetime
        self.issued_access: list[str] = []
        self.revoked: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/{tenant}/oauth2/v2.0/token", self.aad, methods=["POST"]),
                Route("/v1.0/myorg/GenerateToken", self.generate, methods=["POST"]),
            ]
        )

    async def aad(self, request: Request) -> Response:
        raw = await request.body()
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        self.record(request, form)
        if (
            request.headers.get("content-type", "").split(";")[0]
            != "application/x-www-form-urlencoded"
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if request.path_params["tenant"] != self.tenant:
            return JSONResponse({"error": "invalid_tenant"}, status_code=400)
        if form.get("grant_type") != "client_credentials" or form.get("scope") != self.SCOPE:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        access = f"aad-{next(self._ids)}-{_b64(bytes(8))}"
        self.issued_access.append(access)
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": self.aad_lifetime,
                "ext_expires_in": self.aad_lifetime,
                "access_token": access,
            }
        )

    async def generate(self, request: Request) -> Response:
        body = _json(await request.body())
        self.record(request, body)
        failed = self.failure()
        if failed is not None:
            return failed
        bearer = request.headers.get("authorization", "")
        access = bearer.removeprefix("Bearer ")
        if (
            not bearer.startswith("Bearer ")
            or access not in self.issued_access
            or access in self.revoked
        ):
            return JSONResponse({"error": {"code": "TokenExpired"}}, status_code=403)
        problem = _check_generate(body)
        if problem:
            return JSONResponse(
                {"error": {"code": "InvalidRequest", "message": problem}}, status_code=400
            )
        minutes = body.get("lifetimeInMinutes") or 60
        expiration = datetime.now(timezone.utc) + timedelta(minutes=minutes)
        return JSONResponse(
            {
                "@odata.context": "http://api.powerbi.com/v1.0/myorg/$metadata#Microsoft.PowerBI.ServiceRest.EmbedToken",
                "token": f"H4sI-embed-{next(self._ids)}",
                "tokenId": f"{GUID}{next(self._ids) % 10}",
                "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )


def _check_generate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be an object"
    for name in ("reports", "datasets"):
        items = body.get(name, [])
        if not isinstance(items, list) or len(items) > 50:
            return f"{name} must be a list of at most 50"
        if not all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in items):
            return f"{name} items need an id"
    if not body.get("reports") and not body.get("datasets"):
        return "reports or datasets required"
    datasets = {item["id"] for item in body.get("datasets", [])}
    for identity in body.get("identities", []):
        if not isinstance(identity.get("username"), str) or not identity["username"]:
            return "identity username required"
        if len(identity["username"]) > 256 or len(identity.get("roles", [])) > 50:
            return "identity too long"
        if not set(identity.get("datasets", [])) <= datasets:
            return "identity names a dataset not requested"
    lifetime = body.get("lifetimeInMinutes", 0)
    if not isinstance(lifetime, int) or lifetime < 0:
        return "lifetimeInMinutes must be a non-negative integer"
    return None


class FakePreset(Fake):
    """Preset's API: ``/v1/auth/`` (API token name and secret → ``payload.access_token``, a
    JWT) and the workspace's ``guest-token/`` call (bearer; Superset's guest token body)."""

    def __init__(
        self, name: str, secret: str, team: str, workspace: str, *, access_lifetime: int = 3600
    ) -> None:
        super().__init__()
        self.name = name
        self.secret = secret
        self.team = team
        self.workspace = workspace
        self.access_lifetime = access_lifetime
        self.valid_access: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/v1/auth/", self.auth, methods=["POST"]),
                Route(
                    "/v1/teams/{team}/workspaces/{workspace}/guest-token/",
                    self.guest,
                    methods=["POST"],
                ),
            ]
        )

    async def auth(self, request: Request) -> Response:
        body = _json(await request.body())
        self.record(request, body)
        if (
            not isinstance(body, dict)
            or body.get("name") != self.name
            or body.get("secret") != self.secret
        ):
            return JSONResponse({"errors": [{"message": "invalid credentials"}]}, status_code=401)
        now = int(time.time())
        access = jwt.encode(
            {"sub": self.name, "iat": now, "exp": now + self.access_lifetime, "n": next(self._ids)},
            "preset-internal-key-0123456789abcdef",
            algorithm="HS256",
        )
        self.valid_access.add(access)
        return JSONResponse({"payload": {"access_token": access}})

    async def guest(self, request: Request) -> Response:
        body = _json(await request.body())
        self.record(request, body)
        failed = self.failure()
        if failed is not None:
            return failed
        if (request.path_params["team"], request.path_params["workspace"]) != (
            self.team,
            self.workspace,
        ):
            return JSONResponse({"message": "Not found"}, status_code=404)
        access = request.headers.get("authorization", "").removeprefix("Bearer ")
        if access not in self.valid_access:
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        if not isinstance(body, dict) or not isinstance(body.get("user"), dict):
            return JSONResponse({"message": "user required"}, status_code=400)
        resources = body.get("resources")
        if (
            not isinstance(resources, list)
            or not resources
            or any(r.get("type") != "dashboard" for r in resources)
        ):
            return JSONResponse({"message": "resources required"}, status_code=400)
        if not isinstance(body.get("rls"), list):
            return JSONResponse({"message": "rls required"}, status_code=400)
        now = int(time.time())
        token = jwt.encode(
            {
                "user": body["user"],
                "resources": resources,
                "rls_rules": body["rls"],
                "iat": now,
                "exp": now + 300,
                "type": "guest",
            },
            "guest-signing-key-0123456789abcdef",
            algorithm="HS256",
        )
        return JSONResponse({"payload": {"token": token}})


class FakeThoughtSpot(Fake):
    """ThoughtSpot REST v2 trusted authentication: ``/api/rest/2.0/auth/token/full`` and
    ``.../object`` with ``username`` and ``secret_key`` (required), ``validity_time_in_sec``
    (default 300), ``object_id`` for the object token; answers ``token`` and epoch-millisecond
    ``creation_time_in_millis`` / ``expiration_time_in_millis``."""

    def __init__(self, secret_key: str) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.app = Starlette(
            routes=[
                Route("/api/rest/2.0/auth/token/full", self.token, methods=["POST"]),
                Route("/api/rest/2.0/auth/token/object", self.token, methods=["POST"]),
            ]
        )

    async def token(self, request: Request) -> Response:
        body = _json(await request.body())
        self.record(request, body)
        failed = self.failure()
        if failed is not None:
            return failed
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("username"), str)
            or not body["username"]
        ):
            return JSONResponse({"error": {"message": "username is required"}}, status_code=400)
        if body.get("secret_key") != self.secret_key:
            return JSONResponse({"error": {"message": "Authentication failed"}}, status_code=401)
        if request.url.path.endswith("/object") and not body.get("object_id"):
            return JSONResponse({"error": {"message": "object_id is required"}}, status_code=400)
        validity = body.get("validity_time_in_sec", 300)
        if not isinstance(validity, int) or validity <= 0:
            return JSONResponse({"error": {"message": "bad validity_time_in_sec"}}, status_code=400)
        filters = (body.get("user_parameters") or {}).get("runtime_filters", [])
        for rule in filters:
            if set(rule) - {"column_name", "operator", "values", "persist"} or rule.get(
                "operator"
            ) not in ("EQ", "IN"):
                return JSONResponse({"error": {"message": "bad runtime filter"}}, status_code=400)
        now = int(time.time() * 1000)
        return JSONResponse(
            {
                "token": f"ts-{next(self._ids)}-{body['username']}",
                "creation_time_in_millis": now,
                "expiration_time_in_millis": now + validity * 1000,
                "valid_for_user_id": "u-1",
                "valid_for_username": body["username"],
            }
        )


class FakeSigma(Fake):
    """Sigma's embed endpoint: ``/{org}/workbook/{path}?:jwt=...&:embed=true``. The JWT must
    be HS256 with ``kid`` = a known client id, signed with that client's secret; ``sub``,
    ``jti``, ``iat``, ``exp`` required, ``exp - iat`` at most 30 days, ``ver`` 1.1 needs
    ``aud: sigmacomputing``; a ``jti`` seen before is refused."""

    def __init__(self, org: str, clients: dict[str, str]) -> None:
        super().__init__()
        self.org = org
        self.clients = clients
        self.jtis: set[str] = set()
        self.app = Starlette(routes=[Route("/{org}/workbook/{path:path}", self.embed)])

    async def embed(self, request: Request) -> Response:
        self.record(request, dict(request.query_params))
        if request.path_params["org"] != self.org or request.query_params.get(":embed") != "true":
            return HTMLResponse("not found", status_code=404)
        token = request.query_params.get(":jwt", "")
        try:
            header = jwt.get_unverified_header(token)
            secret = self.clients[header["kid"]]
            unverified = jwt.decode(token, options={"verify_signature": False})
            audience = "sigmacomputing" if unverified.get("ver") == "1.1" else None
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=audience,
                options={
                    "require": ["sub", "jti", "iat", "exp"],
                    "verify_aud": audience is not None,
                },
            )
        except (jwt.PyJWTError, KeyError) as exc:
            return HTMLResponse(f"EINVAL: {type(exc).__name__}", status_code=401)
        if (
            claims["exp"] - claims["iat"] > 30 * 24 * 3600
            or " " in claims["sub"]
            or "_" in claims["sub"].split("@")[-1]
        ):
            return HTMLResponse("EINVAL: claims", status_code=401)
        if claims["jti"] in self.jtis:
            return HTMLResponse("EINVAL: jti replayed", status_code=401)
        self.jtis.add(claims["jti"])
        return HTMLResponse(
            f"<title>workbook {request.path_params['path']}</title>{json.dumps(claims)}"
        )


class FakeQuickSight(Fake):
    """QuickSight's ``embed-url/anonymous-user`` and ``embed-url/registered-user`` REST
    calls, SigV4-signed: the signature is recomputed with the known secret access key and
    must match (service ``quicksight``, the configured region). Required members follow
    botocore's service model (``Namespace`` and ``AuthorizedResourceArns`` for anonymous,
    ``UserArn`` for registered; ``ExperienceConfiguration`` for both; 1-50 ``SessionTags``
    with Key ≤ 128 and Value ≤ 256)."""

    def __init__(self, access_key: str, secret_key: str, region: str, account: str) -> None:
        super().__init__()
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.account = account
        self.app = Starlette(
            routes=[Route("/accounts/{account}/embed-url/{kind}", self.embed_url, methods=["POST"])]
        )

    def signature_ok(self, request: Request, raw: bytes) -> bool:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        authorization = request.headers.get("authorization", "")
        try:
            scheme, rest = authorization.split(" ", 1)
            fields = dict(part.strip().split("=", 1) for part in rest.split(","))
            credential = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
        except (ValueError, KeyError):
            return False
        if scheme != "AWS4-HMAC-SHA256" or credential[0] != self.access_key:
            return False
        if credential[2:] != [self.region, "quicksight", "aws4_request"]:
            return False
        headers = {name: request.headers[name] for name in signed if name in request.headers}
        aws_request = AWSRequest(
            method=request.method, url=str(request.url), data=raw, headers=headers
        )
        aws_request.context["timestamp"] = request.headers.get("x-amz-date", "")
        auth = SigV4Auth(Credentials(self.access_key, self.secret_key), "quicksight", self.region)
        canonical = auth.canonical_request(aws_request)
        expected = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
        return expected == fields.get("Signature")

    async def embed_url(self, request: Request) -> Response:
        raw = await request.body()
        body = _json(raw)
        self.record(request, body)
        failed = self.failure()
        if failed is not None:
            code = "ThrottlingException" if failed.status_code == 429 else "InternalFailure"
            return JSONResponse(
                {"Message": "planned"},
                status_code=failed.status_code,
                headers={"x-amzn-ErrorType": code},
            )
        if not self.signature_ok(request, raw):
            return JSONResponse(
                {"message": "The request signature we calculated does not match"},
                status_code=403,
                headers={"x-amzn-ErrorType": "InvalidSignatureException"},
            )
        if request.path_params["account"] != self.account or not isinstance(body, dict):
            return JSONResponse(
                {"Message": "bad account"},
                status_code=400,
                headers={"x-amzn-ErrorType": "InvalidParameterValueException"},
            )
        problem = _check_quicksight(request.path_params["kind"], body)
        if problem:
            return JSONResponse(
                {"Message": problem},
                status_code=400,
                headers={"x-amzn-ErrorType": "InvalidParameterValueException"},
            )
        request_id = f"req-{next(self._ids)}"
        return JSONResponse(
            {
                "EmbedUrl": f"https://{self.region}.quicksight.aws.amazon.com/embed/{request_id}/dashboards/x?code=AYAB{request_id}",
                "Status": 200,
                "RequestId": request_id,
            }
        )


def _check_quicksight(kind: str, body: dict[str, Any]) -> str | None:
    if "Dashboard" not in body.get("ExperienceConfiguration", {}):
        return "ExperienceConfiguration is required"
    minutes = body.get("SessionLifetimeInMinutes", 600)
    if not 15 <= minutes <= 600:
        return "SessionLifetimeInMinutes out of range"
    if kind == "registered-user":
        return (
            None
            if str(body.get("UserArn", "")).startswith("arn:aws:quicksight:")
            else "UserArn is required"
        )
    if kind != "anonymous-user":
        return "unknown operation"
    if not body.get("Namespace") or not body.get("AuthorizedResourceArns"):
        return "Namespace and AuthorizedResourceArns are required"
    tags = body.get("SessionTags", [])
    if "SessionTags" in body and not 1 <= len(tags) <= 50:
        return "SessionTags must hold 1 to 50 tags"
    if any(len(t["Key"]) > 128 or len(t["Value"]) > 256 for t in tags):
        return "SessionTags too long"
    return None
