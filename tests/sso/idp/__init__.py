"""A small OpenID Provider for tests and local runs, built from Authlib's server parts."""

from __future__ import annotations

from .server import IdPClient, IdPUser, LocalIdP, running_idp

__all__ = ["IdPClient", "IdPUser", "LocalIdP", "running_idp"]
