"""Apache Superset: guest tokens for embedded dashboards.

Two ways to get one (``EMBEDGATE_SUPERSET_MODE``):

* ``api`` (default): Superset's REST API with a service account. ``POST
  /api/v1/security/login`` gives an access token (kept, and renewed before it expires or on
  a 401), ``GET /api/v1/security/csrf_token/`` a CSRF token and its session cookie, and
  ``POST /api/v1/security/guest_token/`` the guest token.
* ``local``: signed here with Superset's ``GUEST_TOKEN_JWT_SECRET`` (``EMBEDGATE_SECRET``,
  HS256) and ``GUEST_TOKEN_JWT_AUDIENCE`` (``EMBEDGATE_AUDIENCE``), in the claim shape
  Superset's security manager produces (``user``, ``resources``, ``rls_rules``, ``iat``,
  ``exp``, ``aud``, ``type: "guest"``).

Row-level security clauses come from principal attributes through
``EMBEDGATE_SUPERSET_RLS`` (see :mod:`embedgate.providers.rls`). The page mounts the
dashboard with ``@superset-ui/embedded-sdk``, whose ``fetchGuestToken`` is
``embedgate.getToken``: the session's token when ``EMBEDGATE_SUPERSET_DASHBOARDS`` lists the
dashboards it grants, else (no session token then) ``embedgate.getToken(dashboard)``, the
guest token bound to that one dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import jwt

from ..config import Config
from ..errors import ConfigurationError
from ..issuers.base import Issuer, IssueRequest
from ..issuers.remote import MALFORMED, REJECTED, Exchange, HttpCall, HttpPolicy, RemoteMinter
from ..issuers.signer import ClaimsLayout, LocalSigner
from ..keys import keyset_from_config
from ..principal import Principal
from ..secret import Secret
from ..token import EmbedToken
from . import html
from .access import ServiceAccess
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url, http_policy
from .rls import RlsRule, parse_rules, render_rules

SDK_URL: Final = "https://unpkg.com/@superset-ui/embedded-sdk"
# What Superset checks a guest token's aud against when GUEST_TOKEN_JWT_AUDIENCE is unset:
# its WEBDRIVER_BASEURL, whose default is this.
SUPERSET_DEFAULT_AUDIENCE: Final = "http://0.0.0.0:8080/"
ACCESS_MARGIN: Final = 30.0
DEFAULT_ACCESS_LIFETIME: Final = 900.0  # Flask-JWT-Extended's default, when exp is unreadable
SETTINGS: Final = (
    "mode",
    "username",
    "password",
    "login_provider",
    "dashboards",
    "rls",
    "guest_token_ttl",
    "domain",
    "sdk_url",
    "connect_timeout",
    "read_timeout",
    "retries",
)

log = logging.getLogger("embedgate")


def guest_user(principal: Principal) -> dict[str, str]:
    """Superset's guest ``user``: the subject as username, the name split in two."""
    first, _, last = (principal.name or "").partition(" ")
    return {"username": principal.subject, "first_name": first, "last_name": last.strip()}


class GuestGrant:
    """What a guest token grants: dashboards and row-level security, from a request."""

    def __init__(self, dashboards: tuple[str, ...], rules: tuple[RlsRule, ...]) -> None:
        self.dashboards = dashboards
        self.rules = rules

    def resources(self, resource: str | None) -> list[dict[str, str]]:
        ids = (resource,) if resource else self.dashboards
        if not ids:
            raise ConfigurationError(
                "EMBEDGATE_SUPERSET_DASHBOARDS",
                "no dashboard to grant: pass the embedded dashboard id as the resource, "
                "or set this to the default embedded dashboard ids",
            )
        return [{"type": "dashboard", "id": dashboard} for dashboard in ids]

    def body(self, request: IssueRequest) -> dict[str, Any]:
        """The guest token request body (also the local token's claims, ``rls`` renamed)."""
        return {
            "user": guest_user(request.principal),
            "resources": self.resources(request.resource),
            "rls": render_rules(self.rules, request.principal),
        }

    def layout(self) -> ClaimsLayout:
        def claims(request: IssueRequest) -> dict[str, Any]:
            body = self.body(request)
            return {
                "user": body["user"],
                "resources": body["resources"],
                "rls_rules": body["rls"],
                "type": "guest",
            }

        return claims

    def scope(self) -> str:
        return repr((self.dashboards, self.rules))


