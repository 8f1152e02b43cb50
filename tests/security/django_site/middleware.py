from __future__ import annotations

from django.http import HttpRequest

from embedgate import Principal
from embedgate.integrations.django.middleware import EmbedgateMiddleware


class HeaderUserMiddleware(EmbedgateMiddleware):
    """embedgate's middleware with the user taken from an ``X-User`` header."""

    def principal(self, request: HttpRequest) -> Principal | None:
        name = request.headers.get("X-User")
        return Principal(subject=name, tenant="acme") if name else None
