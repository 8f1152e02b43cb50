"""What every issuer (local signer, remote minter, signed-URL builder) looks like."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..principal import Principal
from ..token import EmbedToken


@dataclass(frozen=True)
class IssueRequest:
    """One issuance: for whom, for which resource (dashboard id...), when, for how long.

    ``retry_answered=False`` asks a remote issuer not to retry, within this call, failures
    the provider saw (5xx answers, read timeouts): the token service backs off instead, so
    a failing provider gets at most one call per session per backoff window. Requests that
    never reached it (connection refused) are still retried.
    """

    principal: Principal
    now: float
    ttl: int
    resource: str | None = None
    retry_answered: bool = True


@runtime_checkable
class Issuer(Protocol):
    """Turns an :class:`IssueRequest` into an :class:`EmbedToken`.

    ``issue`` is the sync face (WSGI, CLI), ``aissue`` the async face (ASGI). Issuers that
    do no I/O implement ``aissue`` by calling ``issue`` and may say so with a class
    attribute ``does_io = False`` (the service then mints inline, with no thread or task
    to bound the caller's wait); any other issuer is assumed to do I/O.
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


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts (seconds) and retries for one provider."""

    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.2
    backoff_max: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Backoff before retry number ``attempt`` (0-based): exponential, half jittered."""
        base = min(self.backoff_max, self.backoff * 2.0**attempt)
        return base / 2 + rng.random() * base / 2
