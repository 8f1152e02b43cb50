"""SSO end to end: from an OpenID Connect or SAML login to embed tokens.

- claim mapping presets for common IdPs (:mod:`embedgate.mapping_presets`, used by
  ``EMBEDGATE_CLAIM_MAPPING='{"preset": "saml"}'``);
- readers returning the SSO session's claims from Authlib (Flask or Starlette session),
  python3-saml, Starlette's ``request.user`` and Django users (:mod:`.readers`);
- SAML service providers on pysaml2: claims of a verified assertion, outstanding-request and
  replay state, single logout (:mod:`.saml`);
- session end: :class:`SSOSessions` (login index, local logout, IdP logout) and OIDC
  Back-Channel Logout (:class:`BackchannelLogout`, with Flask/Starlette routes).
"""

from __future__ import annotations

from ..mapping_presets import PRESETS, preset
from .backchannel import (
    BACKCHANNEL_EVENT,
    BackchannelLogout,
    LogoutClaims,
    LogoutResponse,
    LogoutTokenVerifier,
)
from .provider import OIDCProvider
from .readers import (
    authlib_session_claims,
    django_user_claims,
    merge_userinfo,
    python3_saml_claims,
    saml_claims,
    saml_session_claims,
    starlette_session_claims,
    starlette_user_claims,
)
from .saml import (
    SAMLRequestState,
    diagnose_response,
    pysaml2_claims,
    saml_error_code,
    saml_logout,
)
from .sessions import EndResult, RedisSessionIndex, SessionIndex, SSOSessions
from .web import (
    FlaskSSO,
    StarletteSSO,
    flask_backchannel_view,
    starlette_backchannel_endpoint,
    starlette_backchannel_route,
)

__all__ = [
    "BACKCHANNEL_EVENT",
    "PRESETS",
    "BackchannelLogout",
    "EndResult",
    "FlaskSSO",
    "LogoutClaims",
    "LogoutResponse",
    "LogoutTokenVerifier",
    "OIDCProvider",
    "RedisSessionIndex",
    "SAMLRequestState",
    "SSOSessions",
    "SessionIndex",
    "StarletteSSO",
    "authlib_session_claims",
    "diagnose_response",
    "django_user_claims",
    "flask_backchannel_view",
    "merge_userinfo",
    "preset",
    "pysaml2_claims",
    "python3_saml_claims",
    "saml_claims",
    "saml_error_code",
    "saml_logout",
    "saml_session_claims",
    "starlette_backchannel_endpoint",
    "starlette_backchannel_route",
    "starlette_session_claims",
    "starlette_user_claims",
]
