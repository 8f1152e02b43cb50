"""Who a token is for, independent of any web framework."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .canonical import digest
from .errors import PrincipalError

Scalar = str | int | float | bool | None
AttributeValue = Scalar | tuple[Scalar, ...]

# Fingerprints of the claim sets seen lately, by a type-exact key that is far cheaper to
# build than the canonical JSON and its digest: an app that builds a new Principal for the
# same user on every request (``embed_principal()``) pays the digest once per user.
_FINGERPRINTS: dict[tuple[Any, ...], str] = {}
_FINGERPRINTS_MAX = 4096


def _exact(value: object) -> object:
    """``value`` as a key that equals another only when their JSON is the same: ``1``,
    ``1.0`` and ``True`` are equal in Python, so each non-string is tagged with its type
    (floats by their repr: ``0.0`` and ``-0.0`` differ in JSON)."""
    kind = value.__class__
    if kind is str:
        return value
    if kind is tuple:
        return (tuple, *map(_exact, value))  # type: ignore[call-overload]
    if kind is float:
        return (float, repr(value))
    return (kind, value)


def _scalar(field_name: str, value: object) -> Scalar:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PrincipalError(field_name, "must be a finite number")
        return value
    raise PrincipalError(
        field_name,
        f"must be a JSON scalar (str, int, float, bool or null), not {type(value).__name__}",
    )


def _attribute_value(field_name: str, value: object) -> AttributeValue:
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return tuple(_scalar(f"{field_name}[{i}]", item) for i, item in enumerate(items))
    return _scalar(field_name, value)


def _strings(field_name: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise PrincipalError(field_name, f"must be a list of strings, not {type(value).__name__}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise PrincipalError(f"{field_name}[{i}]", "must be a non-empty string")
        if item not in out:
            out.append(item)
    return tuple(out)


def _optional_string(field_name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PrincipalError(field_name, f"must be a string, not {type(value).__name__}")
    return value or None


@dataclass(frozen=True)
class Principal:
    """The identity, permissions and attributes an embed token is issued for.

    ``subject`` is required; ``permissions`` maps a resource to its allowed actions;
    ``attributes`` holds JSON scalars or lists of scalars (row-level security inputs).
    Values are validated and frozen on construction.
    """

    subject: str
    email: str | None = None
    name: str | None = None
    tenant: str | None = None
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    permissions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject.strip():
            raise PrincipalError("subject", "must be a non-empty string")
        set_ = object.__setattr__
        set_(self, "email", _optional_string("email", self.email))
        set_(self, "name", _optional_string("name", self.name))
        set_(self, "tenant", _optional_string("tenant", self.tenant))
        set_(self, "roles", _strings("roles", self.roles))
        set_(self, "groups", _strings("groups", self.groups))
        if not isinstance(self.permissions, Mapping):
            raise PrincipalError("permissions", "must be a mapping of resource -> actions")
        permissions = {}
        for resource, actions in self.permissions.items():
            if not isinstance(resource, str) or not resource:
                raise PrincipalError("permissions", "resource names must be non-empty strings")
            permissions[resource] = _strings(f"permissions.{resource}", actions)
        set_(self, "permissions", MappingProxyType(permissions))
        if not isinstance(self.attributes, Mapping):
            raise PrincipalError("attributes", "must be a mapping of name -> value")
        attributes = {}
        for key, value in self.attributes.items():
            if not isinstance(key, str) or not key:
                raise PrincipalError("attributes", "attribute names must be non-empty strings")
            attributes[key] = _attribute_value(f"attributes.{key}", value)
        set_(self, "attributes", MappingProxyType(attributes))

    def __repr__(self) -> str:
        # Attribute values may be personal data: keep them out of reprs and tracebacks.
        return (
            f"Principal(subject={self.subject!r}, tenant={self.tenant!r}, "
            f"roles={self.roles!r}, attributes={sorted(self.attributes)!r})"
        )

    def __eq__(self, other: object) -> bool:
        # Equal when the same claims reach a token: 1, 1.0 and True are equal in Python,
        # not in JSON, and __hash__ (the fingerprint) must agree with __eq__.
        if not isinstance(other, Principal):
            return NotImplemented
        return self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-ready dict; empty fields are left out."""
        data: dict[str, Any] = {"subject": self.subject}
        for name in ("email", "name", "tenant"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.roles:
            data["roles"] = list(self.roles)
        if self.groups:
            data["groups"] = list(self.groups)
        if self.permissions:
            data["permissions"] = {k: list(v) for k, v in self.permissions.items()}
        if self.attributes:
            data["attributes"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.attributes.items()
            }
        return data

    def fingerprint(self) -> str:
        """A digest of everything that reaches a token: any change gives a new cache entry."""
        # The principal is frozen, so its digest is computed once (it keys every lookup).
        known: str | None = self.__dict__.get("_fingerprint")
        if known is None:
            key = self._identity()
            known = _FINGERPRINTS.get(key)
            if known is None:
                known = digest(self.to_dict())
                if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
                    _FINGERPRINTS.clear()
                _FINGERPRINTS[key] = known
            object.__setattr__(self, "_fingerprint", known)
        return known

    def _identity(self) -> tuple[Any, ...]:
        """Everything :meth:`to_dict` holds, as a type-exact hashable key."""
        return (
            self.subject,
            self.email,
            self.name,
            self.tenant,
            self.roles,
            self.groups,
            tuple(self.permissions.items()),
            tuple([(k, _exact(v)) for k, v in self.attributes.items()]),
        )

    def replace(self, **changes: Any) -> Principal:
        """A copy with some fields changed (validated again)."""
        data: dict[str, Any] = {
            "subject": self.subject,
            "email": self.email,
            "name": self.name,
            "tenant": self.tenant,
            "roles": self.roles,
            "groups": self.groups,
            "permissions": self.permissions,
            "attributes": self.attributes,
        }
        data.update(changes)
        return Principal(**data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Principal:
        """Build from a dict with Principal's own field names (``subject`` or ``sub``)."""
        known = {
            "subject",
            "email",
            "name",
            "tenant",
            "roles",
            "groups",
            "permissions",
            "attributes",
        }
        unknown = set(data) - known - {"sub"}
        if unknown:
            raise PrincipalError(sorted(unknown)[0], "is not a Principal field")
        kwargs = {k: v for k, v in data.items() if k in known}
        if "subject" not in kwargs and "sub" in data:
            kwargs["subject"] = data["sub"]
        if "subject" not in kwargs:
            raise PrincipalError("subject", "is required")
        return cls(**kwargs)


@dataclass(frozen=True)
class AttributePolicy:
    """Which attributes may reach a token, and which a principal must have.

    ``allowed=None`` lets every attribute through; otherwise attributes not listed are
    dropped. ``required`` names attributes (or the ``tenant``/``email``/``name`` fields)
    that must be present, else the principal is refused.
    """

    allowed: frozenset[str] | None = None
    required: frozenset[str] = frozenset()

    def apply(self, principal: Principal) -> Principal:
        """Return the principal as it may be issued, or raise :class:`PrincipalError`."""
        if self.allowed is None and not self.required:
            return principal  # no policy: the common case, on every request
        for name in sorted(self.required):
            if name in ("tenant", "email", "name"):
                if getattr(principal, name) is None:
                    raise PrincipalError(name, "is required by the attribute policy")
            elif name in ("roles", "groups"):
                if not getattr(principal, name):
                    raise PrincipalError(name, "is required by the attribute policy")
            elif principal.attributes.get(name) in (None, ()):
                raise PrincipalError(f"attributes.{name}", "is required by the attribute policy")
        if self.allowed is None:
            return principal
        kept = {
            k: v for k, v in principal.attributes.items() if k in self.allowed or k in self.required
        }
        if len(kept) == len(principal.attributes):
            return principal
        return principal.replace(attributes=kept)
