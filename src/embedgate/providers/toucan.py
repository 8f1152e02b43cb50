"""Toucan AI: the provider mints an opaque token per user, server to server.

``POST {EMBEDGATE_PROVIDER_URL}/embed/generate-token`` with the ``x-api-key`` header and
``{"user": {"distinctId", "role", "attributes"}}``; the answer carries the token and its
lifetime. The page shows ``<tc-dashboard>`` / ``<tc-ai-assistant>`` web components whose
``auth-token`` attribute the browser script replaces before expiry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from ..config import Config
from ..errors import ConfigurationError
from ..issuers.base import IssueRequest
from ..issuers.remote import MALFORMED, Exchange, HttpCall, HttpPolicy, RemoteMinter
from ..principal import Principal
from ..secret import Secret
from ..token import EmbedToken
from . import html
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url, http_policy

DEFAULT_URL: Final = "https://toucanai.cloud"
TOKEN_PATH: Final = "/embed/generate-token"
TOKEN_FIELDS: Final = ("token", "embedToken", "authToken", "embed_token", "auth_token")
LIFETIME_FIELDS: Final = ("expiresIn", "expires_in")
DEADLINE_FIELDS: Final = ("expiresAt", "expires_at", "exp")
SETTINGS: Final = (
    "token_path",
    "default_role",
    "roles",
    "server_url",
    "script_url",
    "connect_timeout",
    "read_timeout",
    "retries",
)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return _seconds(float(value))
        except ValueError:
            return None
    return None


def _deadline(value: Any) -> float | None:
    number = _seconds(value)
    if number is not None:
        # Epoch milliseconds (JavaScript's Date.now()) are 13 digits long.
        return number / 1000 if number > 1e11 else number
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class ToucanMinter(RemoteMinter):
    """Asks Toucan for each token (``POST /embed/generate-token``)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Secret,
        ttl: int,
        token_path: str = TOKEN_PATH,
        default_role: str = "explorer",
        roles: Mapping[str, str] | None = None,
        policy: HttpPolicy | None = None,
        **transport: Any,
    ) -> None:
        super().__init__(name="toucan", base_url=base_url, policy=policy, **transport)
        self._api_key = api_key
        self._ttl = ttl
        self._path = token_path
        self._default_role = default_role
        self._roles = dict(roles or {})

    def scope_parts(self) -> tuple[str, ...]:
        return (self._path, self._default_role, repr(sorted(self._roles.items())))

    def role(self, principal: Principal) -> str:
        """The Toucan role: the first of the principal's roles that is mapped, else the default."""
        for role in principal.roles:
            if role in self._roles:
                return self._roles[role]
        return self._default_role

    def payload(self, principal: Principal) -> dict[str, Any]:
        """The request body for ``principal``."""
        attributes: dict[str, Any] = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in principal.attributes.items()
        }
        if principal.tenant is not None:
            attributes.setdefault("tenant", principal.tenant)
        return {
            "user": {
                "distinctId": principal.subject,
                "role": self.role(principal),
                "attributes": attributes,
            }
        }

    def exchange(self, request: IssueRequest) -> Exchange:
        reply = yield HttpCall(
            "POST",
            self._path,
            "token request",
            headers={"x-api-key": self._api_key.reveal_bytes().decode("utf-8")},
            json=self.payload(request.principal),
        )
        return self.read_token(reply.data, request)

    def read_token(self, data: Mapping[str, Any], request: IssueRequest) -> EmbedToken:
        """The token from Toucan's answer (field names as documented, and their variants).

        Without any lifetime field the token is assumed to live ``EMBEDGATE_TTL`` seconds.
        """
        if isinstance(data.get("data"), Mapping) and not any(k in data for k in TOKEN_FIELDS):
            data = data["data"]
        token = next((data[k] for k in TOKEN_FIELDS if k in data), None)
        if not isinstance(token, str) or not token:
            raise self.error(MALFORMED, "the token request answered without a token", status=200)
        now = request.now
        expires_at: float | None = None
        for name in LIFETIME_FIELDS:
            if name in data:
                lifetime = _seconds(data[name])
                if lifetime is None:
                    raise self.error(MALFORMED, f"the token request answered an unreadable {name}")
                expires_at = now + lifetime
                break
        else:
            for name in DEADLINE_FIELDS:
                if name in data:
                    expires_at = _deadline(data[name])
                    if expires_at is None:
                        raise self.error(
                            MALFORMED, f"the token request answered an unreadable {name}"
                        )
                    break
        return EmbedToken(
            token=token,
            expires_at=now + self._ttl if expires_at is None else expires_at,
            issued_at=now,
            subject=request.principal.subject,
        )


class ToucanProfile(ProfileBase):
    """Toucan AI embeds: ``dashboard`` (``<tc-dashboard>``) and ``assistant``
    (``<tc-ai-assistant>``)."""

    name = "toucan"
    dry_run = True  # `embedgate doctor` may ask for a test token
    snippet_kinds = ("dashboard", "assistant")

    def browser_policy(self) -> BrowserPolicy:
        """The Toucan elements' ``auth-token``."""
        return BrowserPolicy.for_urls(self._server_url, attributes=("auth-token",))

    def __init__(self) -> None:
        self._server_url: str | None = None
        self._script_url: str | None = None

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> ToucanMinter:
        opts = ProfileOptions(self.name, options, SETTINGS)
        production = config.is_production
        base = check_url(
            "EMBEDGATE_PROVIDER_URL", config.provider_url or DEFAULT_URL, production=production
        )
        if config.api_key is None:
            raise ConfigurationError(
                "EMBEDGATE_API_KEY", "Toucan mints tokens with your API key; set it"
            )
        path = opts.text("token_path", TOKEN_PATH) or ""
        if not path.startswith("/"):
            raise ConfigurationError(opts.setting("token_path"), "must start with '/'")
        self._server_url = opts.url("server_url", f"{base}/api", production=production)
        self._script_url = opts.url("script_url", f"{base}/embed/embed.js", production=production)
        return ToucanMinter(
            base_url=base,
            api_key=config.api_key,
            ttl=config.ttl,
            token_path=path,
            default_role=opts.text("default_role", "explorer") or "explorer",
            roles=opts.string_map("roles"),
            policy=http_policy(opts),
        )

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        self.check_kind(kind)
        html.check_options(self.name, kind, options, ("theme",))
        if self._server_url is None or self._script_url is None:
            raise ConfigurationError("EMBEDGATE_PROVIDER", "build_issuer() has not run yet")
        if kind == "dashboard" and not resource:
            raise ConfigurationError("toucan snippet", "a dashboard needs its dashboard id")
        tag = "tc-dashboard" if kind == "dashboard" else "tc-ai-assistant"
        attributes: list[tuple[str, str | None]] = [
            ("dashboard-id", resource if kind == "dashboard" else None),
            ("auth-token", token.token),
            ("server-url", self._server_url),
            ("data-theme", options.get("theme")),
            ("data-embedgate-token", "auth-token"),
            html.binding(options),
            *html.presentation(options),
        ]
        return html.script(self._script_url, options) + html.element(tag, attributes)
