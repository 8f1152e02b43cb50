"""Provider profiles: how a principal becomes each analytics provider's credential.

A profile is selected with ``EMBEDGATE_PROVIDER`` and reads its own settings from
``EMBEDGATE_<PROVIDER>_*`` keys.
"""

from __future__ import annotations

from .base import Profile, ProfileBase, get_profile, profile_names, register_profile
from .generic import GenericProfile
from .looker import LookerProfile
from .metabase import MetabaseProfile
from .superset import SupersetProfile
from .tableau import TableauProfile
from .toucan import ToucanProfile

for _profile in (
    GenericProfile(),
    ToucanProfile(),
    SupersetProfile(),
    MetabaseProfile(),
    TableauProfile(),
    LookerProfile(),
):
    register_profile(_profile)

__all__ = [
    "GenericProfile",
    "LookerProfile",
    "MetabaseProfile",
    "Profile",
    "ProfileBase",
    "SupersetProfile",
    "TableauProfile",
    "ToucanProfile",
    "get_profile",
    "profile_names",
    "register_profile",
]
