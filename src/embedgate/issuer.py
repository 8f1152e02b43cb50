"""What every issuer (local signer, remote minter, signed-URL builder) looks like."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .principal import Principal
from .token import EmbedToken


@dataclass(frozen=True)
class IssueRequest:
    """One issuance: for whom, for which resource (dashboard id...), when, for how long."""

    principal: Principal
    now: float
    ttl: int
    resource: str | None = None


@runtime_checkable
class Issuer(Protocol):
    """Turns an :class:`IssueRequest` into an :class:`EmbedToken`.

    ``issue`` is the sync face (WSGI, CLI), ``aissue`` the async face (ASGI). Issuers that
    do no I/O implement ``aissue`` by calling ``issue``.
    """

    @property
    def name(self) -> str:
        """Provider name used in errors and logs."""
        ...

    def cache_scope(self) -> str:
        """What besides the principal makes a token distinct (audience, key id, ...)."""
        ...

    def issue(self, request: IssueRequest) -> EmbedToken: ...

    async def aissue(self, request: IssueRequest) -> EmbedToken: ...

    def jwks(self) -> dict[str, Any] | None:
        """Public keys to publish, or None when there is nothing to publish."""
        ...
