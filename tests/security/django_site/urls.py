"""Every way a Django page may carry a token, each with every caching header a CDN or
proxy could obey set by the view (after the template rendered)."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import get_template
from django.template.response import TemplateResponse
from django.urls import path

from tests.security.headers import HOSTILE

PAGE = "<!doctype html><html><head><title>p</title></head><body>hello</body></html>"


def hostile(response: HttpResponse) -> HttpResponse:
    for name, value in HOSTILE:
        response[name] = value
    return response


def injected(request: HttpRequest) -> HttpResponse:
    return hostile(HttpResponse(PAGE))


def helpers(request: HttpRequest) -> HttpResponse:
    return hostile(TemplateResponse(request, "page.html"))


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    template = get_template("page.html")

    def render() -> Iterator[str]:
        yield "<!-- start -->"
        yield template.render({"request": request}, request)

    response = StreamingHttpResponse(render(), content_type="text/html; charset=utf-8")
    return hostile(response)  # type: ignore[return-value]


def error(request: HttpRequest) -> HttpResponse:
    response = TemplateResponse(request, "page.html", status=500)
    return hostile(response)


urlpatterns = [
    path("injected", injected),
    path("helpers", helpers),
    path("streamed", streamed),
    path("error", error),
]
