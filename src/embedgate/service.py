"""The token engine: principal -> policy -> cache key -> cache or issuer -> token.

No HTTP here. The sync face (:meth:`TokenService.get_token`) serves WSGI and the CLI, the
async face (:meth:`TokenService.aget_token`) serves ASGI; both apply the same rules,
which live in the plain methods :meth:`_lookup` and :meth:`_admit`.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, replace

import anyio

from . import telemetry
from .audit import AuditTrail, Reason
from .backoff import BackoffPolicy, ProviderBreaker, backing_off, marker, read_marker
from .cache import CacheBackend, MemoryCache, cache_key, session_tag
from .canonical import digest, short_hash
from .clock import SYSTEM_CLOCK, Clock
from .errors import ConfigurationError, IssuerError, PrincipalError
from .issuers.base import Issuer, IssueRequest
from .principal import AttributePolicy, Principal
from .singleflight import SingleFlight
from .token import EmbedToken

log = logging.getLogger("embedgate")

DEFAULT_TTL = 300
DEFAULT_MAX_TTL = 3600
DEFAULT_MIN_REMAINING = 30
MIN_MARGIN = 60.0
MARGIN_SHARE = 0.2
SPAN_CAP = 0.45
JITTER_SHARE = 0.1
DEFAULT_DEADLINE = 0.5
# Appended to the issuer's cache scope for grant markers: never a key a token lives under.
GRANT_SCOPE = "\x00grant"
BACKOFF_SCOPE = "\x00backoff"
PROVIDER_SUBJECT = "\x00provider"


@dataclass(frozen=True)
class TokenTiming:
    """How long tokens live and when they are refreshed.

    A token is served while it has more than ``min_remaining`` seconds of life; it is due
    for refresh ``margin`` seconds before it expires, a point always *inside* the time it
    is served, so the refresh runs beside requests that are still served the current
    token. The margin is ``min_remaining`` plus a share of the servable span
    (``lifetime - min_remaining``): by default what ``max(60 s, 20 % of the lifetime)``
    leaves above ``min_remaining``, kept between 10 % and 45 % of the span; then up to
    10 % jitter (so sessions do not refresh in lockstep), within 90 % of the span. An
    explicit ``refresh_margin`` must lie strictly between ``min_remaining`` and the TTL.
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
            self.min_remaining < self.refresh_margin < self.ttl
        ):
            raise ConfigurationError(
                "EMBEDGATE_REFRESH_MARGIN",
                "must lie strictly between EMBEDGATE_MIN_REMAINING and EMBEDGATE_TTL: a token "
                "is refreshed while it is still served",
            )

    def margin(self, lifetime: float, rng: random.Random) -> float:
        """Seconds before expiry at which a token of ``lifetime`` seconds is refreshed:
        always above ``min_remaining`` and below ``lifetime``."""
        span = lifetime - self.min_remaining
        if span <= 0:
            return lifetime
        base = self.refresh_margin
        if base is None:
            base = max(MIN_MARGIN, MARGIN_SHARE * lifetime)
        above = min(max(base - self.min_remaining, 0.1 * span), SPAN_CAP * span)
        margin = (self.min_remaining + above) * (1 + JITTER_SHARE * rng.random())
        return min(margin, self.min_remaining + 0.9 * span)


class _Ask:
    """One request's identity: who, which session, which resource, and its cache key (the
    backoff marker's key is derived only off the hot path)."""

    __slots__ = (
        "_backoff_key",
        "admitted",
        "fingerprint",
        "key",
        "resource",
        "scope",
        "session_id",
    )

    def __init__(
        self, admitted: Principal, session_id: str, resource: str | None, scope: str
    ) -> None:
        self.admitted = admitted
        self.session_id = session_id
        self.resource = resource
        self.scope = scope
        self.fingerprint = admitted.fingerprint()
        self.key = self._key("")
        self._backoff_key: str | None = None

    def _key(self, kind: str) -> str:
        return cache_key(
            session_id=self.session_id,
            tenant=self.admitted.tenant,
            subject=self.admitted.subject,
            claims_hash=self.fingerprint,
            scope=self.scope + kind,
            resource=self.resource,
        )

    @property
    def backoff_key(self) -> str:
        """Where the session's backoff marker lives."""
        if self._backoff_key is None:
            self._backoff_key = self._key(BACKOFF_SCOPE)
        return self._backoff_key

    @property
    def subject(self) -> str:
        return self.admitted.subject


