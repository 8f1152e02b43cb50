"""Backing off a failing provider: when a session may ask again, and whether the provider
may be asked at all.

Both are written to the token cache as *markers* (an :class:`~embedgate.token.EmbedToken`
that holds no credential), so every request and, with a shared Redis, every worker sees
them:

* a session's marker says when its next attempt may happen: the provider's
  ``Retry-After`` when it sent one, else exponential backoff with jitter;
* a provider's marker (:class:`ProviderBreaker`) says the provider is down and when to
  probe it (half-open): one call goes through, the others wait for its outcome.

State changes are logged once each (opened, closed), never per request.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Final

from .errors import IssuerError
from .token import EmbedToken

log = logging.getLogger("embedgate")

_MARK: Final = "backoff:"
# Codes of failures that are the provider's state, not this request's (a 4xx is ours).
OUTAGE_CODES: Final = frozenset(
    {"provider_unavailable", "provider_timeout", "provider_rate_limited", "upstream_unavailable"}
)


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff: ``base * 2**(n-1)`` seconds after the n-th failure in a row,
    at most ``cap``, scaled by a random factor in [0.5, 1] (full spread, so sessions do not
    retry in lockstep). A provider's ``Retry-After`` wins, bounded by ``max_hint``."""

    base: float = 1.0
    cap: float = 30.0
    max_hint: float = 3600.0

    def delay(self, failures: int, error: IssuerError, rng: random.Random) -> float:
        if error.hinted:
            return min(self.max_hint, max(0.0, error.retry_after))
        raw = min(self.cap, self.base * 2.0 ** max(0, failures - 1))
        return raw * (0.5 + rng.random() / 2)


def marker(
    *, subject: str, session_tag: str, now: float, retry_at: float, failures: int, code: str
) -> EmbedToken:
    """A cache entry recording ``failures`` failures in a row and when to try again."""
    return EmbedToken(
        token="",
        expires_at=retry_at,
        issued_at=now,
        subject=subject,
        jti=f"{_MARK}{failures}:{code}",
        refresh_at=retry_at,
        session_tag=session_tag,
    )


def read_marker(entry: EmbedToken | None, subject: str) -> tuple[int, str, float] | None:
    """``(failures, code, retry_at)`` of a marker for ``subject``, or None."""
    if entry is None or entry.subject != subject or entry.token or entry.jti is None:
        return None
    if not entry.jti.startswith(_MARK):
        return None
    count, _, code = entry.jti[len(_MARK) :].partition(":")
    try:
        failures = int(count)
    except ValueError:
        return None
    return failures, code or "provider_unavailable", entry.refresh_at


def backing_off(provider: str, code: str, retry_after: float) -> IssuerError:
    """The error a request gets while its session (or the provider) is backed off."""
    return IssuerError(
        f"{provider}: backing off after a failure ({code}); no call until the window ends",
        provider=provider,
        code=code,
        retry_after=max(1.0, retry_after),
    )


class ProviderBreaker:
    """Closed; open after ``threshold`` outage failures in a row (any session); then one
    probe when the open window ends (half-open), which closes it on success and opens it
    again, for a longer window, on failure. Thread-safe; one per :class:`TokenService`.
    The window is shared through the cache by the service (see :meth:`adopt`)."""

    CLOSED: Final = "closed"
    OPEN: Final = "open"
    HALF_OPEN: Final = "half_open"

    def __init__(self, name: str, *, threshold: int = 3, policy: BackoffPolicy | None = None):
        self.name = name
        self.threshold = threshold
        self.policy = policy or BackoffPolicy(base=2.0)
        self._lock = threading.Lock()
        self.state: str = self.CLOSED
        self.failures = 0  # outage failures in a row
        self.streak = 0  # windows opened in a row (the first, then each failed probe)
        self.opened = 0
        self.closed = 0
        self.open_until = 0.0
        self._probing_until = 0.0
        self._failing = False

    def allow(self, now: float) -> tuple[bool, float]:
        """Whether a call may go upstream now; else how long to wait."""
        if self.state == self.CLOSED:
            return True, 0.0
        with self._lock:
            if self.state == self.CLOSED:
                return True, 0.0
            if now < self.open_until:
                return False, self.open_until - now
            if self.state == self.HALF_OPEN and now < self._probing_until:
                return False, self._probing_until - now
            # The probe. One that never reports back frees the slot after a while.
            self.state = self.HALF_OPEN
            self._probing_until = now + max(5.0, self.policy.base)
            return True, 0.0

    def adopt(self, open_until: float, now: float) -> None:
        """Another worker opened the breaker (its marker is in the shared cache)."""
        if open_until <= now or open_until <= self.open_until:
            return
        with self._lock:
            if self.state == self.CLOSED:
                self.opened += 1
                log.warning(
                    "embedgate: %s is down (seen by another worker); no calls for %.0f s",
                    self.name,
                    open_until - now,
                )
            self.state = self.OPEN
            self.open_until = max(self.open_until, open_until)

    def success(self) -> bool:
        """Record a good answer; True when this closed the breaker."""
        if self.state == self.CLOSED and not self.failures and not self._failing:
            return False
        with self._lock:
            self.failures = 0
            self.streak = 0
            self._failing = False
            if self.state == self.CLOSED:
                return False
            self.state = self.CLOSED
            self.open_until = 0.0
            self.closed += 1
        log.warning("embedgate: %s answers again; the circuit breaker is closed", self.name)
        return True

    def failure(self, error: IssuerError, now: float, rng: random.Random) -> float | None:
        """Record a failed call; the end of the open window when this opened the breaker."""
        with self._lock:
            first, self._failing = not self._failing, True
        if first:
            log.warning(
                "embedgate: %s failed (%s); serving cached tokens and backing off "
                "(logged once until it answers again)",
                self.name,
                error.code,
            )
        if error.code not in OUTAGE_CODES:
            return None
        with self._lock:
            self.failures += 1
            if self.state == self.HALF_OPEN:
                outcome = "probe failed"
                self.streak += 1
            elif self.state == self.CLOSED and self.failures >= self.threshold:
                outcome = "opened"
                self.streak = 1
                self.opened += 1
            else:
                # Closed below the threshold, or a call that was already under way when
                # the breaker opened: neither opens nor lengthens the window.
                return None
            self.open_until = now + self.policy.delay(self.streak, error, rng)
            self.state = self.OPEN
        if outcome == "probe failed":
            log.debug("embedgate: %s probe failed (%s)", self.name, error.code)
        else:
            log.warning(
                "embedgate: %s is down (%s); circuit breaker open, serving cached tokens, "
                "next probe in %.0f s",
                self.name,
                error.code,
                self.open_until - now,
            )
        return self.open_until

    def __repr__(self) -> str:
        return f"ProviderBreaker({self.name!r}, state={self.state!r})"
