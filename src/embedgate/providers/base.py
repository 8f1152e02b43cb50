"""The profile interface and the registry of profiles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..config import Config
from ..errors import ConfigurationError
from ..issuer import Issuer

_PROFILES: dict[str, Profile] = {}


class Profile(Protocol):
    """One provider: builds its issuer from the configuration."""

    @property
    def name(self) -> str: ...

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> Issuer:
        """The issuer for ``config``; ``options`` are the ``EMBEDGATE_<NAME>_*`` settings
        (lower-case, prefix removed)."""
        ...


def register_profile(profile: Profile) -> None:
    """Make a profile selectable by ``EMBEDGATE_PROVIDER`` (a custom provider, say)."""
    _PROFILES[profile.name] = profile


def get_profile(name: str) -> Profile:
    try:
        return _PROFILES[name.lower()]
    except KeyError:
        raise ConfigurationError(
            "EMBEDGATE_PROVIDER",
            f"unknown provider {name!r}; expected one of {', '.join(sorted(_PROFILES))}",
        ) from None


def profile_names() -> list[str]:
    return sorted(_PROFILES)
