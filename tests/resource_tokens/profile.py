"""A provider profile for these tests: the generic profile (one session token serves
``iframe`` and ``element``) plus a resource-bound kind, ``report``, whose iframe gets a token
of its own, as Metabase static embeds do. It lets one page carry both kinds of token."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from embedgate.providers import html
from embedgate.providers.base import register_profile
from embedgate.providers.generic import GenericProfile
from embedgate.token import EmbedToken

NAME = "reports-test"


class ReportsProfile(GenericProfile):
    name = NAME
    snippet_kinds = ("iframe", "element", "report")

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        self.check_kind(kind)
        return f"report:{resource}" if kind == "report" else None

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        if kind != "report":
            return super().snippet(kind, resource, token, options)
        template = f"/reports/{quote(resource or '', safe='')}#token={html.TOKEN_PLACEHOLDER}"
        return html.element(
            "iframe",
            [
                ("src", html.fill_token(template, token.token)),
                ("data-embedgate-token", "src"),
                ("data-embedgate-url-template", template),
                ("data-embedgate-resource", f"report:{resource}"),
                html.binding(options),
            ],
        )


def register() -> None:
    """Make ``EMBEDGATE_PROVIDER=reports-test`` selectable (in a server process of a test)."""
    register_profile(ReportsProfile())
