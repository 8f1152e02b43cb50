"""An OpenID Provider as a relying party sees it: its issuer and its signing keys, read
from its discovery document and JWKS (fetched lazily, cached, refetched for a new kid)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import jwt

from ..errors import VerificationError

MAX_DOCUMENT: Final = 1_048_576
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"


MAX_REDIRECTS: Final = 3


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the same origin (scheme, host and port), at most
    ``MAX_REDIRECTS`` times: the IdP's keys and documents never come from another host, nor
    over http after https."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            raise urllib.error.HTTPError(
                req.full_url, code, "redirect to another origin refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def fetch_json(url: str, timeout: float) -> dict[str, Any]:
    """GET a JSON object over http(s); VerificationError(code="keys_unavailable") if not.

    Redirects are followed only within the URL's origin: never to another host, port or
    scheme (an https document is never read over http)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise VerificationError("the IdP URL must be http or https", code="keys_unavailable")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            data = json.loads(response.read(MAX_DOCUMENT + 1)[:MAX_DOCUMENT])
    except (OSError, ValueError) as exc:
        raise VerificationError(
            f"cannot fetch the IdP document ({type(exc).__name__})", code="keys_unavailable"
        ) from None
    if not isinstance(data, dict):
        raise VerificationError("the IdP document is not a JSON object", code="keys_unavailable")
    return data


def _downgrades(source: str, target: str) -> bool:
    return urlsplit(source).scheme.lower() == "https" and urlsplit(target).scheme.lower() != "https"


class OIDCProvider:
    """The IdP's issuer and JWKS.

    Give ``metadata_url`` (the discovery document, as for Authlib's
    ``server_metadata_url``), or ``issuer`` (discovery at ``issuer`` +
    ``/.well-known/openid-configuration``), or ``issuer`` plus ``jwks_uri`` or a static
    ``jwks``. Nothing is fetched until a key is needed. The JWKS is refetched after
    ``refresh_after`` seconds, and at most every ``min_refetch`` seconds for an unknown kid.
    """

    def __init__(
        self,
        metadata_url: str | None = None,
        *,
        issuer: str | None = None,
        jwks_uri: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
        refresh_after: float = 3600.0,
        min_refetch: float = 30.0,
    ) -> None:
        if metadata_url is None and issuer is None:
            raise ValueError("give the IdP's metadata_url or its issuer")
        if metadata_url is None and jwks_uri is None and jwks is None:
            metadata_url = issuer.rstrip("/") + DISCOVERY_PATH  # type: ignore[union-attr]
        self.metadata_url = metadata_url
        self._issuer = issuer
        self._jwks_uri = jwks_uri
        self._static = dict(jwks) if jwks is not None else None
        self.timeout = timeout
        self.refresh_after = refresh_after
        self.min_refetch = min_refetch
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: list[dict[str, Any]] = []
        self._fetched_at = float("-inf")

    @property
    def issuer_hint(self) -> str | None:
        return self._issuer or self.metadata_url

    @property
    def issuer(self) -> str:
        """The issuer (``iss``) tokens from this IdP must carry."""
        if self._issuer is not None and self.metadata_url is None:
            return self._issuer
        found = self.metadata().get("issuer")
        if not isinstance(found, str) or not found:
            raise VerificationError("the discovery document has no issuer", code="keys_unavailable")
        if self._issuer is not None and found != self._issuer:
            raise VerificationError(
                "the discovery document names another issuer than the one configured",
                code="wrong_issuer",
            )
        return found

    def metadata(self) -> dict[str, Any]:
        """The discovery document (fetched once)."""
        if self.metadata_url is None:
            return {}
        with self._lock:
            if self._metadata is None:
                self._metadata = fetch_json(self.metadata_url, self.timeout)
            return self._metadata

    def _load_keys(self) -> None:
        if self._static is not None:
            keys = self._static.get("keys")
        else:
            uri = self._jwks_uri or self.metadata().get("jwks_uri")
            if not isinstance(uri, str):
                raise VerificationError(
                    "the discovery document has no jwks_uri", code="keys_unavailable"
                )
            if self.metadata_url is not None and _downgrades(self.metadata_url, uri):
                raise VerificationError(
                    "the discovery document's jwks_uri is http where the document is https",
                    code="keys_unavailable",
                )
            keys = fetch_json(uri, self.timeout).get("keys")
        if not isinstance(keys, list):
            raise VerificationError("the IdP's JWKS has no keys", code="keys_unavailable")
        with self._lock:
            self._keys = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
            self._fetched_at = time.monotonic()

    def _find(self, kid: str | None, algorithm: str) -> dict[str, Any] | None:
        with self._lock:
            keys = list(self._keys)
        if kid is not None:
            return next((k for k in keys if k.get("kid") == kid), None)
        # No kid: only unambiguous when one key could have made this signature.
        fitting = [k for k in keys if k.get("alg") in (None, algorithm)]
        return fitting[0] if len(fitting) == 1 else None

    def key(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        """The IdP's public key ``kid`` for ``algorithm`` (refetching the JWKS once for an
        unknown kid); VerificationError(code="unknown_key") if it has none."""
        if time.monotonic() - self._fetched_at > self.refresh_after:
            self._load_keys()
        found = self._find(kid, algorithm)
        stale = time.monotonic() - self._fetched_at > self.min_refetch
        if found is None and self._static is None and stale:
            self._load_keys()
            found = self._find(kid, algorithm)
        if found is None:
            raise VerificationError(
                "logout token was signed with an unknown key", code="unknown_key"
            )
        if found.get("alg") not in (None, algorithm):
            raise VerificationError(
                f"the IdP's key is for {found.get('alg')}, not {algorithm}",
                code="algorithm_mismatch",
            )
        try:
            return jwt.PyJWK(found, algorithm)
        except jwt.PyJWTError:
            raise VerificationError(
                f"the IdP's key does not fit {algorithm}", code="algorithm_mismatch"
            ) from None

    def __repr__(self) -> str:
        return f"OIDCProvider(issuer={self.issuer_hint!r})"
