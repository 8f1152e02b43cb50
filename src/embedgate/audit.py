"""The audit trail: one structured event per token issued and per purge.

Events go to the ``embedgate.audit`` logger at INFO, their fields in the record's ``extra``
(a JSON formatter prints them as keys), and to an optional hook (``EMBEDGATE_AUDIT_HOOK``:
a callable, or ``"module:attribute"`` naming one) that receives the same fields as a dict.
Identities never appear: the subject and the session id are replaced by keyed hashes
(HMAC-SHA256 under ``EMBEDGATE_AUDIT_KEY``, by default derived from the signing secret or
API key), so events correlate without revealing who; claims are listed by name only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final, Literal

from .errors import ConfigurationError
from .principal import Principal
from .secret import Secret
from .token import EmbedToken

AUDIT_LOGGER: Final = "embedgate.audit"
log = logging.getLogger(AUDIT_LOGGER)
_errors = logging.getLogger("embedgate")

Reason = Literal["first_page", "refresh", "resource_grant"]
AuditHook = Callable[[dict[str, Any]], None]
_DERIVE_LABEL: Final = b"embedgate audit key v1"
_HASH_CHARS: Final = 32  # 128 bits of the HMAC: plenty to correlate, nothing to reverse


def load_hook(setting: str, value: Any) -> AuditHook | None:
    """The hook a setting names: a callable as is, ``"package.module:name"`` imported."""
    if value is None or value == "":
        return None
    if callable(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str) and ":" in value:
        module, _, name = value.strip().partition(":")
        try:
            found = importlib.import_module(module)
            for part in name.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(setting, f"cannot import {value!r} ({exc})") from None
        if callable(found):
            return found
    raise ConfigurationError(setting, "expected a callable or 'module:function'")


def derive_key(*materials: Secret | None) -> bytes | None:
    """A stable audit key from the first configured secret (None when there is none)."""
    for material in materials:
        if material is not None:
            return hmac.new(material.reveal_bytes(), _DERIVE_LABEL, hashlib.sha256).digest()
    return None


def claim_names(token: str) -> list[str]:
    """The top-level claim names of a JWT's payload, unverified; ``[]`` for opaque tokens."""
    parts = token.split(".")
    if len(parts) != 3:
        return []
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return []
    return sorted(payload) if isinstance(payload, dict) else []


class AuditTrail:
    """Writes audit events for one token service (its provider and mode).

    ``key`` keys the hashes of subjects and session ids; without one, a random key is
    made (hashes then correlate within this process only). ``hook`` receives every event.
    """

    def __init__(
        self,
        *,
        provider: str,
        mode: str = "token",
        key: bytes | None = None,
        hook: AuditHook | None = None,
    ) -> None:
        self.provider = provider
        self.mode = mode
        self.hook = hook
        self._key = key if key else secrets.token_bytes(32)

    @property
    def enabled(self) -> bool:
        """Whether an event would go anywhere (a hook, or the logger at INFO)."""
        return self.hook is not None or log.isEnabledFor(logging.INFO)

    def digest(self, kind: str, value: str) -> str:
        """The keyed hash standing for a subject or a session id in events."""
        data = f"{kind}\x00{value}".encode()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:_HASH_CHARS]

    def issued(
        self,
        token: EmbedToken,
        principal: Principal,
        session_id: str,
        reason: Reason,
        resource: str | None = None,
    ) -> None:
        """A token was issued to ``principal`` for session ``session_id``."""
        if not self.enabled:
            return
        event: dict[str, Any] = {
            "event": "token_issued",
            "time": _iso(token.issued_at),
            "provider": self.provider,
            "mode": self.mode,
            "reason": reason,
            "jti": token.jti,
            "expires_at": _iso(token.expires_at),
            "tenant": principal.tenant,
            "resource": resource,
            "claims": claim_names(token.token),
            "attributes": sorted(principal.attributes),
            "subject_hash": self.digest("subject", principal.subject),
            "session_hash": self.digest("session", session_id),
            "single_use": token.single_use,
        }
        self._emit(event, "embedgate audit: token issued (%s, %s)", reason, self.provider)

    def purged(
        self, count: int, *, session_id: str | None = None, subject: str | None = None
    ) -> None:
        """Tokens of a session (logout) or of a subject (privileges changed) were purged."""
        if not self.enabled:
            return
        event: dict[str, Any] = {
            "event": "tokens_purged",
            "time": _iso(None),
            "provider": self.provider,
            "mode": self.mode,
            "reason": "logout" if session_id is not None else "subject_changed",
            "count": count,
            "subject_hash": None if subject is None else self.digest("subject", subject),
            "session_hash": None if session_id is None else self.digest("session", session_id),
        }
        self._emit(event, "embedgate audit: %d token(s) purged (%s)", count, event["reason"])

    def _emit(self, event: dict[str, Any], message: str, *args: Any) -> None:
        log.info(message, *args, extra=event)
        if self.hook is not None:
            try:
                self.hook(dict(event))
            except Exception:  # a broken hook must not fail the request it observes
                _errors.exception("embedgate: the audit hook raised")

    def __repr__(self) -> str:
        return f"AuditTrail(provider={self.provider!r}, mode={self.mode!r})"


def _iso(when: float | None) -> str:
    moment = (
        datetime.now(timezone.utc) if when is None else datetime.fromtimestamp(when, timezone.utc)
    )
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def audit_trail(config: Any, provider: str) -> AuditTrail:
    """The audit trail a configuration asks for (key and hook from its settings)."""
    key_secret: Secret | None = getattr(config, "audit_key", None)
    key = key_secret.reveal_bytes() if key_secret is not None else None
    if key is None:
        key = derive_key(
            getattr(config, "secret", None),
            getattr(config, "private_key", None),
            getattr(config, "api_key", None),
        )
    hook = load_hook("EMBEDGATE_AUDIT_HOOK", getattr(config, "audit_hook", None))
    return AuditTrail(
        provider=provider, mode=str(getattr(config, "mode", "token")), key=key, hook=hook
    )
