"""ThoughtSpot trusted authentication: the provider mints a token per user, server to server.

Documented in ThoughtSpot's REST API v2 reference ("Get token for a user",
https://developers.thoughtspot.com/docs/api-authv2#trusted-auth-v2, and the OpenAPI
specification in ``thoughtspot/rest-api-sdk``): ``POST {host}/api/rest/2.0/auth/token/full``
(or ``.../object`` with an ``object_id``) with ``username``, the trusted-authentication
``secret_key``, ``validity_time_in_sec`` and, optionally, ``org_id`` and just-in-time user
creation (``auto_create``, ``display_name``, ``email``, ``group_identifiers``). The answer
carries ``token`` and ``expiration_time_in_millis`` (epoch milliseconds). Row-level security
comes from runtime filters built from principal attributes
(``user_parameters.runtime_filters``).

The page mounts the Visual Embed SDK (``init({authType: TrustedAuthTokenCookieless,
getAuthToken})``); the browser script hands it ``embedgate.getToken``, so the SDK's
refreshes near expiry and on ``AuthExpire`` get a fresh token from the endpoint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from ..config import Config
from ..errors import ConfigurationError, PrincipalError
from ..issuers.base import IssueRequest
from ..issuers.remote import MALFORMED, Exchange, HttpCall, HttpPolicy, RemoteMinter
from ..principal import Principal
from ..secret import Secret
from ..token import EmbedToken
from . import html
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url, http_policy

FULL_PATH: Final = "/api/rest/2.0/auth/token/full"
OBJECT_PATH: Final = "/api/rest/2.0/auth/token/object"
# The UMD build: a classic script defining the ``tsembed`` global the browser script hands over to.
SDK_URL: Final = "https://cdn.jsdelivr.net/npm/@thoughtspot/visual-embed-sdk/dist/tsembed.js"
KINDS: Final = ("liveboard", "search", "app")
SETTINGS: Final = (
    "token_type",
    "object_id",
    "org_id",
    "auto_create",
    "runtime_filters",
    "sdk_url",
    "connect_timeout",
    "read_timeout",
    "retries",
)


class ThoughtSpotMinter(RemoteMinter):
    """Asks ThoughtSpot for each token (``POST /api/rest/2.0/auth/token/{full,object}``)."""

    def __init__(
        self,
        *,
        base_url: str,
        secret_key: Secret,
        validity: int,
        object_id: str | None = None,
        org_id: int | None = None,
        auto_create: bool = False,
        runtime_filters: Mapping[str, str] | None = None,
        policy: HttpPolicy | None = None,
        **transport: Any,
    ) -> None:
        super().__init__(name="thoughtspot", base_url=base_url, policy=policy, **transport)
        self._secret_key = secret_key
        self._validity = validity
        self._object_id = object_id
        self._org_id = org_id
        self._auto_create = auto_create
        self._filters = dict(runtime_filters or {})

    def scope_parts(self) -> tuple[str, ...]:
        return (
            self._object_id or "",
            str(self._org_id),
            str(self._auto_create),
            repr(sorted(self._filters.items())),
        )

    def runtime_filters(self, principal: Principal) -> list[dict[str, Any]]:
        """One filter per mapped column: ``EQ`` for one value, ``IN`` for several."""
        filters = []
        for column, attribute in sorted(self._filters.items()):
            if attribute not in principal.attributes:
                raise PrincipalError(
                    f"attributes.{attribute}",
                    f"is required by EMBEDGATE_THOUGHTSPOT_RUNTIME_FILTERS (column {column!r})",
                )
            value = principal.attributes[attribute]
            values = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
            filters.append(
                {
                    "column_name": column,
                    "operator": "EQ" if len(values) == 1 else "IN",
                    "values": values,
                    "persist": False,
                }
            )
        return filters

    def payload(self, request: IssueRequest) -> dict[str, Any]:
        """The request body for ``request`` (the secret key included)."""
        principal = request.principal
        body: dict[str, Any] = {
            "username": principal.subject,
            "secret_key": self._secret_key.reveal_bytes().decode("utf-8"),
            "validity_time_in_sec": max(1, min(self._validity, request.ttl)),
        }
        if self._object_id is not None:
            body["object_id"] = self._object_id
        if self._org_id is not None:
            body["org_id"] = self._org_id
        if self._auto_create:
            body["auto_create"] = True
            if principal.name:
                body["display_name"] = principal.name
            if principal.email:
                body["email"] = principal.email
            if principal.groups:
                body["group_identifiers"] = list(principal.groups)
        filters = self.runtime_filters(principal)
        if filters:
            body["user_parameters"] = {"runtime_filters": filters}
        return body

    def exchange(self, request: IssueRequest) -> Exchange:
        reply = yield HttpCall(
            "POST",
            OBJECT_PATH if self._object_id is not None else FULL_PATH,
            "token request",
            json=self.payload(request),
        )
        return self.read_token(reply.data, request)

    def read_token(self, data: Mapping[str, Any], request: IssueRequest) -> EmbedToken:
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise self.error(MALFORMED, "the token request answered without a token", status=200)
        millis = data.get("expiration_time_in_millis")
        if isinstance(millis, bool) or not isinstance(millis, (int, float)):
            raise self.error(MALFORMED, "the token request answered no expiration_time_in_millis")
        if not math.isfinite(millis):
            raise self.error(MALFORMED, "the token request answered an unreadable expiry")
        return EmbedToken(
            token=token,
            expires_at=float(millis) / 1000,
            issued_at=request.now,
            subject=request.principal.subject,
        )


class ThoughtSpotProfile(ProfileBase):
    """ThoughtSpot embeds through the Visual Embed SDK: ``liveboard``, ``search``, ``app``."""

    name = "thoughtspot"
    snippet_kinds = KINDS

    def browser_policy(self) -> BrowserPolicy:
        """The Visual Embed SDK's handover, on the ThoughtSpot host only."""
        return BrowserPolicy.for_urls(self._host, sdks=("thoughtspot",))

    def __init__(self) -> None:
        self._host: str | None = None
        self._sdk_url: str | None = None

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> ThoughtSpotMinter:
        opts = ProfileOptions(self.name, options, SETTINGS)
        production = config.is_production
        if config.provider_url is None:
            raise ConfigurationError(
                "EMBEDGATE_PROVIDER_URL",
                "set your ThoughtSpot host (https://<you>.thoughtspot.cloud)",
            )
        self._host = check_url("EMBEDGATE_PROVIDER_URL", config.provider_url, production=production)
        if config.api_key is None:
            raise ConfigurationError(
                "EMBEDGATE_API_KEY",
                "ThoughtSpot mints tokens with the trusted-authentication secret key; set it",
            )
        token_type = opts.choice("token_type", ("full", "object"), "full")
        object_id = opts.text("object_id")
        if token_type == "object" and object_id is None:
            raise ConfigurationError(
                opts.setting("object_id"), "is required with token_type=object"
            )
        if token_type == "full" and object_id is not None:
            raise ConfigurationError(
                opts.setting("object_id"), "is only used with token_type=object"
            )
        self._sdk_url = opts.url("sdk_url", SDK_URL, production=production)
        org = opts.integer("org_id", 0) if opts.present("org_id") else None
        return ThoughtSpotMinter(
            base_url=self._host,
            secret_key=config.api_key,
            validity=config.ttl,
            object_id=object_id,
            org_id=org,
            auto_create=opts.boolean("auto_create", False),
            runtime_filters=opts.string_map("runtime_filters"),
            policy=http_policy(opts),
        )

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        """A mount point for the Visual Embed SDK: the browser script calls ``init`` with
        ``getAuthToken: embedgate.getToken``; the token never sits in the DOM."""
        self.check_kind(kind)
        html.check_options(self.name, kind, options)
        if self._host is None or self._sdk_url is None:
            raise ConfigurationError("EMBEDGATE_PROVIDER", "build_issuer() has not run yet")
        if kind == "liveboard" and not resource:
            raise ConfigurationError("thoughtspot snippet", "a liveboard needs its liveboard id")
        mount = html.element(
            "div",
            [
                ("data-embedgate-sdk", "thoughtspot"),
                ("data-embedgate-kind", kind),
                ("data-embedgate-object", resource),
                ("data-embedgate-domain", self._host),
                html.binding(options),
                *html.presentation(options),
            ],
        )
        return html.script(self._sdk_url, options, module=False) + mount
