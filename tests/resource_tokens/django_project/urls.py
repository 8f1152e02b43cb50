from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path

PAGES = {
    "dashboard": "{% load embedgate %}<html><head><title>d</title></head><body>"
    '{% embed_snippet "dashboard" "42" %}</body></html>',
    "reports": "{% load embedgate %}<html><head><title>r</title></head><body>"
    '{% embed_snippet "iframe" "sales" url="/embedded#token={token}" %}'
    '{% embed_snippet "report" "7" %}</body></html>',
}


def page(request: HttpRequest, name: str) -> HttpResponse:
    template = engines["django"].from_string(PAGES[name])
    return HttpResponse(template.render({}, request))


urlpatterns = [path("<str:name>", page)]
