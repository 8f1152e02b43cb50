"""Provider profiles: how a principal becomes each analytics provider's credential.

A profile is selected with ``EMBEDGATE_PROVIDER`` and reads its own settings from
``EMBEDGATE_<PROVIDER>_*`` keys.
"""

from __future__ import annotations

from .base import Profile, get_profile, register_profile
from .generic import GenericProfile

register_profile(GenericProfile())

__all__ = ["GenericProfile", "Profile", "get_profile", "register_profile"]
