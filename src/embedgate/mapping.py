"""Turning the app's user (an object, or a mapping of claims) into a :class:`Principal`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import ConfigurationError, PrincipalError
from .mapping_presets import preset
from .principal import Principal

_MISSING = object()

# A claim path, or several tried in order (roles and groups: merged from all of them).
ClaimPath = str | Sequence[str]

TRANSFORMS: Final = ("first", "join", "list", "lower")
_SETTING: Final = "EMBEDGATE_CLAIM_MAPPING"


def lookup(claims: Mapping[str, Any], path: str) -> Any:
    """Read ``a.b.c`` from nested mappings; a literal key containing dots wins if present.

    Literal keys are matched at every level, longest first, so URI-named claims work
    anywhere in a path: ``https://example.com/app.region`` reads ``region`` inside the
    claim ``https://example.com/app``.
    """
    if path in claims:
        return claims[path]
    return _walk(claims, path.split("."))


def _walk(current: Any, parts: list[str]) -> Any:
    if not parts:
        return current
    if not isinstance(current, Mapping):
        return _MISSING
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in current:
            found = _walk(current[key], parts[end:])
            if found is not _MISSING:
                return found
    return _MISSING


def _single(field_name: str, value: Any) -> Any:
    # SAML attributes are multi-valued lists even for one value.
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            return None
        if len(value) == 1:
            return value[0]
        raise PrincipalError(
            field_name,
            f"expected one value, got {len(value)} (a 'first' or 'join' transform picks one)",
        )
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        # OIDC sometimes sends space-separated scopes/roles as one string.
        return value.split()
    return list(value)


def _transform(name: str, value: Any) -> Any:
    many = isinstance(value, (list, tuple))
    if name == "first":
        return (value[0] if value else None) if many else value
    if name == "join":
        return ",".join(str(item) for item in value) if many else value
    if name == "list":
        return list(value) if many else [value]
    # lower
    if many:
        return [item.lower() if isinstance(item, str) else item for item in value]
    return value.lower() if isinstance(value, str) else value


def _paths(value: ClaimPath | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _check_path(name: str, value: Any, *, optional: bool = True) -> ClaimPath | None:
    if value is None and optional:
        return None
    if isinstance(value, str) and value:
        return value
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(item, str) and item for item in value)
    ):
        return tuple(value)
    raise ConfigurationError(
        _SETTING, f"{name}: expected a claim name or a list of claim names, got {value!r}"
    )


@dataclass(frozen=True)
class ClaimMapping:
    """Where each Principal field is read from in a claims mapping (OIDC, SAML, userinfo).

    Paths may be dotted (``realm_access.roles``); literal keys containing dots (SAML
    attribute URIs) are matched first. A list of paths is tried in order; for ``roles``
    and ``groups`` the values of all of them are merged. ``attributes`` maps an attribute
    name to a claim path. ``transforms`` maps a field (``tenant``, ``attributes.region``)
    to ``first`` (first of several values), ``join`` (comma-joined), ``list`` (always a
    list) or ``lower``. Defaults fit standard OIDC claims.
    """

    subject: ClaimPath = "sub"
    email: ClaimPath | None = "email"
    name: ClaimPath | None = "name"
    tenant: ClaimPath | None = None
    roles: ClaimPath | None = "roles"
    groups: ClaimPath | None = "groups"
    permissions: ClaimPath | None = None
    attributes: Mapping[str, ClaimPath] = field(default_factory=dict)
    transforms: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "subject", _check_path("subject", self.subject, optional=False))
        for name in ("email", "name", "tenant", "roles", "groups", "permissions"):
            set_(self, name, _check_path(name, getattr(self, name)))
        for name in ("attributes", "transforms"):
            if not isinstance(getattr(self, name), Mapping):
                raise ConfigurationError(_SETTING, f"{name}: expected an object")
        attributes = {
            attr: _check_path(f"attributes.{attr}", path, optional=False)
            for attr, path in self.attributes.items()
        }
        set_(self, "attributes", attributes)
        set_(self, "transforms", dict(self.transforms))
        targets = {"subject", "email", "name", "tenant", "roles", "groups"}
        targets.update(f"attributes.{attr}" for attr in attributes)
        for target, transform in self.transforms.items():
            if target not in targets:
                raise ConfigurationError(
                    _SETTING, f"transforms.{target}: not a mapped field or attribute"
                )
            if transform not in TRANSFORMS:
                raise ConfigurationError(
                    _SETTING,
                    f"transforms.{target}: expected one of {', '.join(TRANSFORMS)}, "
                    f"got {transform!r}",
                )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ClaimMapping:
        """Build from e.g. ``{"subject": "nameid", "attributes": {"region": "custom.region"}}``.

        ``"preset"`` starts from a named mapping (``oidc``, ``saml``, ``azure-ad``,
        ``keycloak``: see :mod:`embedgate.mapping_presets`); the other keys override it and
        ``attributes``/``transforms`` are merged into the preset's.
        """
        data = dict(data)
        preset_name = data.pop("preset", None)
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise PrincipalError(f"claim_mapping.{sorted(unknown)[0]}", "is not a mappable field")
        if preset_name is not None:
            base = dict(preset(preset_name))
            for merged in ("attributes", "transforms"):
                if merged in data:
                    data[merged] = {**base.get(merged, {}), **data[merged]}
            data = {**base, **data}
        return cls(**data)

    def _first(self, claims: Mapping[str, Any], paths: ClaimPath | None) -> Any:
        for path in _paths(paths):
            value = lookup(claims, path)
            if value is not _MISSING and value not in (None, "", [], ()):
                return value
        return None

    def _all(self, claims: Mapping[str, Any], paths: ClaimPath | None) -> list[Any]:
        values: list[Any] = []
        for path in _paths(paths):
            value = lookup(claims, path)
            if value is not _MISSING:
                values.extend(_as_list(value))
        return values

    def _shaped(self, target: str, value: Any) -> Any:
        transform = self.transforms.get(target)
        return value if transform is None or value is None else _transform(transform, value)

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """Build the principal these claims describe."""
        subject = _single("subject", self._shaped("subject", self._first(claims, self.subject)))
        if subject in (None, ""):
            raise PrincipalError("subject", f"claim {self.subject!r} is missing")
        if isinstance(subject, (int, float)) and not isinstance(subject, bool):
            subject = str(subject)

        def scalar(name: str) -> Any:
            value = self._shaped(name, self._first(claims, getattr(self, name)))
            return _single(name, value)

        def several(name: str) -> tuple[Any, ...]:
            return tuple(_as_list(self._shaped(name, self._all(claims, getattr(self, name)))))

        attributes: dict[str, Any] = {}
        for attr, path in self.attributes.items():
            value = self._first(claims, path)
            if value is None:
                continue
            target = f"attributes.{attr}"
            value = self._shaped(target, value)
            keep_list = self.transforms.get(target) == "list"
            if not keep_list and isinstance(value, (list, tuple)) and len(value) == 1:
                value = value[0]
            attributes[attr] = value
        return Principal(
            subject=subject,
            email=scalar("email"),
            name=scalar("name"),
            tenant=scalar("tenant"),
            roles=several("roles"),
            groups=several("groups"),
            permissions=self._first(claims, self.permissions) or {},
            attributes=attributes,
        )


def plain_list(value: Any) -> tuple[Any, ...]:
    """A string as one name, a real sequence as its items, anything else as nothing."""
    # Only real sequences: an ORM relation manager (Django's user.groups) is not a list.
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(value)
    return ()


PrincipalSource = Callable[[Any], "Principal | None"]

_SUBJECT_ATTRS: Sequence[str] = ("username", "email", "id", "pk")


def explicit_principal(user: Any) -> Principal | None:
    """What ``user.embed_principal()`` returns: the explicit way a user object says what
    its tokens carry (checked to be a Principal or None)."""
    result = user.embed_principal()
    if result is not None and not isinstance(result, Principal):
        raise PrincipalError("subject", "embed_principal() must return a Principal or None")
    return result


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
    if callable(getattr(user, "embed_principal", None)):
        return explicit_principal(user)
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
    roles = plain_list(getattr(user, "roles", ()))
    attributes = getattr(user, "embed_attributes", None) or getattr(user, "attributes", None) or {}
    return Principal(
        subject=str(subject),
        email=getattr(user, "email", None) or None,
        name=getattr(user, "name", None) or getattr(user, "full_name", None) or None,
        tenant=getattr(user, "tenant", None),
        roles=roles,
        groups=plain_list(getattr(user, "groups", ())),
        permissions=getattr(user, "permissions", None) or {},
        attributes=attributes if isinstance(attributes, Mapping) else {},
    )
