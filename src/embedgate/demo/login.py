"""The host's login state, kept in Starlette's signed session cookie.

The session holds the user's id, the SSO claims after a login at the demo IdP, and the id
embedgate caches the session's tokens under (``sid``, rotated at every login so a session
id never outlives its user). Every model's middleware reads the same session.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Final

from starlette.requests import Request

from ..cache import new_session_id
from ..engine import Engine
from ..principal import Principal
from .users import USERS, DemoUser

USER_KEY: Final = "user"
SID_KEY: Final = "sid"
SSO_KEY: Final = "sso"
FLASH_KEY: Final = "flash"


def _session(scope: Mapping[str, Any]) -> Mapping[str, Any]:
    session = scope.get("session")
    return session if isinstance(session, Mapping) else {}


def session_user(session: Mapping[str, Any]) -> DemoUser | None:
    return USERS.get(session.get(USER_KEY) or "")


def sso_claims(session: Mapping[str, Any]) -> dict[str, Any] | None:
    claims = session.get(SSO_KEY)
    return dict(claims) if isinstance(claims, Mapping) else None


def host_principal(scope: MutableMapping[str, Any]) -> Principal | None:
    """user_resolver of the token and sandbox models: the logged-in user's principal."""
    user = session_user(_session(scope))
    return user.principal() if user else None


def sso_user(scope: MutableMapping[str, Any]) -> dict[str, Any] | None:
    """user_resolver of the SSO model: the verified ID-token claims (mapped by the engine)."""
    return sso_claims(_session(scope))


def session_id(scope: MutableMapping[str, Any]) -> str | None:
    """session_resolver of every model: the login's own id, not a cookie of embedgate's."""
    sid = _session(scope).get(SID_KEY)
    return sid if isinstance(sid, str) and sid else None


class Logins:
    """Logging in and out; both purge the old session's tokens from every engine."""

    def __init__(self, engines: Sequence[Engine]) -> None:
        self._engines = tuple(engines)

    async def log_in(
        self, request: Request, user: DemoUser, claims: Mapping[str, Any] | None = None
    ) -> None:
        await self.purge(request)
        request.session.clear()
        request.session.update({USER_KEY: user.id, SID_KEY: new_session_id()})
        if claims is not None:
            request.session[SSO_KEY] = dict(claims)

    async def log_out(self, request: Request) -> int:
        """End the session; the number of cached embed tokens purged."""
        purged = await self.purge(request)
        request.session.clear()
        return purged

    async def purge(self, request: Request) -> int:
        sid = session_id(request.scope)
        if sid is None:
            return 0
        return sum([await engine.alogout(sid) for engine in self._engines])
