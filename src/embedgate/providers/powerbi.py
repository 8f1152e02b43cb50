"""Power BI Embedded, "app owns data": embed tokens generated with a service principal.

Documented by Microsoft: the client-credentials grant
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow) and
Embed Token - Generate Token
(https://learn.microsoft.com/rest/api/power-bi/embed-token/generate-token), as used by
``microsoft/PowerBI-Developer-Samples`` (``Python/Embed for your customers/AppOwnsData``):

1. ``POST {authority}/{tenant}/oauth2/v2.0/token`` (form: ``grant_type=client_credentials``,
   ``client_id``, ``client_secret``, ``scope=https://analysis.windows.net/powerbi/api/.default``)
   answers an Azure AD ``access_token`` and its ``expires_in``; it is kept and reused until
   shortly before it expires (or a 401), and never leaves the server;
2. ``POST {api}/v1.0/myorg/GenerateToken`` with that bearer and ``reports``, ``datasets``,
   ``targetWorkspaces``, ``identities`` (row-level security: ``username``, ``roles``,
   ``datasets``, optional ``customData``) and ``lifetimeInMinutes`` answers ``token``,
   ``tokenId`` and ``expiration`` (ISO 8601, UTC).

The page mounts the report with ``powerbi-client``: the browser script embeds it with
``tokenType: Embed`` and calls ``report.setAccessToken()`` with each refreshed token (Power
BI has no expiry event, so refreshing ahead is the only way).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlencode

from ..config import Config
from ..errors import ConfigurationError, PrincipalError
from ..issuers.base import IssueRequest
from ..issuers.remote import MALFORMED, REJECTED, Exchange, HttpCall, HttpPolicy, RemoteMinter
from ..principal import Principal
from ..secret import Secret
from ..token import EmbedToken
from . import html
from .access import ServiceAccess
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url, http_policy

AUTHORITY_URL: Final = "https://login.microsoftonline.com"
API_URL: Final = "https://api.powerbi.com"
APP_URL: Final = "https://app.powerbi.com"
SCOPE: Final = "https://analysis.windows.net/powerbi/api/.default"
SDK_URL: Final = "https://cdn.jsdelivr.net/npm/powerbi-client/dist/powerbi.min.js"
GENERATE_PATH: Final = "/v1.0/myorg/GenerateToken"
MAX_ITEMS: Final = 50
SETTINGS: Final = (
    "tenant_id",
    "client_id",
    "client_secret",
    "authority_url",
    "reports",
    "datasets",
    "workspaces",
    "rls_datasets",
    "roles",
    "username",
    "custom_data",
    "sdk_url",
    "app_url",
    "connect_timeout",
    "read_timeout",
    "retries",
)


def _expiration(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


class PowerBiMinter(RemoteMinter):
    """Embed tokens from Power BI's GenerateToken call, with an Azure AD app-only token."""

    def __init__(
        self,
        *,
        base_url: str,
        authority_url: str,
        tenant_id: str,
        client_id: str,
        client_secret: Secret,
        reports: tuple[str, ...],
        datasets: tuple[str, ...],
        workspaces: tuple[str, ...] = (),
        rls_datasets: tuple[str, ...] = (),
        roles: Mapping[str, str] | None = None,
        username: str = "subject",
        custom_data: str | None = None,
        policy: HttpPolicy | None = None,
        **transport: Any,
    ) -> None:
        super().__init__(
            name="powerbi",
            base_url=base_url,
            policy=policy,
            credential_setting="EMBEDGATE_POWERBI_CLIENT_ID and EMBEDGATE_POWERBI_CLIENT_SECRET",
            **transport,
        )
        self._token_url = f"{authority_url}/{quote(tenant_id, safe='')}/oauth2/v2.0/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._reports = reports
        self._datasets = datasets
        self._workspaces = workspaces
        self._rls_datasets = rls_datasets
        self._roles = dict(roles or {})
        self._username = username
        self._custom_data = custom_data
        self._access = ServiceAccess()

    def scope_parts(self) -> tuple[str, ...]:
        return (
            self._token_url,
            self._client_id,
            repr((self._reports, self._datasets, self._workspaces, self._rls_datasets)),
            repr(sorted(self._roles.items())),
            self._username,
            self._custom_data or "",
        )

    def identity(self, principal: Principal) -> dict[str, Any]:
        """The effective identity row-level security sees for ``principal``."""
        if self._username == "email":
            if principal.email is None:
                raise PrincipalError(
                    "email", "is the Power BI username (EMBEDGATE_POWERBI_USERNAME)"
                )
            username = principal.email
        else:
            username = principal.subject
        roles = [self._roles.get(role, role) for role in principal.roles]
        identity: dict[str, Any] = {
            "username": username,
            "roles": roles[:MAX_ITEMS],
            "datasets": list(self._rls_datasets),
        }
        if self._custom_data is not None:
            if self._custom_data not in principal.attributes:
                raise PrincipalError(
                    f"attributes.{self._custom_data}", "is EMBEDGATE_POWERBI_CUSTOM_DATA"
                )
            identity["customData"] = str(principal.attributes[self._custom_data])
        return identity

    def body(self, request: IssueRequest) -> dict[str, Any]:
        """The GenerateToken request body (API version 2: several reports and datasets)."""
        reports = (request.resource,) if request.resource else self._reports
        body: dict[str, Any] = {
            "reports": [{"id": report} for report in reports],
            "datasets": [{"id": dataset} for dataset in self._datasets],
            "lifetimeInMinutes": max(1, min(60, math.ceil(request.ttl / 60))),
        }
        if self._workspaces:
            body["targetWorkspaces"] = [{"id": workspace} for workspace in self._workspaces]
        if self._rls_datasets:
            body["identities"] = [self.identity(request.principal)]
        return body

    def exchange(self, request: IssueRequest) -> Exchange:
        body = self.body(request)
        for _ in range(2):
            access = self._access.current(request.now)
            if access is None:
                reply = yield HttpCall(
                    "POST",
                    self._token_url,
                    "Azure AD token request",
                    form={
                        "grant_type": "client_credentials",
                        "client_id": self._client_id,
                        "client_secret": self._client_secret.reveal_bytes().decode("utf-8"),
                        "scope": SCOPE,
                    },
                )
                value = reply.data.get("access_token")
                lifetime: Any = reply.data.get("expires_in")
                if not isinstance(value, str) or not value:
                    raise self.error(
                        MALFORMED, "the Azure AD token request answered without an access_token"
                    )
                try:
                    seconds = math.nan if isinstance(lifetime, bool) else float(lifetime)
                except (TypeError, ValueError):
                    seconds = math.nan
                if not math.isfinite(seconds) or seconds <= 0:
                    raise self.error(
                        MALFORMED, "the Azure AD token request answered an unreadable expires_in"
                    )
                access = self._access.keep(value, request.now + seconds)
            reply = yield HttpCall(
                "POST",
                GENERATE_PATH,
                "GenerateToken request",
                headers=ServiceAccess.bearer(access),
                json=body,
                handles=frozenset({401, 403}),
            )
            if reply.status in (401, 403):
                self._access.forget(access)
                continue
            return self.read_token(reply.data, request)
        raise self.error(
            REJECTED,
            "the GenerateToken request was refused even with a new Azure AD token; check the "
            "service principal's workspace access",
            status=403,
        )

    def read_token(self, data: Mapping[str, Any], request: IssueRequest) -> EmbedToken:
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise self.error(MALFORMED, "GenerateToken answered without a token", status=200)
        expires_at = _expiration(data.get("expiration"))
        if expires_at is None:
            raise self.error(MALFORMED, "GenerateToken answered an unreadable expiration")
        token_id = data.get("tokenId")
        return EmbedToken(
            token=token,
            expires_at=expires_at,
            issued_at=request.now,
            subject=request.principal.subject,
            jti=token_id if isinstance(token_id, str) and token_id else None,
        )

    def __repr__(self) -> str:
        return f"PowerBiMinter(base_url={self.base_url!r}, client_id={self._client_id!r})"


