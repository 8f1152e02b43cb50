"""Metabase: static embedding tokens, or JWT SSO tokens for the embedded analytics SDK.

``EMBEDGATE_METABASE_MODE=static`` (default) signs ``{resource: {dashboard|question: id},
params: {...locked parameters}, exp}`` with the embedding secret (``EMBEDGATE_SECRET``,
HS256); the iframe URL is ``{site}/embed/dashboard/{token}#bordered=true&titled=true``.
That puts the token in a URL path, where proxies and servers log it: keep
``EMBEDGATE_TTL`` short (the token is only good until ``exp``), and the browser script
reloads the iframe with a fresh token before it expires (Metabase itself cannot renew a
static embed).

``EMBEDGATE_METABASE_MODE=sso`` signs JWT SSO tokens (``email``, ``first_name``,
``last_name``, ``groups``, each other attribute as a top-level user attribute, ``exp``,
``iat``, ``jti``) with the JWT shared secret; the token endpoint then answers
``{"jwt": ...}`` as the SDK expects.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final
from urllib.parse import quote

from ..config import Config
from ..errors import ConfigurationError, PrincipalError
from ..issuers.base import IssueRequest
from ..issuers.signer import REGISTERED_CLAIMS, ClaimsLayout, LocalSigner
from ..keys import KeySet, keyset_from_config
from ..token import EmbedToken
from . import html
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url

log = logging.getLogger("embedgate")

KINDS: Final = ("dashboard", "question")
URL_TTL_WARNING: Final = 600
SSO_FIELDS: Final = frozenset({"email", "first_name", "last_name", "groups"})
SETTINGS: Final = ("mode", "resource_type", "params")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_resource(resource: str | None, default_kind: str) -> tuple[str, int | str]:
    """``"dashboard:12"`` -> ``("dashboard", 12)``; a bare id takes ``default_kind``.

    Numeric ids become integers (as Metabase's examples sign them); other ids (entity ids)
    stay strings.
    """
    if not resource:
        raise ConfigurationError(
            "metabase resource", "static embedding needs the dashboard or question id"
        )
    kind, sep, ident = resource.partition(":")
    if not sep:
        kind, ident = default_kind, resource
    if kind not in KINDS or not _ID.match(ident):
        raise ConfigurationError(
            "metabase resource", f"expected 'dashboard:<id>' or 'question:<id>', got {resource!r}"
        )
    return kind, int(ident) if ident.isdigit() else ident


def static_layout(default_kind: str, params: Mapping[str, str]) -> ClaimsLayout:
    """``resource`` and locked ``params`` (parameter name <- attribute name)."""

    def claims(request: IssueRequest) -> dict[str, Any]:
        kind, ident = parse_resource(request.resource, default_kind)
        locked: dict[str, Any] = {}
        principal = request.principal
        for param, attribute in params.items():
            if attribute == "tenant" and "tenant" not in principal.attributes:
                value: Any = principal.tenant
            else:
                value = principal.attributes.get(attribute)
            if value is None:
                # A locked parameter without a value would be refused by Metabase anyway.
                raise PrincipalError(
                    f"attributes.{attribute}", f"is required by the locked parameter {param!r}"
                )
            locked[param] = list(value) if isinstance(value, tuple) else value
        return {"resource": {kind: ident}, "params": locked}

    return claims


def sso_claims(request: IssueRequest) -> dict[str, Any]:
    """JWT SSO claims: identity fields, groups, and attributes as top-level keys."""
    principal = request.principal
    if principal.email is None:
        raise PrincipalError("email", "Metabase JWT SSO identifies users by email")
    first, _, last = (principal.name or "").partition(" ")
    claims: dict[str, Any] = {
        "email": principal.email,
        "first_name": first,
        "last_name": last.strip(),
        "groups": list(principal.groups),
    }
    for key, value in principal.attributes.items():
        if key in SSO_FIELDS or key in REGISTERED_CLAIMS:
            raise PrincipalError(f"attributes.{key}", "clashes with a Metabase JWT claim")
        claims[key] = list(value) if isinstance(value, tuple) else value
    return claims


class MetabaseStaticSigner(LocalSigner):
    """Static embedding tokens, each with its iframe URL."""

    def __init__(self, keys: KeySet, *, site: str, default_kind: str, **kwargs: Any) -> None:
        super().__init__(keys, **kwargs)
        self._site = site
        self._default_kind = default_kind

    def issue(self, request: IssueRequest) -> EmbedToken:
        token = super().issue(request)
        kind, _ = parse_resource(request.resource, self._default_kind)
        url = embed_url(self._site, kind, html.fill_token("{token}", token.token), fragment({}))
        return replace(token, url=url)


def fragment(options: Mapping[str, str]) -> str:
    """The iframe URL's fragment: ``bordered``, ``titled`` (true/false) and ``theme``."""
    parts = []
    for name in ("bordered", "titled"):
        value = options.get(name, "true")
        if value not in ("true", "false"):
            raise ConfigurationError(f"metabase snippet option {name!r}", "expected true or false")
        parts.append(f"{name}={value}")
    theme = options.get("theme")
    if theme:
        if theme not in ("night", "transparent"):
            raise ConfigurationError(
                "metabase snippet option 'theme'", "expected night or transparent"
            )
        parts.append(f"theme={theme}")
    return "&".join(parts)


def embed_url(site: str, kind: str, token_part: str, frag: str) -> str:
    """``{site}/embed/{kind}/{token}#{fragment}`` (``token_part`` already URL-safe)."""
    return f"{site}/embed/{kind}/{token_part}#{frag}"


class MetabaseProfile(ProfileBase):
    """Metabase embeds: ``dashboard`` and ``question`` iframes."""

    name = "metabase"
    snippet_kinds = KINDS

    def browser_policy(self) -> BrowserPolicy:
        """Static embedding: the iframe's URL on the Metabase site. SSO: nothing to write."""
        attributes = () if self._mode == "sso" else ("src",)
        return BrowserPolicy.for_urls(self._site, attributes=attributes)

    def __init__(self) -> None:
        self._site: str | None = None
        self._mode = "static"
        self._default_kind = "dashboard"

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> LocalSigner:
        opts = ProfileOptions(self.name, options, SETTINGS)
        self._mode = opts.choice("mode", ("static", "sso"), "static")
        self._default_kind = opts.choice("resource_type", KINDS, "dashboard")
        if config.provider_url is None:
            raise ConfigurationError("EMBEDGATE_PROVIDER_URL", "the Metabase site URL is required")
        self._site = check_url(
            "EMBEDGATE_PROVIDER_URL", config.provider_url, production=config.is_production
        )
        if config.secret is None:
            raise ConfigurationError(
                "EMBEDGATE_SECRET",
                "set Metabase's embedding secret key (static) or JWT shared secret (sso)",
            )
        common: dict[str, Any] = {
            "issuer": config.issuer,
            "audience": config.audience,
            "typ": config.typ,
            "size_budget": config.token_size_budget,
            "name": self.name,
            "max_ttl": config.max_ttl,
        }
        keys = keyset_from_config(config)
        if self._mode == "sso":
            if opts.present("params"):
                raise ConfigurationError(opts.setting("params"), "is only used in the static mode")
            return LocalSigner(keys, layout=sso_claims, **common)
        if config.ttl > URL_TTL_WARNING:
            log.warning(
                "embedgate: Metabase static embedding puts the token in the iframe URL path, "
                "where servers and proxies log it; EMBEDGATE_TTL=%d keeps it valid that long "
                "(%d s or less is advised)",
                config.ttl,
                URL_TTL_WARNING,
            )
        layout = static_layout(self._default_kind, opts.string_map("params"))
        return MetabaseStaticSigner(
            keys, site=self._site, default_kind=self._default_kind, layout=layout, **common
        )

    @property
    def session_tokens(self) -> bool:
        """Only the SSO mode has one: a static embedding token names its dashboard."""
        return self._mode == "sso"

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        self.check_kind(kind)
        # One SSO token serves every dashboard; a static token is bound to one resource.
        return None if self._mode == "sso" else f"{kind}:{resource}"

    def endpoint_payload(self, token: EmbedToken, payload: dict[str, Any]) -> dict[str, Any]:
        if self._mode == "sso":
            return {**payload, "jwt": token.token}
        return {**payload, "url": token.url} if token.url else payload

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        self.check_kind(kind)
        html.check_options(self.name, kind, options, ("bordered", "titled", "theme"))
        if self._site is None:
            raise ConfigurationError("EMBEDGATE_PROVIDER", "build_issuer() has not run yet")
        if not resource or not _ID.match(resource):
            raise ConfigurationError("metabase snippet", f"expected a {kind} id, got {resource!r}")
        frame: list[tuple[str, str | None]]
        if self._mode == "sso":
            # Interactive embedding logs in once; Metabase keeps its own session after that.
            src = html.fill_token(f"{self._site}/auth/sso?jwt={{token}}", token.token)
            frame = [("src", f"{src}&return_to={quote(f'/{kind}/{resource}', safe='')}")]
        else:
            template = embed_url(self._site, kind, html.TOKEN_PLACEHOLDER, fragment(options))
            frame = [
                ("src", html.fill_token(template, token.token)),
                ("data-embedgate-token", "src"),
                ("data-embedgate-url-template", template),
                ("data-embedgate-resource", f"{kind}:{resource}"),
                html.binding(options),
            ]
        frame += [("frameborder", "0"), ("allowtransparency", "true"), *html.presentation(options)]
        return html.element("iframe", frame)
