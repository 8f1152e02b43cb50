"""Reading a profile's own ``EMBEDGATE_<PROVIDER>_*`` settings: typed, validated, and every
error naming the full setting (never its value when the value is secret)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..config import _bool, _json_object, _names
from ..errors import ConfigurationError
from ..issuers.base import HttpPolicy
from ..secret import Secret

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def check_url(setting: str, value: str, *, production: bool) -> str:
    """An absolute http(s) URL without a trailing slash; https only in production (except
    on loopback, where a local proxy may terminate TLS)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(setting, f"expected an http(s) URL, got {value!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(setting, "must not carry a query, a fragment or credentials")
    if production and parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigurationError(setting, "must use https in production")
    return value.rstrip("/")


class ProfileOptions:
    """The settings of one provider section; unknown names are refused up front."""

    def __init__(self, provider: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
        self.provider = provider
        self._values = dict(options)
        known_set = frozenset(known)
        unknown = sorted(set(self._values) - known_set)
        if unknown:
            expected = ", ".join(self.setting(k) for k in sorted(known_set)) or "none"
            raise ConfigurationError(
                self.setting(unknown[0]),
                f"is not a {provider} setting (a typo?); expected one of: {expected}",
            )

    def setting(self, name: str) -> str:
        """The full setting name, e.g. ``EMBEDGATE_SUPERSET_USERNAME``."""
        return f"EMBEDGATE_{self.provider.upper()}_{name.upper()}"

    def _raw(self, name: str) -> Any:
        value = self._values.get(name)
        if isinstance(value, str):
            value = value.strip()
        return None if value in (None, "") else value

    def present(self, name: str) -> bool:
        return self._raw(name) is not None

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._raw(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigurationError(
                self.setting(name), f"expected a string, got {type(value).__name__}"
            )
        return value

    def require(self, name: str, why: str = "") -> str:
        value = self.text(name)
        if value is None:
            raise ConfigurationError(self.setting(name), f"is required{why}")
        return value

    def secret(self, name: str, *, required: bool = False, why: str = "") -> Secret | None:
        value = self._raw(name)
        if value is None:
            if required:
                raise ConfigurationError(self.setting(name), f"is required{why}")
            return None
        if isinstance(value, Secret):
            return value
        if isinstance(value, (str, bytes)):
            return Secret(value)
        raise ConfigurationError(
            self.setting(name), f"expected a string, got {type(value).__name__}"
        )

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float = math.inf
    ) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigurationError(
                self.setting(name), f"expected a number, got {value!r}"
            ) from None
        if not math.isfinite(number) or not minimum <= number <= maximum:
            raise ConfigurationError(
                self.setting(name), f"must lie between {minimum:g} and {maximum:g}, got {number:g}"
            )
        return number

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        number = float(
            self.number(
                name, default, minimum=minimum, maximum=math.inf if maximum is None else maximum
            )
        )
        if not number.is_integer():
            raise ConfigurationError(self.setting(name), f"expected a whole number, got {number:g}")
        return int(number)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        return default if value is None else _bool(self.setting(name), value)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise ConfigurationError(
                self.setting(name), f"expected one of {', '.join(choices)}, got {value!r}"
            )
        return value

    def names(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self._raw(name)
        if value is None:
            return default
        if not isinstance(value, (str, list, tuple)):
            raise ConfigurationError(self.setting(name), "expected a comma-separated list")
        return _names(self.setting(name), value) or ()

    def json_object(self, name: str) -> dict[str, Any] | None:
        value = self._raw(name)
        if value is None:
            return None
        data = _json_object(self.setting(name), value)
        return None if data is None else dict(data)

    def string_map(self, name: str) -> dict[str, str]:
        """A JSON object of strings to strings (e.g. a role or parameter mapping)."""
        data = self.json_object(name) or {}
        for key, value in data.items():
            if not isinstance(value, str) or not value:
                raise ConfigurationError(
                    self.setting(name), f"the value for {key!r} must be a non-empty string"
                )
        return data

    def url(self, name: str, default: str | None, *, production: bool) -> str | None:
        value = self.text(name, default)
        return (
            None if value is None else check_url(self.setting(name), value, production=production)
        )


def http_policy(opts: ProfileOptions) -> HttpPolicy:
    """Timeouts and retries from ``EMBEDGATE_<PROVIDER>_CONNECT_TIMEOUT`` and friends."""
    return HttpPolicy(
        connect_timeout=opts.number("connect_timeout", 3.0, minimum=0.05, maximum=60),
        read_timeout=opts.number("read_timeout", 10.0, minimum=0.05, maximum=300),
        retries=opts.integer("retries", 2, maximum=5),
    )
