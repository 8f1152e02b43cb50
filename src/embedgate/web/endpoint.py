"""The token endpoint's last step, once the user and the session are known: rate limit,
grant check for a resource, mint (or reuse), answer. Every shell and adapter calls this,
the sync face from WSGI code and the async face from ASGI code; the rules themselves are
:class:`~embedgate.web.gate.WebGate`'s."""

from __future__ import annotations

from ..errors import EmbedgateError
from ..principal import Principal
from .gate import WebGate
from .values import SessionDecision, WebResponse


def answer_token(
    gate: WebGate, principal: Principal, decision: SessionDecision, resource: str | None
) -> WebResponse:
    """The endpoint's answer for ``principal`` in session ``decision``."""
    early = gate.throttle(decision, principal)
    if early is not None:
        return early
    service, session_id = gate.engine.service, decision.session_id
    gate.settle_user(session_id, principal)
    try:
        if resource is not None and not service.holds(principal, session_id, resource):
            return gate.not_granted(decision)
        token = service.get_token(
            principal, session_id, resource, deadline=gate.engine.config.page_deadline
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
    service, session_id = gate.engine.service, decision.session_id
    await gate.asettle_user(session_id, principal)
    try:
        if resource is not None and not await service.aholds(principal, session_id, resource):
            return gate.not_granted(decision)
        token = await service.aget_token(
            principal, session_id, resource, deadline=gate.engine.config.page_deadline
        )
    except EmbedgateError as error:
        return gate.failure(error, decision)
    return gate.token_response(token, decision, resource)
