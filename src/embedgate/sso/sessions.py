"""Which embedgate sessions an SSO login opened, so the IdP can end them later.

At login the host calls :meth:`SSOSessions.login` with the SSO claims: it gets a fresh
embedgate session id and the index remembers it under the IdP's session id (``sid`` in
OIDC, ``session_index`` in SAML) and under the user (``iss`` + ``sub``/``nameid``). When
the IdP ends its session (back-channel logout, SAML single logout), :meth:`SSOSessions.end`
purges those sessions' tokens and marks them ended, so the host drops its own session on
the next request (:meth:`SSOSessions.active`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from ..cache import new_session_id, session_tag
from ..clock import SYSTEM_CLOCK, Clock
from ..engine import Engine

DAY = 86_400.0
log = logging.getLogger("embedgate")


def _text(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    return value if isinstance(value, str) and value else None


class SessionIndex:
    """An in-process, bounded index: IdP session / user -> embedgate session ids, and the
    set of ended sessions. Entries live ``ttl`` seconds (the host's session lifetime).

    One index per process: with several workers, the IdP's logout reaches one of them, so
    run one worker or give each the same shared index (a subclass over Redis).
    """

    def __init__(
        self, *, maxsize: int = 100_000, ttl: float = DAY, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._lock = threading.Lock()
        self._by_key: TTLCache[tuple[str, str, str], set[str]] = TTLCache(
            maxsize, ttl, timer=clock.now
        )
        self._ended: TTLCache[str, bool] = TTLCache(maxsize, ttl, timer=clock.now)

    def add(self, session_id: str, *, issuer: str, sid: str | None, sub: str | None) -> None:
        with self._lock:
            for key in _keys(issuer, sid, sub):
                ids = self._by_key.get(key) or set()
                ids.add(session_id)
                self._by_key[key] = ids  # re-set: refreshes the entry's lifetime

    def find(self, *, issuer: str, sid: str | None = None, sub: str | None = None) -> set[str]:
        """Session ids opened by IdP session ``sid``, or else by user ``sub``."""
        with self._lock:
            if sid is not None:
                return set(self._by_key.get(("sid", issuer, sid), ()))
            if sub is not None:
                return set(self._by_key.get(("sub", issuer, sub), ()))
            return set()

    def end(self, session_ids: set[str]) -> None:
        with self._lock:
            for session_id in session_ids:
                self._ended[session_tag(session_id)] = True
            for key, ids in list(self._by_key.items()):
                remaining = ids - session_ids
                if not remaining:
                    del self._by_key[key]
                elif len(remaining) < len(ids):
                    self._by_key[key] = remaining

    def is_ended(self, session_id: str) -> bool:
        with self._lock:
            return session_tag(session_id) in self._ended

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)

    def __repr__(self) -> str:
        return f"SessionIndex(keys={len(self)})"


class RedisSessionIndex(SessionIndex):
    """The index in Redis, shared by every worker (and host) using the same server: a
    logout reaching one worker ends the sessions opened on any of them.

    ``client`` is a ``redis.Redis``. Keys are hashed (IdP session ids and NameIDs can be
    long URIs) and live ``ttl`` seconds. When Redis cannot be reached, :meth:`is_ended`
    answers False (logged) rather than failing every request; the tokens of an ended
    session were purged when it ended.
    """

    def __init__(self, client: Any, *, ttl: float = DAY, prefix: str = "embedgate:sso:") -> None:
        super().__init__(ttl=ttl)
        self.client = client
        self.ttl = max(1, int(ttl))
        self.prefix = prefix

    def _key(self, key: tuple[str, str, str]) -> str:
        digest = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:32]
        return f"{self.prefix}{key[0]}:{digest}"

    def _ended_key(self, session_id: str) -> str:
        return f"{self.prefix}ended:{session_tag(session_id)}"

    def add(self, session_id: str, *, issuer: str, sid: str | None, sub: str | None) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in _keys(issuer, sid, sub):
            pipe.sadd(self._key(key), session_id)
            pipe.expire(self._key(key), self.ttl)
        pipe.execute()

    def find(self, *, issuer: str, sid: str | None = None, sub: str | None = None) -> set[str]:
        if sid is not None:
            key = ("sid", issuer, sid)
        elif sub is not None:
            key = ("sub", issuer, sub)
        else:
            return set()
        members = self.client.smembers(self._key(key))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    def end(self, session_ids: set[str]) -> None:
        if not session_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.set(self._ended_key(session_id), "1", ex=self.ttl)
        pipe.execute()

    def is_ended(self, session_id: str) -> bool:
        try:
            return bool(self.client.exists(self._ended_key(session_id)))
        except Exception as error:  # redis.RedisError; the extra may be absent
            log.warning("embedgate: SSO session index unreachable (%s)", type(error).__name__)
            return False

    def __len__(self) -> int:
        return 0  # not counted: the keys are spread over the shared server

    def __repr__(self) -> str:
        return f"RedisSessionIndex(prefix={self.prefix!r})"


def _keys(issuer: str, sid: str | None, sub: str | None) -> list[tuple[str, str, str]]:
    keys = []
    if sid is not None:
        keys.append(("sid", issuer, sid))
    if sub is not None:
        keys.append(("sub", issuer, sub))
    return keys


@dataclass(frozen=True)
class EndResult:
    """What ending an IdP session did: sessions ended, tokens purged."""

    sessions: int
    tokens: int


class SSOSessions:
    """The host's SSO sessions as embedgate sees them: login, local logout, IdP logout.

    ``issuer`` names the IdP when the claims carry no ``iss`` (SAML: the IdP entity id).
    """

    def __init__(
        self, engine: Engine, *, index: SessionIndex | None = None, issuer: str = ""
    ) -> None:
        self.engine = engine
        self.index = index if index is not None else SessionIndex(clock=engine.clock)
        self.issuer = issuer

    def login(self, claims: Mapping[str, Any], session_id: str | None = None) -> str:
        """Record an SSO login; returns the embedgate session id to keep in the host's
        session (a new random one unless ``session_id`` is given)."""
        session_id = session_id or new_session_id()
        self.index.add(
            session_id,
            issuer=_text(claims.get("iss")) or self.issuer,
            sid=_text(claims.get("sid")) or _text(claims.get("session_index")),
            sub=_text(claims.get("sub")) or _text(claims.get("nameid")),
        )
        return session_id

    def active(self, session_id: str | None) -> bool:
        """False once the IdP ended this session: the host should log the user out."""
        return bool(session_id) and not self.index.is_ended(session_id or "")

    def logout(self, session_id: str) -> int:
        """The user logged out in the host: purge the session's tokens."""
        self.index.end({session_id})
        return self.engine.logout(session_id)

    def end(
        self,
        *,
        issuer: str | None = None,
        sid: str | None = None,
        sub: str | None = None,
        purge_subject: bool | None = None,
    ) -> EndResult:
        """The IdP ended its session ``sid`` (or every session of ``sub`` when no ``sid``
        is given): purge the tokens of the embedgate sessions they opened.

        With only ``sub``, ``purge_subject`` also purges that subject's tokens in sessions
        this process never saw. By default it does so when the claim mapping reads the
        embed subject from ``sub`` (the IdP's ``sub`` is the token's subject) and the
        issuer is the one given to the constructor (or none was: a single IdP).
        """
        issuer = issuer or self.issuer
        session_ids = self.index.find(issuer=issuer, sid=sid, sub=sub)
        tokens = sum(self.engine.logout(session_id) for session_id in session_ids)
        self.index.end(session_ids)
        if sid is None and sub is not None:
            if purge_subject is None:
                # The first subject path decides: ("nameid", ...) in the saml preset.
                subject = self.engine.claim_mapping.subject
                first = subject if isinstance(subject, str) else subject[0]
                purge_subject = first in ("sub", "nameid") and (
                    not self.issuer or issuer == self.issuer
                )
            if purge_subject:
                tokens += self.engine.logout_subject(sub)
        return EndResult(sessions=len(session_ids), tokens=tokens)

    def __repr__(self) -> str:
        return f"SSOSessions(index={self.index!r})"
