"""The profile interface and the registry of profiles."""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from ..config import Config
from ..errors import ConfigurationError
from ..issuers.base import Issuer
from ..token import EmbedToken
from .browser import BrowserPolicy

_PROFILES: dict[str, Profile] = {}


class Profile(Protocol):
    """One provider: builds its issuer, renders its embed markup, shapes endpoint answers.

    ``build_issuer`` runs once per engine, on the engine's own copy of the profile (see
    :func:`get_profile`), so it may keep what ``snippet`` needs later (base URLs...).
    """

    @property
    def name(self) -> str: ...

    @property
    def snippet_kinds(self) -> tuple[str, ...]:
        """The ``kind`` values :meth:`snippet` accepts (e.g. ``("dashboard", "question")``)."""
        ...

    @property
    def session_tokens(self) -> bool:
        """Whether the session has one token of its own (what :meth:`resource_for` answers
        None for), known once :meth:`build_issuer` has run. False when every token is bound
        to the resource it embeds (Metabase static embedding, Looker): pages then carry no
        session token and the endpoint refuses to mint one."""
        ...

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> Issuer:
        """The issuer for ``config``; ``options`` are the ``EMBEDGATE_<NAME>_*`` settings
        (lower-case, prefix removed)."""
        ...

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        """The ``resource`` to ask the token service for, to embed ``resource`` as ``kind``.

        None means the session's one token serves this embed, the token the endpoint and
        ``embedgate.js`` refresh. A resource-bound token (Metabase static embedding, Looker)
        returns the resource, and its element carries ``data-embedgate-resource``.
        """
        ...

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        """Escaped HTML embedding ``resource``; the element bearing the token carries
        ``data-embedgate-token="<attribute>"`` naming the attribute the browser script
        updates on refresh (with ``data-embedgate-url-template`` for iframes)."""
        ...

    def endpoint_payload(self, token: EmbedToken, payload: dict[str, Any]) -> dict[str, Any]:
        """The token endpoint's JSON answer, from embedgate's own ``payload``."""
        ...


class ProfileBase:
    """Defaults for profiles: one token per session serves every embed, and endpoint
    answers are embedgate's own."""

    name = "base"
    snippet_kinds: tuple[str, ...] = ()

    @property
    def session_tokens(self) -> bool:
        return True

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        self.check_kind(kind)
        return None

    def endpoint_payload(self, token: EmbedToken, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def browser_policy(self) -> BrowserPolicy:
        """What ``embedgate.js`` may do with this provider's tokens (see
        :class:`~embedgate.providers.browser.BrowserPolicy`); by default nothing."""
        return BrowserPolicy()

    def check_kind(self, kind: str) -> None:
        if kind not in self.snippet_kinds:
            raise ConfigurationError(
                f"{self.name} snippet kind",
                f"unknown kind {kind!r}; expected one of {', '.join(self.snippet_kinds)}",
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# Built-in profiles are imported on first use: remote-minting ones need httpx (an extra).
_BUILTIN: dict[str, tuple[str, str]] = {
    "toucan": ("embedgate.providers.toucan", "ToucanProfile"),
    "superset": ("embedgate.providers.superset", "SupersetProfile"),
    "metabase": ("embedgate.providers.metabase", "MetabaseProfile"),
    "tableau": ("embedgate.providers.tableau", "TableauProfile"),
    "looker": ("embedgate.providers.looker", "LookerProfile"),
    "powerbi": ("embedgate.providers.powerbi", "PowerBiProfile"),
    "quicksight": ("embedgate.providers.quicksight", "QuickSightProfile"),
    "sigma": ("embedgate.providers.sigma", "SigmaProfile"),
    "preset": ("embedgate.providers.preset", "PresetProfile"),
    "thoughtspot": ("embedgate.providers.thoughtspot", "ThoughtSpotProfile"),
}


def builtin_profile_class(class_name: str) -> type[Any]:
    """A built-in profile class by name, imported now."""
    for module_name, name in _BUILTIN.values():
        if name == class_name:
            return getattr(importlib.import_module(module_name), name)  # type: ignore[no-any-return]
    raise AttributeError(class_name)


def register_profile(profile: Profile) -> None:
    """Make a profile selectable by ``EMBEDGATE_PROVIDER`` (a custom provider, say)."""
    _PROFILES[profile.name] = profile


def get_profile(name: str) -> Profile:
    """A fresh copy of the registered profile: each engine configures its own."""
    key = name.lower()
    if key not in _PROFILES and key in _BUILTIN:
        register_profile(builtin_profile_class(_BUILTIN[key][1])())
    try:
        registered = _PROFILES[key]
    except KeyError:
        raise ConfigurationError(
            "EMBEDGATE_PROVIDER",
            f"unknown provider {name!r}; expected one of {', '.join(profile_names())}",
        ) from None
    return copy.copy(registered)


def profile_names() -> list[str]:
    return sorted(set(_PROFILES) | set(_BUILTIN))
