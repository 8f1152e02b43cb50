"""Tableau connected apps (direct trust): JWTs signed with the connected app's secret.

The header carries ``kid`` = the secret id and ``iss`` = the client id; the claims are
``iss`` (client id), ``sub`` (Tableau username), ``aud: "tableau"``, ``exp`` at most ten
minutes ahead, ``jti``, ``scp`` (``["tableau:views:embed"]``) and the user attributes as
top-level claims (``"Region": "East"``), which Tableau's user attribute functions read.
With ``EMBEDGATE_TABLEAU_ON_DEMAND_ACCESS`` the token also carries
``"https://tableau.com/oda": "true"`` and the principal's groups in
``"https://tableau.com/groups"``. The page shows ``<tableau-viz src=... token=...>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ConfigurationError, PrincipalError
from ..issuers.base import IssueRequest
from ..issuers.signer import REGISTERED_CLAIMS, ClaimsLayout, LocalSigner
from ..keys import KeySet, SigningKey
from ..token import EmbedToken
from ..urls import check_path_id, origin_of
from . import html
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url

MAX_TTL: Final = 600
AUDIENCE: Final = "tableau"
ODA_CLAIM: Final = "https://tableau.com/oda"
GROUPS_CLAIM: Final = "https://tableau.com/groups"
SCRIPT_PATH: Final = "/javascripts/api/tableau.embedding.3.latest.min.js"
SETTINGS: Final = (
    "client_id",
    "secret_id",
    "scopes",
    "username",
    "on_demand_access",
    "script_url",
)


def _attribute(value: Any) -> str | list[str]:
    # Tableau user attribute functions compare strings.
    if isinstance(value, tuple):
        return [_attribute(item) for item in value]  # type: ignore[misc]
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def tableau_layout(scopes: tuple[str, ...], on_demand: bool) -> ClaimsLayout:
    """``scp`` plus the user attributes (and the on-demand access claims)."""

    def claims(request: IssueRequest) -> dict[str, Any]:
        principal = request.principal
        out: dict[str, Any] = {"scp": list(scopes)}
        for key, value in principal.attributes.items():
            if key in REGISTERED_CLAIMS or key == "scp" or key.startswith("https://tableau.com/"):
                raise PrincipalError(f"attributes.{key}", "clashes with a Tableau JWT claim")
            out[key] = _attribute(value)
        if on_demand:
            out[ODA_CLAIM] = "true"
            out[GROUPS_CLAIM] = list(principal.groups)
        return out

    return claims


class TableauSigner(LocalSigner):
    """Connected-app tokens; ``sub`` is the subject, or the email with
    ``EMBEDGATE_TABLEAU_USERNAME=email``."""

    def __init__(self, keys: KeySet, *, username: str, **kwargs: Any) -> None:
        super().__init__(keys, **kwargs)
        self._username = username

    def claims(self, request: IssueRequest) -> dict[str, Any]:
        claims = super().claims(request)
        if self._username == "email":
            if request.principal.email is None:
                raise PrincipalError(
                    "email", "is the Tableau username (EMBEDGATE_TABLEAU_USERNAME)"
                )
            claims["sub"] = request.principal.email
        return claims


class TableauProfile(ProfileBase):
    """Tableau embeds: ``viz`` (``<tableau-viz>``)."""

    name = "tableau"
    snippet_kinds = ("viz",)

    def browser_policy(self) -> BrowserPolicy:
        """The ``<tableau-viz>`` element's ``token``."""
        return BrowserPolicy.for_urls(self._base, attributes=("token",))

    def __init__(self) -> None:
        self._base: str | None = None
        self._script_url: str | None = None

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> TableauSigner:
        opts = ProfileOptions(self.name, options, SETTINGS)
        if config.ttl > MAX_TTL:
            raise ConfigurationError(
                "EMBEDGATE_TTL",
                f"Tableau refuses tokens that expire more than {MAX_TTL} s ahead; got {config.ttl}",
            )
        if config.secret is None:
            raise ConfigurationError(
                "EMBEDGATE_SECRET", "set the connected app's secret value (direct trust)"
            )
        client_id = opts.require("client_id", " (the connected app's client id)")
        secret_id = opts.require("secret_id", " (the id of the connected app's secret)")
        production = config.is_production
        if config.provider_url is not None:
            self._base = check_url(
                "EMBEDGATE_PROVIDER_URL", config.provider_url, production=production
            )
        default_script = None if self._base is None else self._base + SCRIPT_PATH
        self._script_url = opts.url("script_url", default_script, production=production)
        key = SigningKey.hmac(config.secret, "HS256", kid=secret_id)
        return TableauSigner(
            KeySet([key]),
            username=opts.choice("username", ("subject", "email"), "subject"),
            issuer=client_id,
            audience=AUDIENCE,
            typ=config.typ,
            layout=tableau_layout(
                opts.names("scopes", ("tableau:views:embed",)),
                opts.boolean("on_demand_access", False),
            ),
            extra_headers={"iss": client_id},
            size_budget=config.token_size_budget,
            name=self.name,
            max_ttl=MAX_TTL,
        )

    def _view_url(self, resource: str) -> str:
        if resource.startswith(("https://", "http://")):
            parts = urlsplit(resource)
            origin = origin_of(resource)
            if not parts.hostname or origin is None:
                raise ConfigurationError("tableau snippet", f"not a view URL: {resource!r}")
            return resource
        if self._base is None:
            raise ConfigurationError(
                "EMBEDGATE_PROVIDER_URL",
                "set the Tableau site URL, or give the view's full URL as the resource",
            )
        view = check_path_id("tableau snippet", resource.lstrip("/"), segments=4)
        return f"{self._base}/views/{view}"

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        self.check_kind(kind)
        html.check_options(self.name, kind, options, ("toolbar", "hide_tabs", "device"))
        if not resource:
            raise ConfigurationError("tableau snippet", "needs the view (Workbook/View or URL)")
        if self._script_url is None:
            raise ConfigurationError(
                "EMBEDGATE_TABLEAU_SCRIPT_URL",
                "set it (or EMBEDGATE_PROVIDER_URL) so the page can load the Embedding API",
            )
        hide_tabs = options.get("hide_tabs", "").lower() in ("true", "1", "yes")
        viz = html.element(
            "tableau-viz",
            [
                ("src", self._view_url(resource)),
                ("token", token.token),
                ("toolbar", options.get("toolbar")),
                ("hide-tabs", "" if hide_tabs else None),
                ("device", options.get("device")),
                ("data-embedgate-token", "token"),
                html.binding(options),
                *html.presentation(options),
            ],
        )
        return html.script(self._script_url, options) + viz
