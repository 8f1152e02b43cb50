"""Flask and Starlette glue: the back-channel logout route, and the user/session
resolvers embedgate's middleware needs when the user lives in the framework's session."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .backchannel import BackchannelLogout
from .readers import Claims, authlib_session_claims
from .sessions import SSOSessions

SESSION_KEY = "embedgate_session"
SessionReader = Callable[[Mapping[str, Any]], Claims | None]


# -- Flask -------------------------------------------------------------------------------


def flask_backchannel_view(handler: BackchannelLogout) -> Callable[[], Any]:
    """A Flask view answering the IdP's back-channel logout POST."""

    def backchannel_logout() -> Any:
        from flask import Response, request

        result = handler.handle(request.form, request.mimetype)
        return Response(result.body, status=result.status, headers=list(result.headers))

    return backchannel_logout


class FlaskSSO:
    """SSO sessions for a Flask app behind :class:`~embedgate.wsgi.EmbedgateWSGIMiddleware`.

    ``login(claims)`` (in the login callback) records the SSO login and keeps the
    embedgate session id in Flask's session; requests of a session the IdP ended drop
    Flask's session before the view runs. ``user``/``session_id`` are the middleware's
    ``user_resolver``/``session_resolver``: they read Flask's session cookie, so the
    token endpoint (served before Flask runs) knows the user too.
    """

    def __init__(
        self,
        app: Any,
        sessions: SSOSessions,
        *,
        reader: SessionReader = authlib_session_claims,
        session_key: str = SESSION_KEY,
        backchannel: BackchannelLogout | None = None,
        backchannel_rule: str = "/backchannel-logout",
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.reader = reader
        self.session_key = session_key
        app.before_request(self._drop_ended_session)
        if backchannel is not None:
            app.add_url_rule(
                backchannel_rule,
                "embedgate_backchannel_logout",
                flask_backchannel_view(backchannel),
                methods=["POST"],
            )

    def login(self, claims: Mapping[str, Any]) -> str:
        """Record the login in the index and in Flask's session; returns the session id."""
        from flask import session

        session_id = self.sessions.login(claims)
        session[self.session_key] = session_id
        return session_id

    def logout(self) -> int:
        """Local logout: purge the session's tokens and clear Flask's session."""
        from flask import session

        session_id = session.get(self.session_key)
        session.clear()
        return self.sessions.logout(session_id) if session_id else 0

    def _drop_ended_session(self) -> None:
        from flask import session

        session_id = session.get(self.session_key)
        if session_id is not None and not self.sessions.active(session_id):
            session.clear()

    def _flask_session(self, environ: dict[str, Any]) -> Mapping[str, Any]:
        request = self.app.request_class(environ)
        session = self.app.session_interface.open_session(self.app, request)
        return session if session is not None else {}

    def user(self, environ: dict[str, Any]) -> Claims | None:
        """The SSO claims of the request's session, or None (anonymous or ended)."""
        session = self._flask_session(environ)
        if not self.sessions.active(session.get(self.session_key)):
            return None
        return self.reader(session)

    def session_id(self, environ: dict[str, Any]) -> str | None:
        session_id = self._flask_session(environ).get(self.session_key)
        return session_id if isinstance(session_id, str) else None


# -- Starlette ---------------------------------------------------------------------------


def starlette_backchannel_endpoint(handler: BackchannelLogout) -> Callable[[Any], Any]:
    """A Starlette/FastAPI endpoint answering the IdP's back-channel logout POST."""

    async def backchannel_logout(request: Any) -> Any:
        from starlette.responses import Response

        body = await request.body()
        result = await handler.ahandle(body, request.headers.get("content-type"))
        return Response(result.body, status_code=result.status, headers=dict(result.headers))

    return backchannel_logout


def starlette_backchannel_route(
    handler: BackchannelLogout, path: str = "/backchannel-logout"
) -> Any:
    """A ``starlette.routing.Route`` for the back-channel logout POST."""
    from starlette.routing import Route

    return Route(path, starlette_backchannel_endpoint(handler), methods=["POST"])


class StarletteSSO:
    """Resolvers for :class:`~embedgate.asgi.EmbedgateMiddleware` when the SSO claims
    live in Starlette's session (``SessionMiddleware`` must wrap embedgate's middleware).

    ``login(request, claims)`` records the login in the index and the session.
    """

    def __init__(
        self,
        sessions: SSOSessions,
        *,
        reader: SessionReader = authlib_session_claims,
        session_key: str = SESSION_KEY,
    ) -> None:
        self.sessions = sessions
        self.reader = reader
        self.session_key = session_key

    def login(self, request: Any, claims: Mapping[str, Any]) -> str:
        session_id = self.sessions.login(claims)
        request.session[self.session_key] = session_id
        return session_id

    def logout(self, request: Any) -> int:
        session_id = request.session.get(self.session_key)
        request.session.clear()
        return self.sessions.logout(session_id) if session_id else 0

    @staticmethod
    def _session(scope: Mapping[str, Any]) -> Mapping[str, Any]:
        session = scope.get("session")
        return session if isinstance(session, Mapping) else {}

    def user(self, scope: Mapping[str, Any]) -> Claims | None:
        session = self._session(scope)
        if not self.sessions.active(session.get(self.session_key)):
            return None
        return self.reader(session)

    def session_id(self, scope: Mapping[str, Any]) -> str | None:
        session_id = self._session(scope).get(self.session_key)
        return session_id if isinstance(session_id, str) else None
