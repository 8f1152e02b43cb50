from __future__ import annotations

from django.http import HttpRequest

from embedgate import Principal
from embedgate.integrations.django.middleware import EmbedgateMiddleware


class HeaderUserMiddleware(EmbedgateMiddleware):
    """embedgate's middleware, the user named by the X-Test-User header (no database)."""

    def principal(self, request: HttpRequest) -> Principal | None:
        name = request.headers.get("X-Test-User")
        return Principal(subject=name) if name else None
