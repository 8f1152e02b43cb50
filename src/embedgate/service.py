"""The token engine: principal -> policy -> cache key -> cache or issuer -> token.

No HTTP here. The sync face (:meth:`TokenService.get_token`) serves WSGI and the CLI, the
async face (:meth:`TokenService.aget_token`) serves ASGI; both apply the same rules,
which live in the plain methods :meth:`_lookup` and :meth:`_admit`.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, replace

from . import telemetry
from .audit import AuditTrail, Reason
from .cache import CacheBackend, MemoryCache, cache_key, session_tag
from .canonical import short_hash
from .clock import SYSTEM_CLOCK, Clock
from .errors import ConfigurationError, IssuerError, PrincipalError
from .issuer import Issuer, IssueRequest
from .principal import AttributePolicy, Principal
from .singleflight import SingleFlight
from .token import EmbedToken

log = logging.getLogger("embedgate")

DEFAULT_TTL = 300
DEFAULT_MAX_TTL = 3600
DEFAULT_MIN_REMAINING = 30
MIN_MARGIN = 60.0
MARGIN_SHARE = 0.2
JITTER_SHARE = 0.1
# Appended to the issuer's cache scope for grant markers: never a key a token lives under.
GRANT_SCOPE = "\x00grant"


@dataclass(frozen=True)
class TokenTiming:
    """How long tokens live and when they are refreshed.

    The refresh margin is ``max(60 s, 20 % of the lifetime)``, capped at half the lifetime,
    plus up to 10 % jitter so sessions do not refresh in lockstep. A token is never
    served with less than ``min_remaining`` seconds of life.
    """

    ttl: int = DEFAULT_TTL
    max_ttl: int = DEFAULT_MAX_TTL
    min_remaining: int = DEFAULT_MIN_REMAINING
    refresh_margin: float | None = None

    def __post_init__(self) -> None:
        if self.ttl <= 0:
            raise ConfigurationError(
                "EMBEDGATE_TTL", f"must be a positive number of seconds, got {self.ttl}"
            )
        if self.ttl > self.max_ttl:
            raise ConfigurationError(
                "EMBEDGATE_TTL",
                f"must be at most EMBEDGATE_MAX_TTL ({self.max_ttl} s), got {self.ttl}",
            )
        if not 0 <= self.min_remaining < self.ttl:
            raise ConfigurationError(
                "EMBEDGATE_MIN_REMAINING",
                f"must be >= 0 and below EMBEDGATE_TTL ({self.ttl} s), got {self.min_remaining}",
            )
        if self.refresh_margin is not None and not (
            self.min_remaining <= self.refresh_margin < self.ttl
        ):
            raise ConfigurationError(
                "EMBEDGATE_REFRESH_MARGIN",
                "must lie between EMBEDGATE_MIN_REMAINING and EMBEDGATE_TTL",
            )

    def margin(self, lifetime: float, rng: random.Random) -> float:
        """Seconds before expiry at which a token of ``lifetime`` seconds is refreshed."""
        base = self.refresh_margin
        if base is None:
            base = max(MIN_MARGIN, MARGIN_SHARE * lifetime, float(self.min_remaining))
        # Leave room for the jitter below the cap of half the lifetime.
        base = min(base, 0.9 * lifetime / 2)
        return base * (1 + JITTER_SHARE * rng.random())


class TokenService:
    """Issues and caches embed tokens per session.

    ``get_token(principal, session_id)`` returns the session's current token, minting one
    through the issuer when the cache holds none fresh. Concurrent calls for one cold key
    mint once (threads and tasks alike). When the issuer fails, a cached token that still
    has ``min_remaining`` of life keeps being served.
    """

    def __init__(
        self,
        issuer: Issuer,
        *,
        cache: CacheBackend | None = None,
        policy: AttributePolicy | None = None,
        timing: TokenTiming | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.issuer = issuer
        self.audit = audit if audit is not None else AuditTrail(provider=issuer.name)
        self.clock = clock
        self.cache: CacheBackend = cache if cache is not None else MemoryCache(clock=clock)
        self.policy = policy or AttributePolicy()
        self.timing = timing or TokenTiming()
        self._rng = rng or random.Random()  # noqa: S311 - jitter only, nothing secret
        self._flights: SingleFlight[EmbedToken] = SingleFlight()

    # -- the rules, written once ---------------------------------------------------------

    def _prepare(
        self,
        principal: Principal,
        session_id: str,
        resource: str | None,
    ) -> tuple[Principal, str]:
        if not isinstance(session_id, str) or not session_id:
            raise PrincipalError("session", "a non-empty session id is required")
        admitted = self.policy.apply(principal)
        key = cache_key(
            session_id=session_id,
            tenant=admitted.tenant,
            subject=admitted.subject,
            claims_hash=admitted.fingerprint(),
            scope=self.issuer.cache_scope(),
            resource=resource,
        )
        return admitted, key

    def _grant_key(self, admitted: Principal, session_id: str, resource: str) -> str:
        return cache_key(
            session_id=session_id,
            tenant=admitted.tenant,
            subject=admitted.subject,
            claims_hash=admitted.fingerprint(),
            scope=self.issuer.cache_scope() + GRANT_SCOPE,
            resource=resource,
        )

    def _grant(self, minted: EmbedToken, subject: str, session_id: str) -> tuple[EmbedToken, float]:
        """The marker recording that a session was given a single-use credential (never
        cached itself) for a resource, and its deadline: the credential's own expiry (for
        a Looker URL, the end of the embed session it opens). It holds no credential."""
        marker = EmbedToken(
            token="",
            expires_at=minted.expires_at,
            issued_at=minted.issued_at,
            subject=subject,
            session_tag=session_tag(session_id),
        )
        return marker, minted.expires_at

    def _usable(
        self, token: EmbedToken | None, subject: str, now: float | None = None
    ) -> EmbedToken | None:
        """The token if it may still be served to ``subject`` (maybe due for refresh)."""
        # The subject check guards against any key collision or a poisoned shared cache.
        if token is None or token.subject != subject:
            return None
        if now is None:
            now = self.clock.now()
        if token.expires_at - now < self.timing.min_remaining:
            return None
        return token

    def _fresh(self, token: EmbedToken | None, subject: str) -> EmbedToken | None:
        """The token if it may be served and is not yet due for refresh."""
        now = self.clock.now()
        usable = self._usable(token, subject, now)
        return usable if usable is not None and now < usable.refresh_at else None

    def _request(self, principal: Principal, resource: str | None) -> IssueRequest:
        return IssueRequest(
            principal=principal, now=self.clock.now(), ttl=self.timing.ttl, resource=resource
        )

    def _admit(self, minted: EmbedToken, subject: str, tag: str) -> tuple[EmbedToken, float]:
        """Stamp a new token with its refresh time; returns it and its cache deadline."""
        now = self.clock.now()
        if minted.subject != subject:
            raise IssuerError(
                f"{self.issuer.name}: issued a token for another subject",
                provider=self.issuer.name,
                code="subject_mismatch",
            )
        minted = self._capped(minted, now)
        lifetime = minted.expires_at - max(minted.issued_at, 0.0)
        if minted.expires_at - now < self.timing.min_remaining or lifetime <= 0:
            raise IssuerError(
                f"{self.issuer.name}: issued a token that expires too soon "
                f"({int(minted.expires_at - now)} s left)",
                provider=self.issuer.name,
                code="short_lived",
            )
        margin = self.timing.margin(lifetime, self._rng)
        refresh_at = max(now + 1.0, minted.expires_at - margin)
        token = replace(minted, refresh_at=refresh_at, session_tag=tag)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "embedgate: issued jti=%s sub#=%s exp=%d",
                token.jti,
                short_hash(subject),
                int(token.expires_at),
            )
        return token, token.expires_at - self.timing.min_remaining

    def _capped(self, minted: EmbedToken, now: float) -> EmbedToken:
        """Every issued token, whoever minted it, lives at most ``EMBEDGATE_MAX_TTL`` here
        (a provider answering ``expiresIn=1e9`` is not cached for 30 years); a token
        without a usable expiry (not a finite number) is refused."""
        if not (math.isfinite(minted.expires_at) and math.isfinite(minted.issued_at)):
            raise IssuerError(
                f"{self.issuer.name}: issued a token without a usable expiry",
                provider=self.issuer.name,
                code="provider_malformed",
                retry_after=30.0,
            )
        cap = now + self.timing.max_ttl
        if minted.expires_at > cap:
            log.info(
                "embedgate: %s issued a token living past EMBEDGATE_MAX_TTL (%d s); capped",
                self.issuer.name,
                self.timing.max_ttl,
            )
            minted = replace(minted, expires_at=cap, issued_at=min(minted.issued_at, now))
        return minted

    def _stale_fallback(
        self, cached: EmbedToken | None, subject: str, error: IssuerError
    ) -> EmbedToken:
        if (stale := self._usable(cached, subject)) is not None:
            telemetry.stale_served(self.issuer.name)
            log.warning(
                "embedgate: %s failed (%s); serving the cached token until it nears expiry",
                self.issuer.name,
                error.code,
            )
            retry_at = self.clock.now() + error.retry_after
            return replace(stale, refresh_at=min(retry_at, stale.expires_at))
        raise error

    def _issued(
        self,
        token: EmbedToken,
        principal: Principal,
        session_id: str,
        resource: str | None,
        cached: EmbedToken | None,
    ) -> None:
        """Count and audit a token just issued. The reason: ``refresh`` when the session
        held a token for this key, else ``first_page`` (``resource_grant`` for a resource)."""
        telemetry.token_issued(self.issuer.name, self.audit.mode)
        reason: Reason = "refresh" if cached is not None else "first_page"
        if cached is None and resource is not None:
            reason = "resource_grant"
        self.audit.issued(token, principal, session_id, reason, resource)

    # -- sync face -------------------------------------------------------------------------

    def get_token(
        self, principal: Principal, session_id: str, resource: str | None = None
    ) -> EmbedToken:
        """The session's token for ``principal`` (cached, or minted now)."""
        admitted, key = self._prepare(principal, session_id, resource)
        cached = self.cache.get(key)
        if (hit := self._fresh(cached, admitted.subject)) is not None:
            return hit

        def mint() -> EmbedToken:
            with self.cache.exclusive(key):
                # Look again: a flight that landed since our first look (or another
                # process, while we waited for the lock) may have filled the key.
                again = self._fresh(self.cache.get(key), admitted.subject)
                if again is not None:
                    return again
                minted = self.issuer.issue(self._request(admitted, resource))
                if minted.single_use:
                    self._issued(minted, admitted, session_id, resource, cached)
                    if resource is not None:
                        self.cache.set(
                            self._grant_key(admitted, session_id, resource),
                            *self._grant(minted, admitted.subject, session_id),
                        )
                    return minted
                token, deadline = self._admit(minted, admitted.subject, session_tag(session_id))
                self._issued(token, admitted, session_id, resource, cached)
                self.cache.set(key, token, deadline)
                return token

        try:
            return self._flights.run(key, mint)
        except IssuerError as error:
            telemetry.token_issued(self.issuer.name, self.audit.mode, error.code)
            return self._stale_fallback(cached, admitted.subject, error)

    def holds(self, principal: Principal, session_id: str, resource: str) -> bool:
        """Whether this session holds a token for ``resource`` (or, for single-use
        credentials, was given one whose embed session is still open). Reads the cache
        only; never mints. The token endpoint refreshes only resources a session holds."""
        admitted, key = self._prepare(principal, session_id, resource)
        if self._held(self.cache.get(key), admitted.subject):
            return True
        grant = self.cache.get(self._grant_key(admitted, session_id, resource))
        return self._held(grant, admitted.subject)

    @staticmethod
    def _held(entry: EmbedToken | None, subject: str) -> bool:
        # Present in the cache means before its deadline (exp - min_remaining for a token).
        return entry is not None and entry.subject == subject

    def invalidate_session(self, session_id: str) -> int:
        """Purge a session's tokens (logout)."""
        count = self.cache.invalidate(session_tag=session_tag(session_id))
        self.audit.purged(count, session_id=session_id)
        return count

    def invalidate_subject(self, subject: str) -> int:
        """Purge a subject's tokens in every session (permissions changed)."""
        count = self.cache.invalidate(subject=subject)
        self.audit.purged(count, subject=subject)
        return count

    # -- async face ------------------------------------------------------------------------

    async def aget_token(
        self, principal: Principal, session_id: str, resource: str | None = None
    ) -> EmbedToken:
        """Async face of :meth:`get_token` (asyncio or trio)."""
        admitted, key = self._prepare(principal, session_id, resource)
        cached = await self.cache.aget(key)
        if (hit := self._fresh(cached, admitted.subject)) is not None:
            return hit

        async def mint() -> EmbedToken:
            async with self.cache.aexclusive(key):
                again = self._fresh(await self.cache.aget(key), admitted.subject)
                if again is not None:
                    return again
                minted = await self.issuer.aissue(self._request(admitted, resource))
                if minted.single_use:
                    self._issued(minted, admitted, session_id, resource, cached)
                    if resource is not None:
                        await self.cache.aset(
                            self._grant_key(admitted, session_id, resource),
                            *self._grant(minted, admitted.subject, session_id),
                        )
                    return minted
                token, deadline = self._admit(minted, admitted.subject, session_tag(session_id))
                self._issued(token, admitted, session_id, resource, cached)
                await self.cache.aset(key, token, deadline)
                return token

        try:
            return await self._flights.arun(key, mint)
        except IssuerError as error:
            telemetry.token_issued(self.issuer.name, self.audit.mode, error.code)
            return self._stale_fallback(cached, admitted.subject, error)

    async def aholds(self, principal: Principal, session_id: str, resource: str) -> bool:
        """Async face of :meth:`holds`."""
        admitted, key = self._prepare(principal, session_id, resource)
        if self._held(await self.cache.aget(key), admitted.subject):
            return True
        grant = await self.cache.aget(self._grant_key(admitted, session_id, resource))
        return self._held(grant, admitted.subject)

    async def ainvalidate_session(self, session_id: str) -> int:
        count = await self.cache.ainvalidate(session_tag=session_tag(session_id))
        self.audit.purged(count, session_id=session_id)
        return count

    async def ainvalidate_subject(self, subject: str) -> int:
        count = await self.cache.ainvalidate(subject=subject)
        self.audit.purged(count, subject=subject)
        return count

    def __repr__(self) -> str:
        return f"TokenService(issuer={self.issuer!r}, cache={self.cache!r})"
