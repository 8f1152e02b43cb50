"""The embed token a session holds, as issuers return it and the cache keeps it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EmbedToken:
    """An issued credential and its timing. The token itself never appears in the repr.

    ``refresh_at`` is when a fresh one should be fetched (set by the cache, before
    ``expires_at``); ``single_use`` credentials (one-time signed URLs) are never cached.
    ``url`` carries the embed URL for issuers that produce one (signed URLs, Metabase).
    """

    token: str = field(repr=False)
    expires_at: float
    issued_at: float
    subject: str
    jti: str | None = None
    kid: str | None = None
    single_use: bool = False
    url: str | None = field(default=None, repr=False)
    refresh_at: float = 0.0
    session_tag: str = field(default="", repr=False)

    def remaining(self, now: float) -> float:
        return self.expires_at - now

    def payload(self, now: float, *, min_refresh: float = 1.0) -> dict[str, Any]:
        """The JSON object the token endpoint answers with (integer epoch seconds)."""
        refresh_at = self.refresh_at or self.expires_at
        return {
            "token": self.token,
            "expires_at": int(self.expires_at),
            "expires_in": max(0, int(self.expires_at - now)),
            "refresh_in": max(min_refresh, math.floor(refresh_at - now)),
            "server_time": int(now),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict for a shared cache (never pickle)."""
        return {
            "token": self.token,
            "expires_at": self.expires_at,
            "issued_at": self.issued_at,
            "subject": self.subject,
            "jti": self.jti,
            "kid": self.kid,
            "url": self.url,
            "refresh_at": self.refresh_at,
            "session_tag": self.session_tag,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmbedToken:
        return cls(
            token=str(data["token"]),
            expires_at=float(data["expires_at"]),
            issued_at=float(data["issued_at"]),
            subject=str(data["subject"]),
            jti=data.get("jti"),
            kid=data.get("kid"),
            url=data.get("url"),
            refresh_at=float(data.get("refresh_at", 0.0)),
            session_tag=str(data.get("session_tag", "")),
        )
