"""The generic profile: embedgate's own claim layout, signed locally (HMAC or asymmetric)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..config import Config
from ..errors import ConfigurationError
from ..issuers.signer import LocalSigner
from ..keys import KeySet, SigningKey, keyset_from_config
from ..token import EmbedToken
from ..urls import PAGE_ORIGIN, origin_of
from . import html
from .base import ProfileBase
from .browser import ANY_ATTRIBUTE, BrowserPolicy


class GenericProfile(ProfileBase):
    """Any provider that verifies a JWT the host signs (Cube, Lightdash, a home-grown one).

    Snippets: ``iframe`` (option ``url``, a URL template with ``{token}``, ideally in the
    fragment so it stays out of server logs, and optionally ``{resource}``) and ``element``
    (a custom element, option ``tag``, carrying the token in option ``attribute``, default
    ``token``, and the resource in ``data-resource``). One token per session serves both.
    An iframe's URL is on the page's own site or on ``EMBEDGATE_PROVIDER_URL``'s origin.
    """

    name = "generic"
    snippet_kinds = ("iframe", "element")
    _origins: tuple[str, ...] = (PAGE_ORIGIN,)

    def browser_policy(self) -> BrowserPolicy:
        """Iframe URLs on the page's site or the provider's; a custom element's attribute."""
        return BrowserPolicy(origins=self._origins, attributes=("src", ANY_ATTRIBUTE))

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> LocalSigner:
        if config.mode == "api_key":
            # Sandbox: the provider API key itself is the HMAC secret both sides share.
            assert config.api_key is not None
            keys = KeySet(
                [
                    SigningKey.hmac(
                        config.api_key, config.algorithm or "HS256", setting="EMBEDGATE_API_KEY"
                    )
                ]
            )
        else:
            keys = keyset_from_config(config)
        if options:
            raise ConfigurationError(
                f"EMBEDGATE_GENERIC_{sorted(options)[0].upper()}",
                "the generic provider has no such setting",
            )
        if config.provider_url is not None:
            origin = origin_of(config.provider_url)
            if origin is None:
                raise ConfigurationError("EMBEDGATE_PROVIDER_URL", "expected an http(s) URL")
            self._origins = (PAGE_ORIGIN, origin)
        return LocalSigner(
            keys,
            issuer=config.issuer,
            audience=config.audience,
            typ=config.typ,
            size_budget=config.token_size_budget,
            name=self.name,
            max_ttl=config.max_ttl,
        )

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        self.check_kind(kind)
        if kind == "iframe":
            html.check_options(self.name, kind, options, ("url",))
            template = options.get("url", "")
            if html.TOKEN_PLACEHOLDER not in template:
                raise ConfigurationError(
                    "generic snippet option 'url'", "expected a URL template containing {token}"
                )
            template = template.replace("{resource}", quote(resource or "", safe=""))
            html.check_url_template(
                "generic snippet option 'url' (another origin needs EMBEDGATE_PROVIDER_URL)",
                template,
                self._origins,
            )
            return html.element(
                "iframe",
                [
                    ("src", html.fill_token(template, token.token)),
                    ("data-embedgate-token", "src"),
                    ("data-embedgate-url-template", template),
                    html.binding(options),
                    *html.presentation(options),
                ],
            )
        html.check_options(self.name, kind, options, ("tag", "attribute"))
        tag = html.check_custom_element("generic snippet option 'tag'", options.get("tag", ""))
        attribute = html.check_attribute_name(
            "generic snippet option 'attribute'", options.get("attribute", "token")
        )
        return html.element(
            tag,
            [
                (attribute, token.token),
                ("data-embedgate-token", attribute),
                ("data-resource", resource),
                html.binding(options),
                *html.presentation(options),
            ],
        )
