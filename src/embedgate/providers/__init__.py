"""Provider profiles: how a principal becomes each analytics provider's credential.

A profile is selected with ``EMBEDGATE_PROVIDER`` and reads its own settings from
``EMBEDGATE_<PROVIDER>_*`` keys. Built-in profiles other than ``generic`` are imported when
first selected (or named, e.g. ``embedgate.providers.ToucanProfile``), so a provider that
mints over HTTP costs nothing to an app that does not use it.
"""

from __future__ import annotations

from typing import Any

from .base import (
    Profile,
    ProfileBase,
    builtin_profile_class,
    get_profile,
    profile_names,
    register_profile,
)
from .generic import GenericProfile

register_profile(GenericProfile())


def __getattr__(name: str) -> Any:
    return builtin_profile_class(name)


__all__ = [
    "GenericProfile",
    "LookerProfile",
    "MetabaseProfile",
    "PowerBiProfile",
    "PresetProfile",
    "Profile",
    "ProfileBase",
    "QuickSightProfile",
    "SigmaProfile",
    "SupersetProfile",
    "TableauProfile",
    "ThoughtSpotProfile",
    "ToucanProfile",
    "get_profile",
    "profile_names",
    "register_profile",
]
