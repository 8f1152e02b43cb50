"""Named claim mappings for common identity providers.

Use one with ``EMBEDGATE_CLAIM_MAPPING='{"preset": "saml", "tenant": "org"}'``: the keys
given override the preset's, and ``attributes`` are merged into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from .errors import ConfigurationError

# SAML attribute names as Azure AD (Entra ID), ADFS and Okta send them, then the
# LDAP/eduPerson OIDs (Shibboleth, Okta's urn:oid format), then plain friendly names.
_MS = "http://schemas.microsoft.com/ws/2008/06/identity/claims"
_MS_ID = "http://schemas.microsoft.com/identity/claims"
_XMLSOAP = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"

SAML_EMAIL: Final = (
    f"{_XMLSOAP}/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "email",
    "mail",
)
SAML_NAME: Final = (
    f"{_MS_ID}/displayname",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "displayName",
    f"{_XMLSOAP}/name",
    "name",
)
SAML_ROLES: Final = (f"{_MS}/role", "http://schemas.xmlsoap.org/claims/Role", "role", "roles")
SAML_GROUPS: Final = (
    f"{_MS}/groups",
    "http://schemas.xmlsoap.org/claims/Group",
    "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    "memberOf",
    "groups",
)

PRESETS: Final[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {
        # Standard OIDC claims (the ClaimMapping defaults, spelled out).
        "oidc": {
            "subject": "sub",
            "email": "email",
            "name": "name",
            "roles": "roles",
            "groups": "groups",
        },
        # python3-saml attributes plus the NameID the readers add as "nameid".
        "saml": {
            "subject": ("nameid", f"{_XMLSOAP}/nameidentifier", f"{_MS_ID}/objectidentifier"),
            "email": SAML_EMAIL,
            "name": SAML_NAME,
            "roles": SAML_ROLES,
            "groups": SAML_GROUPS,
            "transforms": {"email": "first", "name": "first"},
        },
        # Azure AD / Entra ID SAML: the directory tenant is the host's tenant.
        "azure-ad-saml": {
            "subject": (f"{_MS_ID}/objectidentifier", "nameid"),
            "email": SAML_EMAIL,
            "name": SAML_NAME,
            "tenant": f"{_MS_ID}/tenantid",
            "roles": SAML_ROLES,
            "groups": SAML_GROUPS,
            "transforms": {"email": "first", "name": "first"},
        },
        # Azure AD / Entra ID OIDC tokens: oid is stable across apps, tid is the tenant.
        "azure-ad": {
            "subject": ("oid", "sub"),
            "email": ("email", "preferred_username", "upn"),
            "name": "name",
            "tenant": "tid",
            "roles": "roles",
            "groups": "groups",
        },
        # Keycloak: realm roles live under realm_access.
        "keycloak": {
            "subject": "sub",
            "email": "email",
            "name": ("name", "preferred_username"),
            "roles": "realm_access.roles",
            "groups": "groups",
        },
    }
)


def preset(name: str) -> Mapping[str, Any]:
    """The claim mapping fields of a named preset."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigurationError(
            "EMBEDGATE_CLAIM_MAPPING",
            f"preset: unknown preset {name!r}; expected one of {', '.join(sorted(PRESETS))}",
        ) from None
