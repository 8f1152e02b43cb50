"""A Django app in one module for the toolkit's Django test client check (run in a
subprocess: Django's settings are process-wide). The user comes from ``?user=`` through a
tiny middleware, so no database is needed."""

from __future__ import annotations

import sys
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from embedgate import Principal
from tests.conftest import TEST_SECRET

PAGE = "<html><head><title>t</title></head><body>report</body></html>"


class User:
    is_authenticated = True

    def __init__(self, name: str) -> None:
        self.name = name

    def embed_principal(self) -> Principal:
        return Principal(subject=self.name, tenant="acme", attributes={"region": "EU"})


class QueryUser:
    """Stands in for authentication: ``?user=alice`` logs alice in for this request."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        name = request.GET.get("user") or request.COOKIES.get("user")
        request.user = User(name) if name else None  # type: ignore[assignment]
        return self.get_response(request)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


urlpatterns = [path("", page)]


def main() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=True,
        SECRET_KEY="django-toolkit-test",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["embedgate.integrations.django"],
        MIDDLEWARE=[
            f"{__name__}.QueryUser",
            "embedgate.integrations.django.middleware.EmbedgateMiddleware",
        ],
        EMBEDGATE={"SECRET": TEST_SECRET, "AUDIENCE": "analytics"},
    )
    django.setup()
    from django.test import Client

    from embedgate.testing import assert_embed_token, find_engine

    client = Client()
    response = client.get("/?user=alice")
    claims = assert_embed_token(response, sub="alice", attributes={"region": "EU"}, app=None)
    assert claims["aud"] == "analytics"
    client.cookies["user"] = "alice"
    answer = client.generic("POST", "/_embedgate/token", b"", headers={"X-Embedgate": "1"})
    assert_embed_token(answer, sub="alice", tenant="acme", keys=TEST_SECRET, audience="analytics")
    try:
        assert_embed_token(response, sub="bob")
        raise SystemExit("a wrong subject passed")
    except AssertionError as error:
        message = str(error)
    if "sub is 'alice', expected 'bob'" not in message:
        raise SystemExit(message)
    assert find_engine().config.audience == "analytics"
    sys.stdout.write("django ok\n")


if __name__ == "__main__":
    main()
