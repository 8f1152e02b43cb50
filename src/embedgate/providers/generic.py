"""The generic profile: embedgate's own claim layout, signed locally (HMAC or asymmetric)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..config import Config
from ..errors import ConfigurationError
from ..keyring import keyset_from_config
from ..keys import KeySet, SigningKey
from ..signer import LocalSigner
from ..token import EmbedToken
from . import html
from .base import ProfileBase


class GenericProfile(ProfileBase):
    """Any provider that verifies a JWT the host signs (Cube, Lightdash, a home-grown one).

    Snippets: ``iframe`` (option ``url``, a URL template with ``{token}``, ideally in the
    fragment so it stays out of server logs, and optionally ``{resource}``) and ``element``
    (a custom element, option ``tag``, carrying the token in option ``attribute``, default
    ``token``, and the resource in ``data-resource``). One token per session serves both.
    """

    name = "generic"
    snippet_kinds = ("iframe", "element")

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
            html.check_url_template("generic snippet option 'url'", template)
            template = template.replace("{resource}", quote(resource or "", safe=""))
            return html.element(
                "iframe",
                [
                    ("src", html.fill_token(template, token.token)),
                    ("data-embedgate-token", "src"),
                    ("data-embedgate-url-template", template),
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
                *html.presentation(options),
            ],
        )
