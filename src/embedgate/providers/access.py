"""A service credential that a remote minter obtains first and reuses until shortly before
it expires (Superset's and Preset's access tokens, an Azure AD token for Power BI)."""

from __future__ import annotations

import threading
from typing import Final

from ..secret import Secret

MARGIN: Final = 30.0


class ServiceAccess:
    """The current access token and its deadline, shared by concurrent exchanges."""

    def __init__(self, margin: float = MARGIN) -> None:
        self._margin = margin
        self._lock = threading.Lock()
        self._held: tuple[Secret, float] | None = None

    def current(self, now: float) -> Secret | None:
        """The held token, unless it expires within the margin."""
        with self._lock:
            if self._held is not None and now < self._held[1] - self._margin:
                return self._held[0]
            return None

    def keep(self, value: str, expires_at: float) -> Secret:
        """Hold ``value`` until ``expires_at``; returns it wrapped."""
        access = Secret(value)
        with self._lock:
            self._held = (access, expires_at)
        return access

    def forget(self, access: Secret) -> None:
        """Drop ``access`` (the provider refused it), unless a newer one replaced it."""
        with self._lock:
            if self._held is not None and self._held[0] is access:
                self._held = None

    @staticmethod
    def bearer(access: Secret) -> dict[str, str]:
        return {"authorization": f"Bearer {access.reveal_bytes().decode('utf-8')}"}

    def __repr__(self) -> str:
        return f"ServiceAccess(held={self._held is not None})"
