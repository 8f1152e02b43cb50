"""Django users as principals: username, email, full name and group names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...mapping import explicit_principal, plain_list
from ...principal import Principal


def django_principal(user: Any) -> Principal | None:
    """The principal for ``request.user``, or None unless it is authenticated.

    A user model's ``embed_principal()`` wins. Otherwise: ``get_username()`` as subject,
    ``email``, ``get_full_name()``, group names (``user.groups`` is a manager: read with
    ``values_list``), and, when the model has them, ``tenant`` (a string), ``roles`` and an
    ``embed_attributes`` mapping. Runs database queries: call it where sync code may.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if callable(getattr(user, "embed_principal", None)):
        return explicit_principal(user)
    groups: tuple[str, ...] = ()
    manager = getattr(user, "groups", None)
    if manager is not None and hasattr(manager, "values_list"):
        groups = tuple(sorted(manager.values_list("name", flat=True)))
    full_name = user.get_full_name() if callable(getattr(user, "get_full_name", None)) else None
    tenant = getattr(user, "tenant", None)
    attributes = getattr(user, "embed_attributes", None)
    return Principal(
        subject=str(user.get_username()),
        email=getattr(user, "email", None) or None,
        name=full_name or None,
        tenant=tenant if isinstance(tenant, str) else None,
        roles=plain_list(getattr(user, "roles", ())),
        groups=groups,
        attributes=attributes if isinstance(attributes, Mapping) else {},
    )