class TokenService:
    """Issues and caches embed tokens per session.

    ``get_token(principal, session_id)`` returns the session's current token:

    * a cached token with more than ``min_remaining`` seconds of life is returned at once;
      once it is due for refresh, the refresh runs *beside* the request (a thread, or a
      task on asyncio/trio), one flight per session, and across workers under the cache's
      lock;
    * with no servable token, the caller waits for the mint, at most ``deadline`` seconds
      when given (the mint goes on, and fills the cache, after the caller gave up);
    * a failed mint records in the cache when the session may try again (the provider's
      ``Retry-After``, else exponential backoff with jitter), and enough outage failures
      open the provider's circuit breaker, also recorded in the cache: no upstream call
      until the window ends, then one probe. Requests in the window get the cached token,
      or an :class:`~embedgate.errors.IssuerError` whose ``retry_after`` ends the window.
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
        backoff: BackoffPolicy | None = None,
        breaker: ProviderBreaker | None = None,
    ) -> None:
        self.issuer = issuer
        self.audit = audit if audit is not None else AuditTrail(provider=issuer.name)
        self.clock = clock
        self.cache: CacheBackend = cache if cache is not None else MemoryCache(clock=clock)
        self.policy = policy or AttributePolicy()
        self.timing = timing or TokenTiming()
        self.backoff = backoff or BackoffPolicy()
        self.breaker = breaker or ProviderBreaker(issuer.name)
        self._rng = rng or random.Random()  # noqa: S311 - jitter only, nothing secret
        self._flights: SingleFlight[EmbedToken] = SingleFlight()
        # Issuers that do no I/O mint in microseconds: no thread or task to wait on them.
        self._detach = bool(getattr(issuer, "does_io", True))
        self._provider_key = digest("provider", issuer.cache_scope())

    # -- the rules, written once ---------------------------------------------------------

    def _prepare(
        self,
        principal: Principal,
        session_id: str,
        resource: str | None,
    ) -> tuple[Principal, str]:
        ask = self._ask(principal, session_id, resource)
        return ask.admitted, ask.key

    def _ask(self, principal: Principal, session_id: str, resource: str | None) -> _Ask:
        if not isinstance(session_id, str) or not session_id:
            raise PrincipalError("session", "a non-empty session id is required")
        admitted = self.policy.apply(principal)
        return _Ask(admitted, session_id, resource, self.issuer.cache_scope())

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
        if token is None or token.subject != subject or not token.token:
            return None
        if now is None:
            now = self.clock.now()
        if token.expires_at - now < self.timing.min_remaining:
            return None
        return token

    def _request(self, ask: _Ask) -> IssueRequest:
        return IssueRequest(
            principal=ask.admitted,
            now=self.clock.now(),
            ttl=self.timing.ttl,
            resource=ask.resource,
            retry_answered=False,  # this service backs off itself, cluster-wide
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

    # -- backoff and the breaker (plain rules; the faces do the I/O) -----------------------

    def _blocked(
        self, session_entry: EmbedToken | None, provider_entry: EmbedToken | None, ask: _Ask
    ) -> IssuerError | None:
        """Why no upstream call may happen now for ``ask``, or None."""
        now = self.clock.now()
        mark = read_marker(session_entry, ask.subject)
        if mark is not None and now < mark[2]:
            return backing_off(self.issuer.name, mark[1], mark[2] - now)
        shared = read_marker(provider_entry, PROVIDER_SUBJECT)
        if shared is not None and now < shared[2]:
            self.breaker.adopt(shared[2], now)
            return backing_off(self.issuer.name, shared[1], shared[2] - now)
        if self.breaker.state != ProviderBreaker.CLOSED and now < self.breaker.open_until:
            return backing_off(
                self.issuer.name, "provider_unavailable", self.breaker.open_until - now
            )
        return None

    def _failure_marks(
        self, error: IssuerError, ask: _Ask, previous: EmbedToken | None
    ) -> list[tuple[str, EmbedToken, float]]:
        """The cache writes recording a failed call (the session's window, and the
        provider's when this failure opened its breaker); sets ``error.retry_after``."""
        now = self.clock.now()
        mark = read_marker(previous, ask.subject)
        failures = (mark[0] if mark is not None else 0) + 1
        delay = self.backoff.delay(failures, error, self._rng)
        retry_at = now + delay
        tag = session_tag(ask.session_id)
        keep = retry_at + 2 * self.backoff.cap  # the count outlives the window
        writes = [
            (
                ask.backoff_key,
                marker(
                    subject=ask.subject, session_tag=tag, now=now, retry_at=retry_at,
                    failures=failures, code=error.code,
                ),
                keep,
            )
        ]  # fmt: skip
        opened_until = self.breaker.failure(error, now, self._rng)
        if opened_until is not None:
            retry_at = max(retry_at, opened_until)
            writes.append(
                (
                    self._provider_key,
                    marker(
                        subject=PROVIDER_SUBJECT, session_tag="", now=now,
                        retry_at=opened_until, failures=self.breaker.failures, code=error.code,
                    ),
                    opened_until + 2 * self.backoff.cap,
                )
            )  # fmt: skip
        error.retry_after = max(1.0, retry_at - now)
        log.debug(
            "embedgate: %s failed (%s) for a session; next attempt in %.1f s",
            self.issuer.name,
            error.code,
            retry_at - now,
        )
        return writes

    def _success_marks(
        self, ask: _Ask, previous: EmbedToken | None
    ) -> list[tuple[str, EmbedToken, float]]:
        """The cache writes clearing the session's failure count (and the provider's
        window, when this call closed its breaker)."""
        now = self.clock.now()
        writes: list[tuple[str, EmbedToken, float]] = []
        if read_marker(previous, ask.subject) is not None:
            cleared = marker(
                subject=ask.subject, session_tag=session_tag(ask.session_id), now=now,
                retry_at=now, failures=0, code="",
            )  # fmt: skip
            writes.append((ask.backoff_key, cleared, now + 1.0))
        if self.breaker.success():
            cleared = marker(
                subject=PROVIDER_SUBJECT, session_tag="", now=now, retry_at=now, failures=0,
                code="",
            )  # fmt: skip
            writes.append((self._provider_key, cleared, now + 1.0))
        return writes

    def _probe(self) -> IssuerError | None:
        """None when a call may go upstream now (closed, or this is the half-open probe)."""
        now = self.clock.now()
        allowed, wait = self.breaker.allow(now)
        if allowed:
            return None
        return backing_off(self.issuer.name, "provider_unavailable", wait)

    def _fit(self, token: EmbedToken, ask: _Ask) -> EmbedToken:
        """A flight's outcome, if it may be served to this caller now: a flight joined
        late may have fallen back on a token that has since dropped below min_remaining."""
        if token.single_use or self._usable(token, ask.subject) is not None:
            return token
        raise IssuerError(
            f"{self.issuer.name}: the refresh failed and the cached token nears expiry",
            provider=self.issuer.name,
            code="provider_unavailable",
            retry_after=1.0,
        )

    def _issued(self, token: EmbedToken, ask: _Ask, existing: EmbedToken | None) -> None:
        """Count and audit a token just issued. The reason: ``refresh`` when the session
        held a token for this key, else ``first_page`` (``resource_grant`` for a resource)."""
        telemetry.token_issued(self.issuer.name, self.audit.mode)
        reason: Reason = "refresh" if existing is not None else "first_page"
        if existing is None and ask.resource is not None:
            reason = "resource_grant"
        self.audit.issued(token, ask.admitted, ask.session_id, reason, ask.resource)

    def _failed(self, error: IssuerError, current: EmbedToken | None) -> EmbedToken:
        """After a failed call: the servable token (counted as served stale), or raise."""
        telemetry.token_issued(self.issuer.name, self.audit.mode, error.code)
        if current is None:
            raise error
        telemetry.stale_served(self.issuer.name)
        return current

    def _until_window_ends(self, served: EmbedToken, blocked: IssuerError) -> EmbedToken:
        """The served token, due again when the backoff window ends (so a browser asks
        again then, not every second), or when it stops being served if that is sooner."""
        telemetry.stale_served(self.issuer.name)
        last = served.expires_at - self.timing.min_remaining
        return replace(served, refresh_at=min(self.clock.now() + blocked.retry_after, last))

    def _late(self, deadline: float) -> IssuerError:
        return IssuerError(
            f"{self.issuer.name}: no token within {deadline:g} s; the mint goes on",
            provider=self.issuer.name,
            code="provider_timeout",
            retry_after=1.0,
        )

    def _busy(self) -> IssuerError:
        return IssuerError(
            f"{self.issuer.name}: another worker's mint for this session is still running",
            provider=self.issuer.name,
            code="provider_timeout",
            retry_after=1.0,
        )

    # -- sync face -------------------------------------------------------------------------

    def get_token(
        self,
        principal: Principal,
        session_id: str,
        resource: str | None = None,
        *,
        deadline: float | None = None,
    ) -> EmbedToken:
        """The session's token for ``principal``: the cached one while it may be served
        (refreshed beside the call when due), else minted now. With ``deadline``, raises
        an :class:`IssuerError` (``provider_timeout``) rather than wait longer."""
        ask = self._ask(principal, session_id, resource)
        now = self.clock.now()
        served = self._usable(self.cache.get(ask.key), ask.subject, now)
        if served is not None:
            if now < served.refresh_at or ask.key in self._flights:
                return served
            return self._refresh_beside(ask, served)
        blocked = self._blocked(
            self.cache.get(ask.backoff_key), self.cache.get(self._provider_key), ask
        )
        if blocked is not None:
            raise blocked
        if deadline is None or not self._detach:
            return self._fit(self._flights.run(ask.key, lambda: self._refresh(ask)), ask)
        flight = self._flights.launch(ask.key, lambda: self._refresh(ask))
        try:
            return self._fit(self._flights.wait(flight, deadline), ask)
        except TimeoutError:
            raise self._late(deadline) from None

    def _refresh_beside(self, ask: _Ask, served: EmbedToken) -> EmbedToken:
        blocked = self._blocked(
            self.cache.get(ask.backoff_key), self.cache.get(self._provider_key), ask
        )
        if blocked is not None:
            return self._until_window_ends(served, blocked)
        self._flights.launch(ask.key, lambda: self._refresh(ask))
        return served

    def _refresh(self, ask: _Ask) -> EmbedToken:
        """One flight: under the cache's lock, look again, then mint (or back off)."""
        with self.cache.exclusive(ask.key) as ours:
            # Look again: a flight that landed since our first look (or another process,
            # while we waited for the lock) may have filled the key.
            now = self.clock.now()
            existing = self.cache.get(ask.key)
            current = self._usable(existing, ask.subject, now)
            if current is not None and (now < current.refresh_at or ours is not True):
                return current  # refreshed meanwhile, or no lock: never mint beside a holder
            if ours is False:
                raise self._busy()
            previous = self.cache.get(ask.backoff_key)
            stop = self._blocked(previous, self.cache.get(self._provider_key), ask) or self._probe()
            if stop is not None:
                if current is not None:
                    return current
                raise stop
            try:
                minted = self.issuer.issue(self._request(ask))
                if minted.single_use:
                    if ask.resource is not None:
                        self.cache.set(
                            self._grant_key(ask.admitted, ask.session_id, ask.resource),
                            *self._grant(minted, ask.subject, ask.session_id),
                        )
                    token, deadline = minted, 0.0
                else:
                    token, deadline = self._admit(minted, ask.subject, session_tag(ask.session_id))
            except IssuerError as error:
                for key, entry, until in self._failure_marks(error, ask, previous):
                    self.cache.set(key, entry, until)
                return self._failed(error, current)
            self._issued(token, ask, existing)
            for key, entry, until in self._success_marks(ask, previous):
                self.cache.set(key, entry, until)
            if not token.single_use:
                self.cache.set(ask.key, token, deadline)
            return token

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no refresh is in flight in this process (tests, graceful shutdown)."""
        end = time.monotonic() + timeout
        while len(self._flights):
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return True

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
        self,
        principal: Principal,
        session_id: str,
        resource: str | None = None,
        *,
        deadline: float | None = None,
    ) -> EmbedToken:
        """Async face of :meth:`get_token` (asyncio or trio); refreshes run as tasks."""
        ask = self._ask(principal, session_id, resource)
        now = self.clock.now()
        served = self._usable(await self.cache.aget(ask.key), ask.subject, now)
        if served is not None:
            if now < served.refresh_at or ask.key in self._flights:
                return served
            return await self._arefresh_beside(ask, served)
        blocked = self._blocked(
            await self.cache.aget(ask.backoff_key), await self.cache.aget(self._provider_key), ask
        )
        if blocked is not None:
            raise blocked
        if deadline is None or not self._detach:
            return self._fit(await self._flights.arun(ask.key, lambda: self._arefresh(ask)), ask)
        flight = self._flights.alaunch(ask.key, lambda: self._arefresh(ask))
        try:
            return self._fit(await self._flights.await_flight(flight, deadline), ask)
        except TimeoutError:
            raise self._late(deadline) from None

    async def _arefresh_beside(self, ask: _Ask, served: EmbedToken) -> EmbedToken:
        entries = (
            await self.cache.aget(ask.backoff_key),
            await self.cache.aget(self._provider_key),
        )
        blocked = self._blocked(*entries, ask)
        if blocked is not None:
            return self._until_window_ends(served, blocked)
        self._flights.alaunch(ask.key, lambda: self._arefresh(ask))
        return served

    async def _arefresh(self, ask: _Ask) -> EmbedToken:
        async with self.cache.aexclusive(ask.key) as ours:
            now = self.clock.now()
            existing = await self.cache.aget(ask.key)
            current = self._usable(existing, ask.subject, now)
            if current is not None and (now < current.refresh_at or ours is not True):
                return current
            if ours is False:
                raise self._busy()
            previous = await self.cache.aget(ask.backoff_key)
            provider = await self.cache.aget(self._provider_key)
            stop = self._blocked(previous, provider, ask) or self._probe()
            if stop is not None:
                if current is not None:
                    return current
                raise stop
            try:
                minted = await self.issuer.aissue(self._request(ask))
                if minted.single_use:
                    if ask.resource is not None:
                        await self.cache.aset(
                            self._grant_key(ask.admitted, ask.session_id, ask.resource),
                            *self._grant(minted, ask.subject, ask.session_id),
                        )
                    token, deadline = minted, 0.0
                else:
                    token, deadline = self._admit(minted, ask.subject, session_tag(ask.session_id))
            except IssuerError as error:
                for key, entry, until in self._failure_marks(error, ask, previous):
                    await self.cache.aset(key, entry, until)
                return self._failed(error, current)
            self._issued(token, ask, existing)
            for key, entry, until in self._success_marks(ask, previous):
                await self.cache.aset(key, entry, until)
            if not token.single_use:
                await self.cache.aset(ask.key, token, deadline)
            return token

    async def await_idle(self, timeout: float = 10.0) -> bool:
        """Async face of :meth:`wait_idle`."""
        with anyio.move_on_after(timeout):
            while len(self._flights):
                await anyio.sleep(0.005)
            return True
        return False

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
