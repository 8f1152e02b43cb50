"""The token endpoint, whole: every shell and adapter reads the body (bounded), resolves the
user, and calls :func:`answer_token_request` (sync code) or :func:`aanswer_token_request`
(async code) with them; the answer is a :class:`~embedgate.web.values.WebResponse` to
translate. Who asks comes before what is asked: an anonymous caller gets 401 whatever it
sent. The rules themselves are :class:`~embedgate.web.gate.WebGate`'s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import EmbedgateError
from ..principal import Principal
from .gate import WebGate
from .values import SessionDecision, WebRequest, WebResponse


def _asked(
    gate: WebGate, request: WebRequest, body: bytes, user: Any
) -> WebResponse | tuple[Principal, str | None] | None:
    """A refusal, or who asks and for which resource; None for an anonymous caller."""
    early = gate.check_token_request(request)
    if early is not None:
        return early
    try:
        principal = gate.principal_for(user)
    except EmbedgateError as error:  # a user the mapping cannot read
        return gate.failure(error, None)
    if principal is None:
        return None
    ask = gate.token_ask(request, body)
    if isinstance(ask, WebResponse):
        return ask
    return principal, ask.resource


def answer_token_request(
    gate: WebGate,
    request: WebRequest,
    body: bytes,
    user: Any,
    session: Callable[[], SessionDecision],
) -> WebResponse:
    """The endpoint's answer to ``request`` (``body`` read, ``user`` the app's user);
    ``session`` decides the request's session when it is needed."""
    asked = _asked(gate, request, body, user)
    if isinstance(asked, WebResponse):
        return asked
    if asked is None:
        gate.settle_user(session().session_id, None)  # logged out: purge what it held
        return gate.unauthenticated()
    return answer_token(gate, asked[0], session(), asked[1])


async def aanswer_token_request(
    gate: WebGate,
    request: WebRequest,
    body: bytes,
    user: Any,
    session: Callable[[], Awaitable[SessionDecision]],
) -> WebResponse:
    """Async face of :func:`answer_token_request`."""
    asked = _asked(gate, request, body, user)
    if isinstance(asked, WebResponse):
        return asked
    if asked is None:
        await gate.asettle_user((await session()).session_id, None)
        return gate.unauthenticated()
    return await aanswer_token(gate, asked[0], await session(), asked[1])


def answer_token(
    gate: WebGate, principal: Principal, decision: SessionDecision, resource: str | None
) -> WebResponse:
    """The last step, once the user and the session are known: rate limit, grant check for
    a resource, mint (or reuse), answer."""
    early = gate.throttle(decision, principal)
    if early is not None:
        return early
    engine, session_id = gate.engine, decision.session_id
    gate.settle_user(session_id, principal)
    try:
        if resource is not None and not engine.holds(principal, session_id, resource):
            return gate.not_granted(decision)
        token = engine.get_token(
            principal, session_id, resource, deadline=engine.config.page_deadline
        )
    except EmbedgateError as error:
        return gate.failure(error, decision)
    return gate.token_response(token, decision, resource)


async def aanswer_token(
    gate: WebGate, principal: Principal, decision: SessionDecision, resource: str | None
) -> WebResponse:
    """Async face of :func:`answer_token`."""
    early = gate.throttle(decision, principal)
    if early is not None:
        return early
    engine, session_id = gate.engine, decision.session_id
    await gate.asettle_user(session_id, principal)
    try:
        if resource is not None and not await engine.aholds(principal, session_id, resource):
            return gate.not_granted(decision)
        token = await engine.aget_token(
            principal, session_id, resource, deadline=engine.config.page_deadline
        )
    except EmbedgateError as error:
        return gate.failure(error, decision)
    return gate.token_response(token, decision, resource)
