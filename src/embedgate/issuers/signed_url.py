"""The signed-URL issuer: the credential is a URL the provider accepts once.

Each issuance makes a new URL (fresh nonce and time), marked ``single_use`` so the token
service never caches it: a page render, or a browser refresh, gets its own URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..token import EmbedToken
from .base import IssueRequest


@dataclass(frozen=True)
class SignedUrl:
    """A signed URL, its one-time nonce, when it was signed and when its session ends."""

    url: str = field(repr=False)
    nonce: str
    issued_at: float
    expires_at: float


class SignedUrlIssuer:
    """Issues one-time signed URLs made by ``sign`` (a provider's URL format)."""

    # No I/O: the token service mints inline instead of waiting on a thread or task.
    does_io = False

    def __init__(self, name: str, sign: Callable[[IssueRequest], SignedUrl], scope: str) -> None:
        self._name = name
        self._sign = sign
        self._scope = scope

    @property
    def name(self) -> str:
        return self._name

    def cache_scope(self) -> str:
        return f"{self._name}|{self._scope}"

    def issue(self, request: IssueRequest) -> EmbedToken:
        signed = self._sign(request)
        return EmbedToken(
            token=signed.url,
            expires_at=signed.expires_at,
            issued_at=signed.issued_at,
            subject=request.principal.subject,
            jti=signed.nonce,
            single_use=True,
            url=signed.url,
        )

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        # An HMAC over a few hundred bytes: no I/O to await.
        return self.issue(request)

    def jwks(self) -> dict[str, Any] | None:
        return None

    def __repr__(self) -> str:
        return f"SignedUrlIssuer(name={self._name!r})"
