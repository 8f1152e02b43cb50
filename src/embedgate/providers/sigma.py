"""Sigma Computing: JWT-signed embed URLs.

Documented in Sigma's help center, "Create an embed API with JSON Web Tokens"
(https://help.sigmacomputing.com/docs/create-an-embed-api-with-json-web-tokens) and the
"JSON Web Token claims reference"
(https://help.sigmacomputing.com/docs/json-web-token-claims-reference): no server call;
the host signs an HS256 JWT with the embed secret, the header's ``kid`` is the embed
client id, and the URL of the workbook (or page, or element) carries it as ``:jwt`` with
``:embed=true``. Claims: ``sub`` (the user's email), ``jti`` (unique: Sigma refuses a
replayed one), ``iat``, ``exp`` (at most 30 days after ``iat``), ``iss`` (the client id),
``ver`` and, with version 1.1, ``aud: "sigmacomputing"``; embed users also get
``first_name``, ``last_name``, ``account_type``, ``teams`` and ``user_attributes`` (row-level
security).

Because each ``jti`` works once, every render and every refresh gets a new URL: the
credential is bound to the workbook it opens (like Looker's), never cached.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import jwt

from ..config import Config
from ..errors import ConfigurationError, PrincipalError
from ..issuers.base import IssueRequest
from ..issuers.signed_url import SignedUrl, SignedUrlIssuer
from ..keys import MIN_HMAC_BYTES
from ..principal import Principal
from ..secret import Secret
from ..token import EmbedToken
from . import html
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions, check_url

BASE_URL: Final = "https://app.sigmacomputing.com"
AUDIENCE: Final = "sigmacomputing"
MAX_LIFETIME: Final = 30 * 24 * 3600
KINDS: Final = ("workbook",)
SETTINGS: Final = ("client_id", "org", "version", "account_type", "username", "session_length")
# One path segment of Sigma's URLs: a slug ("My-Workbook-3f2a...") or an id, never a dot
# segment, a slash, a backslash or anything a browser would re-interpret.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_~-]{0,199}$")
_KIND_PREFIXES: Final = ("workbook", "page", "element")


def parse_resource(resource: str | None) -> str:
    """``"<workbook-slug>"`` or ``"<workbook-slug>/page/<id>"`` or
    ``"<workbook-slug>/element/<id>"``, as the path after ``/{org}/workbook/``."""
    if not resource:
        raise ConfigurationError("sigma resource", "needs the workbook (its URL slug)")
    parts = resource.split("/")
    valid = (len(parts) == 1 or (len(parts) == 3 and parts[1] in _KIND_PREFIXES[1:])) and all(
        _SEGMENT.match(part) for part in parts[::2]
    )
    if not valid:
        raise ConfigurationError("sigma resource", f"not a workbook path: {resource!r}")
    return resource


class SigmaSigner:
    """Signs one embed URL per issuance (a fresh ``jti``)."""

    def __init__(
        self,
        *,
        secret: Secret,
        client_id: str,
        base_url: str,
        org: str,
        version: str,
        account_type: str | None,
        username: str,
        session_length: int,
    ) -> None:
        self._secret = secret
        self.client_id = client_id
        self.base_url = base_url
        self.org = org
        self.version = version
        self.account_type = account_type
        self.username = username
        self.session_length = session_length

    def claims(self, request: IssueRequest, jti: str) -> dict[str, Any]:
        principal = request.principal
        now = int(request.now)
        lifetime = max(1, min(self.session_length, request.ttl, MAX_LIFETIME))
        claims: dict[str, Any] = {
            "sub": self.user(principal),
            "jti": jti,
            "iat": now,
            "exp": now + lifetime,
            "iss": self.client_id,
            "ver": self.version,
        }
        if self.version == "1.1":
            claims["aud"] = AUDIENCE
        first, _, last = (principal.name or "").partition(" ")
        if first:
            claims["first_name"] = first
        if last.strip():
            claims["last_name"] = last.strip()
        if self.account_type is not None:
            claims["account_type"] = self.account_type
        if principal.groups:
            claims["teams"] = list(principal.groups)
        attributes = {
            key: ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            for key, value in principal.attributes.items()
        }
        if principal.tenant is not None:
            attributes.setdefault("tenant", principal.tenant)
        if attributes:
            claims["user_attributes"] = attributes
        return claims

    def user(self, principal: Principal) -> str:
        value = principal.email if self.username == "email" else principal.subject
        if not value:
            raise PrincipalError("email", "is the Sigma user (EMBEDGATE_SIGMA_USERNAME=email)")
        if any(ch.isspace() for ch in value):
            raise PrincipalError(self.username, "Sigma user names may not contain spaces")
        return value

    def __call__(self, request: IssueRequest) -> SignedUrl:
        path = parse_resource(request.resource)
        jti = secrets.token_hex(16)
        claims = self.claims(request, jti)
        token = jwt.encode(
            claims,
            self._secret.reveal_bytes(),
            algorithm="HS256",
            headers={"kid": self.client_id},
        )
        url = f"{self.base_url}/{quote(self.org, safe='')}/workbook/{path}?:jwt={token}&:embed=true"
        return SignedUrl(
            url=url, nonce=jti, issued_at=float(claims["iat"]), expires_at=float(claims["exp"])
        )

    def scope(self) -> str:
        fields = (self.client_id, self.base_url, self.org, self.version, self.account_type)
        return repr((*fields, self.username, self.session_length))


class SigmaProfile(ProfileBase):
    """Sigma embeds: ``workbook`` iframes (a workbook, one of its pages or elements)."""

    name = "sigma"
    snippet_kinds = KINDS

    def browser_policy(self) -> BrowserPolicy:
        """Nothing to write: the embed URL is never swapped (``data-embedgate-refresh``)."""
        return BrowserPolicy()

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> SignedUrlIssuer:
        opts = ProfileOptions(self.name, options, SETTINGS)
        base = check_url(
            "EMBEDGATE_PROVIDER_URL",
            config.provider_url or BASE_URL,
            production=config.is_production,
        )
        if config.secret is None or len(config.secret) < MIN_HMAC_BYTES:
            raise ConfigurationError(
                "EMBEDGATE_SECRET",
                "set Sigma's embed secret (from Administration > Developer access)",
            )
        org = opts.require("org", " (your organization's slug in Sigma URLs)")
        if not _SEGMENT.match(org):
            raise ConfigurationError(opts.setting("org"), f"expected a URL slug, got {org!r}")
        signer = SigmaSigner(
            secret=config.secret,
            client_id=opts.require("client_id", " (the embed client id, sent as kid)"),
            base_url=base,
            org=org,
            version=opts.choice("version", ("1.0", "1.1"), "1.1"),
            account_type=opts.text("account_type"),
            username=opts.choice("username", ("email", "subject"), "email"),
            session_length=opts.integer(
                "session_length", config.ttl, minimum=60, maximum=MAX_LIFETIME
            ),
        )
        return SignedUrlIssuer(self.name, signer, signer.scope())

    @property
    def session_tokens(self) -> bool:
        """Never: each signed URL opens one workbook and works once."""
        return False

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        self.check_kind(kind)
        return parse_resource(resource)

    def endpoint_payload(self, token: EmbedToken, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "url": token.url}

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        """An iframe on the signed URL. Sigma asks the user to reload when its session
        ends, so embedgate.js does not swap URLs under a running workbook
        (``data-embedgate-refresh="none"``)."""
        self.check_kind(kind)
        html.check_options(self.name, kind, options)
        if not token.url:
            raise ConfigurationError("sigma snippet", "the token carries no signed URL")
        return html.element(
            "iframe",
            [
                ("src", token.url),
                ("data-embedgate-resource", parse_resource(resource)),
                ("data-embedgate-refresh", "none"),
                html.binding(options),
                ("frameborder", "0"),
                *html.presentation(options),
            ],
        )
