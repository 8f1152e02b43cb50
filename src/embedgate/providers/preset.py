"""Preset (managed Apache Superset): guest tokens from Preset's API.

Documented in Preset's embedding guide (https://docs.preset.io/docs/step-2-deployment) and
its reference app (``preset-io/embedded-example``, ``app.py``):

1. ``POST {api}/v1/auth/`` with ``{"name": <API token>, "secret": <API secret>}`` answers
   ``payload.access_token`` (a JWT living a few hours), kept and reused until shortly
   before its ``exp`` or a 401;
2. ``POST {api}/v1/teams/{team}/workspaces/{workspace}/guest-token/`` with that bearer and
   Superset's guest-token body (``user``, ``resources``, ``rls``) answers
   ``payload.token``, a guest token living 5 minutes.

Row-level security and dashboard grants are Superset's (``EMBEDGATE_PRESET_RLS``,
``EMBEDGATE_PRESET_DASHBOARDS``). The page mounts the dashboard with
``@preset-sdk/embedded``, whose ``fetchGuestToken`` is ``embedgate.getToken`` and whose
``supersetDomain`` is the workspace URL (``EMBEDGATE_PRESET_DOMAIN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..config import Config
from ..errors import ConfigurationError
from ..issuers.base import IssueRequest
from ..issuers.remote import MALFORMED, REJECTED, Exchange, HttpCall, HttpPolicy, RemoteMinter
from ..secret import Secret
from ..token import EmbedToken
from .access import ServiceAccess
from .options import ProfileOptions, check_url, http_policy
from .rls import parse_rules
from .superset import GuestGrant, SupersetProfile, unverified_exp

API_URL: Final = "https://api.app.preset.io"
SDK_URL: Final = "https://unpkg.com/@preset-sdk/embedded"
DEFAULT_ACCESS_LIFETIME: Final = 3600.0
GUEST_TOKEN_LIFETIME: Final = 300.0
SETTINGS: Final = (
    "api_token",
    "api_secret",
    "team",
    "workspace",
    "domain",
    "dashboards",
    "rls",
    "sdk_url",
    "connect_timeout",
    "read_timeout",
    "retries",
)


def _payload(data: Mapping[str, Any], name: str) -> str | None:
    payload = data.get("payload")
    value = payload.get(name) if isinstance(payload, Mapping) else None
    return value if isinstance(value, str) and value else None


class PresetMinter(RemoteMinter):
    """Guest tokens for one Preset workspace, with the team's API token."""

    def __init__(
        self,
        *,
        base_url: str,
        api_token: str,
        api_secret: Secret,
        team: str,
        workspace: str,
        grant: GuestGrant,
        policy: HttpPolicy | None = None,
        **transport: Any,
    ) -> None:
        super().__init__(
            name="preset",
            base_url=base_url,
            policy=policy,
            credential_setting="EMBEDGATE_PRESET_API_TOKEN and EMBEDGATE_PRESET_API_SECRET",
            **transport,
        )
        self._api_token = api_token
        self._api_secret = api_secret
        self._guest_path = f"/v1/teams/{team}/workspaces/{workspace}/guest-token/"
        self._grant = grant
        self._access = ServiceAccess()

    def scope_parts(self) -> tuple[str, ...]:
        return (self._api_token, self._guest_path, self._grant.scope())

    def exchange(self, request: IssueRequest) -> Exchange:
        body = self._grant.body(request)
        for _ in range(2):
            access = self._access.current(request.now)
            if access is None:
                login = yield HttpCall(
                    "POST",
                    "/v1/auth/",
                    "API token exchange",
                    json={
                        "name": self._api_token,
                        "secret": self._api_secret.reveal_bytes().decode("utf-8"),
                    },
                )
                value = _payload(login.data, "access_token")
                if value is None:
                    raise self.error(
                        MALFORMED, "the API token exchange answered without an access_token"
                    )
                expires = unverified_exp(value) or request.now + DEFAULT_ACCESS_LIFETIME
                access = self._access.keep(value, expires)
            guest = yield HttpCall(
                "POST",
                self._guest_path,
                "guest token request",
                headers=ServiceAccess.bearer(access),
                json=body,
                handles=frozenset({401}),
            )
            if guest.status == 401:
                self._access.forget(access)
                continue
            token = _payload(guest.data, "token")
            if token is None:
                raise self.error(MALFORMED, "the guest token request answered without a token")
            return EmbedToken(
                token=token,
                expires_at=unverified_exp(token) or request.now + GUEST_TOKEN_LIFETIME,
                issued_at=request.now,
                subject=request.principal.subject,
            )
        raise self.error(
            REJECTED,
            "the guest token request was refused (HTTP 401) even after a new access token",
            status=401,
        )

    def __repr__(self) -> str:
        return f"PresetMinter(base_url={self.base_url!r}, path={self._guest_path!r})"


class PresetProfile(SupersetProfile):
    """Preset embedded dashboards (``dashboard``: a mount point for ``@preset-sdk/embedded``)."""

    name = "preset"
    sdk_name = "preset"

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> PresetMinter:
        opts = ProfileOptions(self.name, options, SETTINGS)
        production = config.is_production
        base = check_url(
            "EMBEDGATE_PROVIDER_URL", config.provider_url or API_URL, production=production
        )
        self._domain = opts.url("domain", None, production=production)
        if self._domain is None:
            raise ConfigurationError(
                opts.setting("domain"),
                "is required: the workspace URL from Preset's Embed dialog "
                "(https://<workspace>.<region>.app.preset.io)",
            )
        self._sdk_url = opts.url("sdk_url", SDK_URL, production=production)
        self._dashboards = opts.names("dashboards")
        grant = GuestGrant(
            self._dashboards, parse_rules(opts.setting("rls"), opts.json_object("rls"))
        )
        return PresetMinter(
            base_url=base,
            api_token=opts.require("api_token", " (the name of a Preset API token)"),
            api_secret=opts.secret("api_secret", required=True) or Secret(""),
            team=_path_id(opts, "team"),
            workspace=_path_id(opts, "workspace"),
            grant=grant,
            policy=http_policy(opts),
        )


def _path_id(opts: ProfileOptions, name: str) -> str:
    value = opts.require(name, f" (the {name} id from Preset's Embed dialog)")
    if not value.replace("-", "").replace("_", "").isalnum():
        raise ConfigurationError(opts.setting(name), f"expected an id, got {value!r}")
    return value
