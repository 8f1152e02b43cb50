"""Who each session's tokens belong to, so the middleware purges them by itself when that
user changes or disappears (logout by clearing the session, another user logging in on the
same browser) — no call the host has to remember.

In-process and bounded: an entry lives as long as the longest token could, and a session
this process never minted for has nothing here to purge. With a shared cache (Redis) the
purge itself reaches every worker.
"""

from __future__ import annotations

import threading

from cachetools import TTLCache

from ..principal import Principal

_MAX_SESSIONS = 100_000


def owner_key(principal: Principal) -> str:
    """What identifies the user a session's tokens were minted for."""
    return f"{principal.tenant or ''}\x00{principal.subject}"


class SessionOwners:
    """session id → the user its tokens were minted for (thread-safe)."""

    def __init__(self, lifetime: float, maxsize: int = _MAX_SESSIONS) -> None:
        self._owners: TTLCache[str, tuple[str, str]] = TTLCache(maxsize, lifetime)
        self._lock = threading.Lock()

    def knows(self, session_id: str | None) -> bool:
        """Whether ``session_id`` has tokens minted here for someone."""
        if not session_id:
            return False
        with self._lock:
            return session_id in self._owners

    def settle(self, session_id: str, principal: Principal | None) -> str | None:
        """Record that ``session_id`` is now ``principal``'s (None: nobody's). Returns the
        subject whose tokens in that session must be purged (minted for another user, or
        for a user now gone), else None."""
        new = None if principal is None else owner_key(principal)
        with self._lock:
            old = self._owners.get(session_id)
            if new is None:
                self._owners.pop(session_id, None)
            elif old is None or old[0] != new:
                assert principal is not None
                self._owners[session_id] = (new, principal.subject)
        if old is None or old[0] == new:
            return None
        return old[1]
