"""A wrapper that keeps secret values out of reprs, logs and error messages."""

from __future__ import annotations

import re
from typing import Final

_MASK: Final = "**********"


class Secret:
    """Holds a secret string or bytes; only :meth:`reveal` gives the value back."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        self._value = value

    def reveal(self) -> str | bytes:
        """The secret itself: pass it straight to the code that needs it, never to a log."""
        return self._value

    def reveal_bytes(self) -> bytes:
        value = self._value
        return value.encode("utf-8") if isinstance(value, str) else value

    def __len__(self) -> int:
        return len(self.reveal_bytes())

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac

        return hmac.compare_digest(self.reveal_bytes(), other.reveal_bytes())

    def __hash__(self) -> int:
        return hash(self.reveal_bytes())

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("embedgate.Secret cannot be pickled or serialised")


# userinfo of any URL ("scheme://user:password@host"), and query parameters whose name
# says they hold a credential (redis-py reads "?password=" too).
_USERINFO = re.compile(r"(?i)(?<=[a-z0-9+.-]://)[^/?#@\s]*@")
_CREDENTIAL_PARAM = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*(?:pass|pwd|secret|token|key|auth|credential|signature)"
    r"[a-z0-9_.-]*)=)[^&#;\s]*"
)


def redact(text: str) -> str:
    """``text`` with every URL's userinfo and credential-like query values masked: for
    reprs, logs and error messages that show a setting's value."""
    if "://" in text:
        text = _USERINFO.sub(_MASK + "@", text)
    if "=" in text:
        text = _CREDENTIAL_PARAM.sub(lambda m: m.group(1) + _MASK, text)
    return text
