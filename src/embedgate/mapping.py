"""Turning the app's user (an object, or a mapping of claims) into a :class:`Principal`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import PrincipalError
from .principal import Principal

_MISSING = object()


def lookup(claims: Mapping[str, Any], path: str) -> Any:
    """Read ``a.b.c`` from nested mappings; a literal key containing dots wins if present."""
    if path in claims:
        return claims[path]
    current: Any = claims
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _single(field_name: str, value: Any) -> Any:
    # SAML attributes are multi-valued lists even for one value.
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            return None
        if len(value) == 1:
            return value[0]
        raise PrincipalError(field_name, f"expected one value, got {len(value)}")
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        # OIDC sometimes sends space-separated scopes/roles as one string.
        return value.split()
    return list(value)


@dataclass(frozen=True)
class ClaimMapping:
    """Where each Principal field is read from in a claims mapping (OIDC, SAML, userinfo).

    Paths may be dotted (``realm_access.roles``). ``attributes`` maps an attribute name
    to a claim path. Defaults fit standard OIDC claims.
    """

    subject: str = "sub"
    email: str | None = "email"
    name: str | None = "name"
    tenant: str | None = None
    roles: str | None = "roles"
    groups: str | None = "groups"
    permissions: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ClaimMapping:
        """Build from e.g. ``{"subject": "nameid", "attributes": {"region": "custom.region"}}``."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise PrincipalError(f"claim_mapping.{sorted(unknown)[0]}", "is not a mappable field")
        return cls(**dict(data))

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """Build the principal these claims describe."""
        subject = _single("subject", lookup(claims, self.subject))
        if subject is _MISSING or subject in (None, ""):
            raise PrincipalError("subject", f"claim {self.subject!r} is missing")
        if isinstance(subject, (int, float)) and not isinstance(subject, bool):
            subject = str(subject)

        def read(path: str | None) -> Any:
            if path is None:
                return None
            value = lookup(claims, path)
            return None if value is _MISSING else value

        attributes: dict[str, Any] = {}
        for attr, path in self.attributes.items():
            value = read(path)
            if value is None:
                continue
            if isinstance(value, (list, tuple)) and len(value) == 1:
                value = value[0]
            attributes[attr] = value
        permissions = read(self.permissions) or {}
        return Principal(
            subject=subject,
            email=_single("email", read(self.email)),
            name=_single("name", read(self.name)),
            tenant=_single("tenant", read(self.tenant)),
            roles=tuple(_as_list(read(self.roles))),
            groups=tuple(_as_list(read(self.groups))),
            permissions=permissions,
            attributes=attributes,
        )


def _plain_list(value: Any) -> tuple[Any, ...]:
    # Only real sequences: an ORM relation manager (Django's user.groups) is not a list.
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return ()


PrincipalSource = Callable[[Any], "Principal | None"]

_SUBJECT_ATTRS: Sequence[str] = ("username", "email", "id", "pk")


def principal_from_user(user: Any, mapping: ClaimMapping | None = None) -> Principal | None:
    """Best effort: a Principal from whatever the app calls its user.

    Accepts a :class:`Principal`, ``None`` (anonymous), a mapping of claims, or an object.
    An object may define ``embed_principal()`` returning a Principal (the explicit way);
    otherwise ``get_id()`` (Flask-Login) or ``username``/``email``/``id``/``pk`` gives the
    subject and ``tenant``, ``roles``, ``groups``, ``permissions``, ``embed_attributes``
    are read when present. Unauthenticated users (``is_authenticated`` false) give None.
    """
    if user is None:
        return None
    if isinstance(user, Principal):
        return user
    if isinstance(user, Mapping):
        return (mapping or ClaimMapping()).principal(user)
    if getattr(user, "is_authenticated", True) is False:
        return None
    method = getattr(user, "embed_principal", None)
    if callable(method):
        result = method()
        if result is not None and not isinstance(result, Principal):
            raise PrincipalError("subject", "embed_principal() must return a Principal or None")
        return result
    subject: Any = None
    get_id = getattr(user, "get_id", None)
    if callable(get_id):
        subject = get_id()
    for attr in _SUBJECT_ATTRS:
        if subject not in (None, ""):
            break
        subject = getattr(user, attr, None)
    if subject in (None, ""):
        raise PrincipalError(
            "subject",
            f"cannot find an id on {type(user).__name__}; give it an embed_principal() method",
        )
    roles = _plain_list(getattr(user, "roles", ()))
    attributes = getattr(user, "embed_attributes", None) or getattr(user, "attributes", None) or {}
    return Principal(
        subject=str(subject),
        email=getattr(user, "email", None) or None,
        name=getattr(user, "name", None) or getattr(user, "full_name", None) or None,
        tenant=getattr(user, "tenant", None),
        roles=roles,
        groups=_plain_list(getattr(user, "groups", ())),
        permissions=getattr(user, "permissions", None) or {},
        attributes=attributes if isinstance(attributes, Mapping) else {},
    )
