"""Django users as principals: username, email, full name and group names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import PrincipalError
from ...principal import Principal


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return ()


def django_principal(user: Any) -> Principal | None:
    """The principal for ``request.user``, or None unless it is authenticated.

    A user model's ``embed_principal()`` wins. Otherwise: ``get_username()`` as subject,
    ``email``, ``get_full_name()``, group names (``user.groups`` is a manager: read with
    ``values_list``), and, when the model has them, ``tenant`` (a string), ``roles`` and an
    ``embed_attributes`` mapping. Runs database queries: call it where sync code may.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    method = getattr(user, "embed_principal", None)
    if callable(method):
        result = method()
        if result is not None and not isinstance(result, Principal):
            raise PrincipalError("subject", "embed_principal() must return a Principal or None")
        return result
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
        roles=_names(getattr(user, "roles", ())),
        groups=groups,
        attributes=attributes if isinstance(attributes, Mapping) else {},
    )
