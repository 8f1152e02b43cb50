"""InvalidationJournal: this process's recent invalidations, applied again once Redis
answers after a failure.

An invalidation made while Redis fails over is lost twice over: the index read or the
deletes fail (so the shared entries stay), and the pub/sub message never leaves (so other
workers' in-process tiers keep serving). One acknowledged by a master that dies before
replicating it is lost silently. The journal keeps every invalidation of the last
``window`` seconds; any failure while it holds some (or a re-subscription of the
listener) wakes a daemon thread that replays them all, idempotently, as soon as Redis
answers, and once more a little later for workers whose listener re-subscribed after the
first replay's message.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

log = logging.getLogger("embedgate")

DEFAULT_WINDOW: Final = 60.0
MAX_ENTRIES: Final = 10_000
# The second replay, for listeners that re-subscribed after the first one's message.
ECHO_AFTER: Final = 2.0

Apply = Callable[[str | None, str | None], bool]


class InvalidationJournal:
    """Recent ``(session_tag, subject)`` invalidations and the thread that replays them."""

    def __init__(self, apply: Apply, *, window: float = DEFAULT_WINDOW) -> None:
        self._apply = apply
        self.window = window
        self._entries: deque[tuple[float, str | None, str | None]] = deque(maxlen=MAX_ENTRIES)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = threading.Event()
        self.replays = 0  # invalidations applied again (for tests and metrics)

    def record(self, session_tag: str | None, subject: str | None) -> None:
        with self._lock:
            self._entries.append((time.monotonic(), session_tag, subject))

    def _recent(self) -> list[tuple[str | None, str | None]]:
        cutoff = time.monotonic() - self.window
        with self._lock:
            while self._entries and self._entries[0][0] < cutoff:
                self._entries.popleft()
            seen: dict[tuple[str | None, str | None], None] = {}
            for _, tag, subject in self._entries:
                seen[(tag, subject)] = None
            return list(seen)

    def trouble(self) -> None:
        """Redis failed, or the listener re-subscribed: replay once it answers."""
        if self._closed or not self._entries or threading.current_thread() is self._thread:
            return  # the replay's own failures are paced by its loop
        self._wake.set()
        pid = os.getpid()
        if self._pid == pid and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == pid and self._thread is not None and self._thread.is_alive():
                return
            self._pid = pid
            self._thread = threading.Thread(target=self._run, name="embedgate-replay", daemon=True)
            self._thread.start()

    def _replay(self) -> bool:
        entries = self._recent()
        for tag, subject in entries:
            if not self._apply(tag, subject):
                return False
        self.replays += len(entries)
        if entries:
            log.info(
                "embedgate: replayed %d recent invalidation(s) after a Redis failure", len(entries)
            )
        return True

    def _run(self) -> None:
        delay = 0.1
        echo_at: float | None = None
        while not self._closed:
            # Paced by its own clock: failures elsewhere only mark the work as pending.
            self._stop.wait(delay * (0.5 + random.random()))  # noqa: S311 - jitter only
            if self._wake.is_set():
                self._wake.clear()
                echo_at = None
            if not self._recent():
                return
            if echo_at is not None and time.monotonic() < echo_at:
                continue
            if self._replay():
                if echo_at is not None:
                    return  # the echo is done; the next failure starts again
                echo_at = time.monotonic() + ECHO_AFTER
                delay = 0.5
            else:
                delay = min(delay * 2, 1.0)

    def close(self) -> None:
        self._closed = True
        self._stop.set()