def unverified_exp(token: str) -> float | None:
    # Only to time renewals: the token is the provider's, we hold no key to verify it.
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


class SupersetApiMinter(RemoteMinter):
    """Guest tokens from Superset's REST API, logged in as a service account."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: Secret,
        grant: GuestGrant,
        guest_token_ttl: int = 300,
        login_provider: str = "db",
        policy: HttpPolicy | None = None,
        **transport: Any,
    ) -> None:
        super().__init__(
            name="superset",
            base_url=base_url,
            policy=policy,
            credential_setting="EMBEDGATE_SUPERSET_USERNAME and EMBEDGATE_SUPERSET_PASSWORD",
            **transport,
        )
        self._username = username
        self._password = password
        self._grant = grant
        self._guest_ttl = guest_token_ttl
        self._login_provider = login_provider
        self._access = ServiceAccess(ACCESS_MARGIN)

    def scope_parts(self) -> tuple[str, ...]:
        return (self._username, self._grant.scope())

    def _keep_access(self, data: Mapping[str, Any], now: float) -> Secret:
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise self.error(MALFORMED, "the login answered without an access_token", status=200)
        return self._access.keep(value, unverified_exp(value) or now + DEFAULT_ACCESS_LIFETIME)

    def exchange(self, request: IssueRequest) -> Exchange:
        body = self._grant.body(request)
        for _ in range(2):
            access = self._access.current(request.now)
            if access is None:
                login = yield HttpCall(
                    "POST",
                    "/api/v1/security/login",
                    "login",
                    json={
                        "username": self._username,
                        "password": self._password.reveal_bytes().decode("utf-8"),
                        "provider": self._login_provider,
                        "refresh": True,
                    },
                )
                access = self._keep_access(login.data, request.now)
            bearer = ServiceAccess.bearer(access)
            csrf = yield HttpCall(
                "GET",
                "/api/v1/security/csrf_token/",
                "CSRF token request",
                headers=bearer,
                handles=frozenset({401}),
            )
            if csrf.status == 401:
                self._access.forget(access)
                continue
            csrf_token = csrf.data.get("result")
            if not isinstance(csrf_token, str) or not csrf_token:
                raise self.error(MALFORMED, "the CSRF token request answered without a result")
            # Flask-WTF checks the Referer of https requests against the host.
            guest = yield HttpCall(
                "POST",
                "/api/v1/security/guest_token/",
                "guest token request",
                headers={**bearer, "x-csrftoken": csrf_token, "referer": f"{self.base_url}/"},
                cookies=csrf.cookies,
                json=body,
                handles=frozenset({401}),
            )
            if guest.status == 401:
                self._access.forget(access)
                continue
            return self._token(guest.data, request)
        raise self.error(
            REJECTED,
            "the guest token request was refused (HTTP 401) even after a fresh login",
            status=401,
        )

    def _token(self, data: Mapping[str, Any], request: IssueRequest) -> EmbedToken:
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise self.error(
                MALFORMED, "the guest token request answered without a token", status=200
            )
        expires_at = unverified_exp(token) or request.now + self._guest_ttl
        return EmbedToken(
            token=token,
            expires_at=expires_at,
            issued_at=request.now,
            subject=request.principal.subject,
        )

    def __repr__(self) -> str:
        return f"SupersetApiMinter(base_url={self.base_url!r}, username={self._username!r})"


class SupersetProfile(ProfileBase):
    """Superset embedded dashboards (``dashboard``: a mount point for the embedded SDK)."""

    name = "superset"
    dry_run = True  # `embedgate doctor` may ask for a test token
    sdk_name = "superset"
    snippet_kinds = ("dashboard",)

    def browser_policy(self) -> BrowserPolicy:
        """The embedded SDK's handover, on the Superset domain only."""
        return BrowserPolicy.for_urls(self._domain, sdks=(self.sdk_name,))

    def __init__(self) -> None:
        self._domain: str | None = None
        self._sdk_url: str | None = None
        self._dashboards: tuple[str, ...] = ()

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> Issuer:
        opts = ProfileOptions(self.name, options, SETTINGS)
        production = config.is_production
        mode = opts.choice("mode", ("api", "local"), "api")
        base = (
            None
            if config.provider_url is None
            else check_url("EMBEDGATE_PROVIDER_URL", config.provider_url, production=production)
        )
        self._domain = opts.url("domain", base, production=production)
        if self._domain is None:
            raise ConfigurationError(
                "EMBEDGATE_PROVIDER_URL", "the Superset URL is required (the embedded SDK loads it)"
            )
        self._sdk_url = opts.url("sdk_url", SDK_URL, production=production)
        self._dashboards = opts.names("dashboards")
        grant = GuestGrant(
            self._dashboards, parse_rules(opts.setting("rls"), opts.json_object("rls"))
        )
        if mode == "local":
            return self._local(config, opts, grant)
        assert base is not None
        return SupersetApiMinter(
            base_url=base,
            username=opts.require("username", " for the api mode (a service account)"),
            password=opts.secret("password", required=True, why=" for the api mode") or Secret(""),
            grant=grant,
            guest_token_ttl=opts.integer("guest_token_ttl", 300, minimum=1, maximum=86_400),
            login_provider=opts.text("login_provider", "db") or "db",
            policy=http_policy(opts),
        )

    def _local(self, config: Config, opts: ProfileOptions, grant: GuestGrant) -> LocalSigner:
        for name in ("username", "password", "login_provider"):
            if opts.present(name):
                raise ConfigurationError(opts.setting(name), "is only used in the api mode")
        if config.secret is None or config.private_key_pem() is not None:
            raise ConfigurationError(
                "EMBEDGATE_SECRET",
                "the local mode signs with Superset's GUEST_TOKEN_JWT_SECRET: set it here "
                "(and no private key)",
            )
        if config.audience != SUPERSET_DEFAULT_AUDIENCE:
            log.warning(
                "embedgate: Superset refuses a guest token whose aud is not its "
                "GUEST_TOKEN_JWT_AUDIENCE (unset, it is WEBDRIVER_BASEURL, by default %s); "
                "EMBEDGATE_AUDIENCE is %r: set GUEST_TOKEN_JWT_AUDIENCE = %r in "
                "superset_config.py, or EMBEDGATE_AUDIENCE=%s",
                SUPERSET_DEFAULT_AUDIENCE,
                config.audience,
                config.audience,
                SUPERSET_DEFAULT_AUDIENCE,
            )
        return LocalSigner(
            keyset_from_config(config),
            issuer=config.issuer,
            audience=config.audience,
            typ=config.typ,
            layout=grant.layout(),
            size_budget=config.token_size_budget,
            name=self.name,
            max_ttl=config.max_ttl,
        )

    @property
    def session_tokens(self) -> bool:
        """Only with ``EMBEDGATE_SUPERSET_DASHBOARDS``: without it a guest token names the
        one dashboard it embeds."""
        return bool(self._dashboards)

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        """With ``EMBEDGATE_SUPERSET_DASHBOARDS`` the session's token grants every listed
        dashboard (and is the one the SDK refreshes); without it, a token per dashboard."""
        self.check_kind(kind)
        if not self._dashboards:
            return resource
        if resource not in self._dashboards:
            raise ConfigurationError(
                f"EMBEDGATE_{self.name.upper()}_DASHBOARDS",
                f"does not list the dashboard {resource!r}",
            )
        return None

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        """A mount point: the browser script calls ``supersetEmbeddedSdk.embedDashboard``
        with ``fetchGuestToken: embedgate.getToken``; the token never sits in the DOM. A
        per-dashboard guest token (no ``EMBEDGATE_SUPERSET_DASHBOARDS``) is named by
        ``data-embedgate-resource``, so the script asks for that dashboard's token."""
        self.check_kind(kind)
        html.check_options(self.name, kind, options, ("hide_title", "filters"))
        if self._domain is None or self._sdk_url is None:
            raise ConfigurationError("EMBEDGATE_PROVIDER", "build_issuer() has not run yet")
        if not resource:
            raise ConfigurationError(f"{self.name} snippet", "needs the embedded dashboard id")
        mount = html.element(
            "div",
            [
                ("data-embedgate-sdk", self.sdk_name),
                ("data-embedgate-dashboard", resource),
                ("data-embedgate-domain", self._domain),
                ("data-embedgate-resource", None if self._dashboards else resource),
                ("data-embedgate-hide-title", options.get("hide_title")),
                ("data-embedgate-filters", options.get("filters")),
                html.binding(options),
                *html.presentation(options),
            ],
        )
        return html.script(self._sdk_url, options, module=False) + mount
