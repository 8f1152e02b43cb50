"""Readers: where SSO libraries leave the logged-in user, as a claims mapping.

Each reader returns the claims of the SSO session (a plain ``dict``) or ``None`` when
nobody is logged in; :meth:`embedgate.Engine.principal_for` turns the claims into the
principal with ``EMBEDGATE_CLAIM_MAPPING`` (mode ``sso``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import PrincipalError

Claims = dict[str, Any]

# Where Flask/Starlette apps commonly keep Authlib's result in the session.
DEFAULT_SESSION_KEYS = ("user", "userinfo", "token")


def authlib_session_claims(
    session: Mapping[str, Any] | None, key: str | Sequence[str] = DEFAULT_SESSION_KEYS
) -> Claims | None:
    """The OIDC claims an Authlib login left in a session (Flask's ``session`` or
    Starlette's ``request.session``).

    Accepts the ID-token claims themselves (``session["user"] = token["userinfo"]``) or
    Authlib's whole token dict (``session["token"] = token``, read from its
    ``"userinfo"``). An ID token that was never parsed is not trusted: no claims then.
    """
    if not session:
        return None
    for name in (key,) if isinstance(key, str) else key:
        value = session.get(name)
        if not isinstance(value, Mapping):
            continue
        userinfo = value.get("userinfo")
        if isinstance(userinfo, Mapping) and userinfo.get("sub"):
            return dict(userinfo)
        if value.get("sub"):
            return dict(value)
    return None


def merge_userinfo(
    id_token_claims: Mapping[str, Any], userinfo: Mapping[str, Any] | None
) -> Claims:
    """The ID token's claims plus those the IdP returns only from its UserInfo endpoint.

    Many OpenID Providers (npm ``oidc-provider`` among them) put the ``email`` and
    ``profile`` claims only in the UserInfo response (OIDC Core 5.4). The ID token's own
    claims win, and a UserInfo answer for another ``sub`` is refused (OIDC Core 5.3.2).
    """
    merged = dict(id_token_claims)
    if not userinfo:
        return merged
    if userinfo.get("sub") != id_token_claims.get("sub"):
        raise PrincipalError(
            "subject", "the UserInfo response is for another subject than the ID token"
        )
    for name, value in userinfo.items():
        merged.setdefault(name, value)
    return merged


def _scope(request_or_scope: Any) -> Mapping[str, Any]:
    scope = getattr(request_or_scope, "scope", request_or_scope)
    return scope if isinstance(scope, Mapping) else {}


def starlette_session_claims(
    request_or_scope: Any, key: str | Sequence[str] = DEFAULT_SESSION_KEYS
) -> Claims | None:
    """Claims from Starlette's session (``SessionMiddleware`` must run before embedgate's)."""
    session = _scope(request_or_scope).get("session")
    return authlib_session_claims(session if isinstance(session, Mapping) else None, key)


def _claims_of(user: Any, accessor: str | Callable[[Any], Any]) -> Any:
    value = accessor(user) if callable(accessor) else getattr(user, accessor, None)
    return value() if callable(value) else value


def starlette_user_claims(
    request_or_scope: Any, accessor: str | Callable[[Any], Any] = "claims"
) -> Claims | None:
    """Claims of Starlette's ``request.user`` (``AuthenticationMiddleware``).

    The claims are ``user.claims`` (or what ``accessor`` names or returns); a user
    without claims gives ``{"sub": user.identity, "name": user.display_name}``.
    """
    user = _scope(request_or_scope).get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    claims = _claims_of(user, accessor)
    if isinstance(claims, Mapping):
        return dict(claims)
    subject = _safe(user, "identity") or _safe(user, "username")
    if not subject:
        raise PrincipalError("subject", f"{type(user).__name__} has no claims and no identity")
    out: Claims = {"sub": str(subject)}
    name = _safe(user, "display_name")
    if name:
        out["name"] = str(name)
    return out


def _safe(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except NotImplementedError:  # starlette.authentication.BaseUser's abstract properties
        return None


def django_user_claims(
    user: Any, accessor: str | Callable[[Any], Any] = "sso_claims"
) -> Claims | None:
    """Claims of a Django user: ``user.sso_claims`` (an attribute, property or method, or
    what ``accessor`` names or returns) as the SSO backend stored them at login.

    A user without stored claims gives the claims Django itself knows: ``sub`` (the
    username), ``email``, ``name`` and ``groups``. Anonymous users give ``None``.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    claims = _claims_of(user, accessor)
    if isinstance(claims, Mapping):
        return dict(claims)
    get_username = getattr(user, "get_username", None)
    subject = get_username() if callable(get_username) else getattr(user, "username", None)
    if not subject:
        raise PrincipalError("subject", f"{type(user).__name__} has no claims and no username")
    out: Claims = {"sub": str(subject)}
    if getattr(user, "email", None):
        out["email"] = user.email
    full_name = getattr(user, "get_full_name", None)
    name = full_name() if callable(full_name) else None
    if name:
        out["name"] = name
    groups = getattr(user, "groups", None)
    values_list = getattr(groups, "values_list", None)
    if callable(values_list):
        out["groups"] = [str(g) for g in values_list("name", flat=True)]
    return out


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    items: Iterable[Any] = value
    return [item.decode() if isinstance(item, bytes) else str(item) for item in items]


def saml_claims(
    attributes: Mapping[str, Any],
    nameid: str | None = None,
    *,
    nameid_format: str | None = None,
    session_index: str | None = None,
) -> Claims:
    """Claims from SAML attributes (``{URI or name: [values]}``, as python3-saml's
    ``get_attributes()`` returns them) plus the NameID.

    Attribute names are kept as they are (URIs included) and every value stays a list;
    the NameID is added as ``nameid`` and the IdP session as ``session_index``. The
    ``saml`` claim-mapping preset reads these names.
    """
    claims: Claims = {name: _values(values) for name, values in attributes.items()}
    if nameid:
        claims["nameid"] = nameid
    if nameid_format:
        claims["nameid_format"] = nameid_format
    if session_index:
        claims["session_index"] = session_index
    return claims


def python3_saml_claims(auth: Any) -> Claims | None:
    """Claims from a processed python3-saml ``OneLogin_Saml2_Auth`` (after
    ``process_response()``), or ``None`` if it did not authenticate anyone."""
    if not auth.is_authenticated():
        return None
    return saml_claims(
        auth.get_attributes(),
        auth.get_nameid(),
        nameid_format=auth.get_nameid_format(),
        session_index=auth.get_session_index(),
    )


def saml_session_claims(session: Mapping[str, Any] | None) -> Claims | None:
    """Claims a python3-saml app stored in its session, under the keys of python3-saml's
    own Flask/Django demos: ``samlUserdata``, ``samlNameId``, ``samlNameIdFormat`` and
    ``samlSessionIndex``."""
    if not session:
        return None
    attributes = session.get("samlUserdata")
    if not isinstance(attributes, Mapping):
        return None
    return saml_claims(
        attributes,
        session.get("samlNameId"),
        nameid_format=session.get("samlNameIdFormat"),
        session_index=session.get("samlSessionIndex"),
    )
