"""Looker signed embedding: one-time URLs signed with HMAC-SHA1 and the embed secret.

The signature covers, newline-joined in this order: host, path (``/login/embed/`` + the
percent-encoded embed URL), nonce, time, session_length, external_user_id, permissions,
models, group_ids, external_group_id (when given), user_attributes, access_filters, each
JSON-encoded as it appears in the query string. Looker accepts each URL once (the nonce)
and only shortly after ``time``; the session it opens lasts ``session_length`` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

from ..config import Config
from ..errors import ConfigurationError
from ..issuers.base import IssueRequest
from ..issuers.signed_url import SignedUrl, SignedUrlIssuer
from ..keys import MIN_HMAC_BYTES
from ..secret import Secret
from ..token import EmbedToken
from ..urls import check_path_id
from . import html
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url

DEFAULT_PERMISSIONS: Final = (
    "access_data",
    "see_user_dashboards",
    "see_lookml_dashboards",
    "see_looks",
)
MAX_SESSION: Final = 30 * 24 * 3600
KINDS: Final = ("dashboard", "look", "explore")
_PATHS: Final = {
    "dashboard": "/embed/dashboards/",
    "look": "/embed/looks/",
    "explore": "/embed/explore/",
}
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}(/[A-Za-z0-9_.:-]{1,128})?$")
SETTINGS: Final = ("models", "permissions", "group_ids", "session_length", "force_logout_login")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class LookerEmbed:
    """Everything a signed embed URL says, before encoding."""

    host: str
    embed_url: str
    nonce: str
    time: int
    session_length: int
    external_user_id: str
    permissions: tuple[str, ...]
    models: tuple[str, ...]
    group_ids: tuple[int, ...] = ()
    external_group_id: str | None = None
    user_attributes: Mapping[str, Any] = field(default_factory=dict)
    access_filters: Mapping[str, Any] = field(default_factory=dict)
    first_name: str | None = None
    last_name: str | None = None
    force_logout_login: bool = True

    @property
    def path(self) -> str:
        return "/login/embed/" + quote(self.embed_url, safe="")

    def params(self) -> dict[str, str]:
        """The query parameters, JSON-encoded, without the signature."""
        params = {
            "nonce": _json(self.nonce),
            "time": _json(self.time),
            "session_length": _json(self.session_length),
            "external_user_id": _json(self.external_user_id),
            "permissions": _json(list(self.permissions)),
            "models": _json(list(self.models)),
            "group_ids": _json(list(self.group_ids)),
            "user_attributes": _json(dict(self.user_attributes)),
            "access_filters": _json(dict(self.access_filters)),
            "first_name": _json(self.first_name),
            "last_name": _json(self.last_name),
            "force_logout_login": _json(self.force_logout_login),
        }
        if self.external_group_id is not None:
            params["external_group_id"] = _json(self.external_group_id)
        return params

    def string_to_sign(self) -> str:
        p = self.params()
        fields = [
            self.host,
            self.path,
            p["nonce"],
            p["time"],
            p["session_length"],
            p["external_user_id"],
            p["permissions"],
            p["models"],
            p["group_ids"],
        ]
        if "external_group_id" in p:
            fields.append(p["external_group_id"])
        fields += [p["user_attributes"], p["access_filters"]]
        return "\n".join(fields)

    def signature(self, secret: Secret) -> str:
        digest = hmac.new(
            secret.reveal_bytes(), self.string_to_sign().encode("utf-8"), hashlib.sha1
        ).digest()
        return base64.b64encode(digest).decode("ascii")

    def url(self, secret: Secret, scheme: str = "https") -> str:
        params = {**self.params(), "signature": self.signature(secret)}
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        return f"{scheme}://{self.host}{self.path}?{query}"


def parse_resource(resource: str | None) -> tuple[str, str]:
    """``"dashboard:12"``, ``"look:7"``, ``"explore:model/view"``; a bare id is a dashboard."""
    if not resource:
        raise ConfigurationError("looker resource", "needs the dashboard, look or explore id")
    kind, sep, ident = resource.partition(":")
    if not sep or kind not in KINDS:
        kind, ident = "dashboard", resource
    if not _ID.match(ident) or (kind == "explore") != ("/" in ident):
        raise ConfigurationError("looker resource", f"not a {kind} id: {resource!r}")
    # Signed into the embed path: no segment the browser or Looker would read as another path.
    check_path_id("looker resource", ident, segments=2 if kind == "explore" else 1)
    return kind, ident


def _attribute(value: Any) -> Any:
    # Looker filter expressions read a comma-separated list as several values.
    if isinstance(value, tuple):
        return ",".join("" if item is None else str(item) for item in value)
    return value


class LookerSigner:
    """Builds the signed URL for one issuance (fresh nonce, the request's time)."""

    def __init__(
        self,
        *,
        secret: Secret,
        host: str,
        scheme: str,
        models: tuple[str, ...],
        permissions: tuple[str, ...],
        group_ids: tuple[int, ...],
        session_length: int,
        force_logout_login: bool,
    ) -> None:
        self._secret = secret
        self.host = host
        self._scheme = scheme
        self.models = models
        self.permissions = permissions
        self.group_ids = group_ids
        self.session_length = session_length
        self.force_logout_login = force_logout_login

    def embed(self, request: IssueRequest, nonce: str) -> LookerEmbed:
        kind, ident = parse_resource(request.resource)
        principal = request.principal
        first, _, last = (principal.name or "").partition(" ")
        return LookerEmbed(
            host=self.host,
            embed_url=_PATHS[kind] + ident,
            nonce=nonce,
            time=int(request.now),
            session_length=self.session_length,
            external_user_id=principal.subject,
            permissions=self.permissions,
            models=self.models,
            group_ids=self.group_ids,
            external_group_id=principal.tenant,
            user_attributes={k: _attribute(v) for k, v in principal.attributes.items()},
            first_name=first or None,
            last_name=last.strip() or None,
            force_logout_login=self.force_logout_login,
        )

    def __call__(self, request: IssueRequest) -> SignedUrl:
        nonce = secrets.token_hex(16)
        embed = self.embed(request, nonce)
        return SignedUrl(
            url=embed.url(self._secret, self._scheme),
            nonce=nonce,
            issued_at=float(embed.time),
            expires_at=float(embed.time + self.session_length),
        )

    def scope(self) -> str:
        return repr((self.host, self.models, self.permissions, self.group_ids, self.session_length))


class LookerProfile(ProfileBase):
    """Looker embeds: ``dashboard``, ``look`` and ``explore`` iframes with one-time URLs."""

    name = "looker"
    snippet_kinds = KINDS
    _instance: str | None = None

    def browser_policy(self) -> BrowserPolicy:
        """Nothing to write: a one-time URL is never swapped (``data-embedgate-refresh``)."""
        return BrowserPolicy.for_urls(self._instance)

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> SignedUrlIssuer:
        opts = ProfileOptions(self.name, options, SETTINGS)
        if config.provider_url is None:
            raise ConfigurationError(
                "EMBEDGATE_PROVIDER_URL", "the Looker instance URL is required"
            )
        base = check_url(
            "EMBEDGATE_PROVIDER_URL", config.provider_url, production=config.is_production
        )
        parts = urlsplit(base)
        if parts.path:
            raise ConfigurationError("EMBEDGATE_PROVIDER_URL", "expected the instance URL, no path")
        if config.secret is None or len(config.secret) < MIN_HMAC_BYTES:
            raise ConfigurationError(
                "EMBEDGATE_SECRET",
                f"set Looker's embed secret ({MIN_HMAC_BYTES} bytes or more)",
            )
        models = opts.names("models")
        if not models:
            raise ConfigurationError(
                opts.setting("models"), "is required (the LookML models to grant)"
            )
        group_ids: list[int] = []
        for item in opts.names("group_ids"):
            if not item.isdigit():
                raise ConfigurationError(
                    opts.setting("group_ids"), f"expected numeric ids, got {item!r}"
                )
            group_ids.append(int(item))
        self._instance = base
        signer = LookerSigner(
            secret=config.secret,
            host=parts.netloc,
            scheme=parts.scheme,
            models=models,
            permissions=opts.names("permissions", DEFAULT_PERMISSIONS),
            group_ids=tuple(group_ids),
            session_length=opts.integer("session_length", 3600, minimum=60, maximum=MAX_SESSION),
            force_logout_login=opts.boolean("force_logout_login", True),
        )
        return SignedUrlIssuer(self.name, signer, signer.scope())

    @property
    def session_tokens(self) -> bool:
        """Never: each signed URL opens one dashboard, look or explore."""
        return False

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        self.check_kind(kind)
        return f"{kind}:{resource}"

    def endpoint_payload(self, token: EmbedToken, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "url": token.url}

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        """An iframe on the one-time URL. It carries no ``data-embedgate-token`` and says
        ``data-embedgate-refresh="none"``: the URL opens a Looker session that lasts
        ``EMBEDGATE_LOOKER_SESSION_LENGTH`` on its own, and swapping in a new one-time URL
        would reload the dashboard, so embedgate.js leaves the iframe alone."""
        self.check_kind(kind)
        html.check_options(self.name, kind, options)
        if not token.url:
            raise ConfigurationError("looker snippet", "the token carries no signed URL")
        return html.element(
            "iframe",
            [
                ("src", token.url),
                ("data-embedgate-resource", f"{kind}:{resource}"),
                ("data-embedgate-refresh", "none"),
                html.binding(options),
                ("frameborder", "0"),
                *html.presentation(options),
            ],
        )