class PowerBiProfile(ProfileBase):
    """Power BI reports (``report``: a mount point for ``powerbi-client``)."""

    name = "powerbi"
    snippet_kinds = ("report",)

    def browser_policy(self) -> BrowserPolicy:
        """The ``powerbi-client`` handover, on the Power BI app's origin only."""
        return BrowserPolicy.for_urls(self._app_url, sdks=("powerbi",))

    def __init__(self) -> None:
        self._reports: tuple[str, ...] = ()
        self._workspaces: tuple[str, ...] = ()
        self._sdk_url: str | None = None
        self._app_url: str | None = None

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> PowerBiMinter:
        opts = ProfileOptions(self.name, options, SETTINGS)
        production = config.is_production
        base = check_url(
            "EMBEDGATE_PROVIDER_URL", config.provider_url or API_URL, production=production
        )
        authority = opts.url("authority_url", AUTHORITY_URL, production=production)
        assert authority is not None
        self._reports = _ids(opts, "reports")
        datasets = _ids(opts, "datasets")
        self._workspaces = _ids(opts, "workspaces")
        rls_datasets = _ids(opts, "rls_datasets")
        if not set(rls_datasets) <= set(datasets):
            raise ConfigurationError(
                opts.setting("rls_datasets"), "must be among EMBEDGATE_POWERBI_DATASETS"
            )
        self._sdk_url = opts.url("sdk_url", SDK_URL, production=production)
        self._app_url = opts.url("app_url", APP_URL, production=production)
        return PowerBiMinter(
            base_url=base,
            authority_url=authority,
            tenant_id=opts.require("tenant_id", " (the Azure AD tenant of the service principal)"),
            client_id=opts.require("client_id", " (the service principal's application id)"),
            client_secret=opts.secret("client_secret", required=True) or Secret(""),
            reports=self._reports,
            datasets=datasets,
            workspaces=self._workspaces,
            rls_datasets=rls_datasets,
            roles=opts.string_map("roles"),
            username=opts.choice("username", ("subject", "email"), "subject"),
            custom_data=opts.text("custom_data"),
            policy=http_policy(opts),
        )

    @property
    def session_tokens(self) -> bool:
        """With ``EMBEDGATE_POWERBI_REPORTS`` the session's token covers every listed report;
        without it, a token per report."""
        return bool(self._reports)

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        self.check_kind(kind)
        if not resource:
            raise ConfigurationError("powerbi snippet", "needs the report id")
        if not self._reports:
            return resource
        if resource not in self._reports:
            raise ConfigurationError(
                "EMBEDGATE_POWERBI_REPORTS", f"does not list the report {resource!r}"
            )
        return None

    def embed_url(self, report: str) -> str:
        if self._app_url is None:
            raise ConfigurationError("EMBEDGATE_PROVIDER", "build_issuer() has not run yet")
        query = {"reportId": report}
        if self._workspaces:
            query["groupId"] = self._workspaces[0]
        return f"{self._app_url}/reportEmbed?{urlencode(query)}"

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        """A mount point: the browser script embeds the report with ``powerbi-client`` and
        hands it each refreshed token with ``report.setAccessToken()``."""
        self.check_kind(kind)
        html.check_options(self.name, kind, options)
        if not resource:
            raise ConfigurationError("powerbi snippet", "needs the report id")
        if self._sdk_url is None:
            raise ConfigurationError("EMBEDGATE_PROVIDER", "build_issuer() has not run yet")
        mount = html.element(
            "div",
            [
                ("data-embedgate-sdk", "powerbi"),
                ("data-embedgate-report", resource),
                ("data-embedgate-embed-url", self.embed_url(resource)),
                ("data-embedgate-resource", None if self._reports else resource),
                html.binding(options),
                *html.presentation(options),
            ],
        )
        return html.script(self._sdk_url, options, module=False) + mount


def _ids(opts: ProfileOptions, name: str) -> tuple[str, ...]:
    values = opts.names(name)
    if len(values) > MAX_ITEMS:
        raise ConfigurationError(opts.setting(name), f"Power BI accepts at most {MAX_ITEMS}")
    for value in values:
        if not value.replace("-", "").isalnum():
            raise ConfigurationError(opts.setting(name), f"expected ids (GUIDs), got {value!r}")
    return values
