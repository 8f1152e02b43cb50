"""The binding value: one per response, the same in the data block and on every element the
helpers render (whether the block is rendered by ``embed_script()`` or injected), never one
a template or user content chose."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from flask import Flask, render_template_string

from embedgate import Principal
from embedgate.integrations.flask import EmbedGate
from tests.conftest import TEST_SECRET
from tests.security.app import GUESSES, create

_BLOCK = re.compile(r'<script type="application/json" id="embedgate-token">(.*?)</script>')
_BIND_ANYWHERE = re.compile(r'data-embedgate-bind="([^"]*)"')


def genuine_bindings(page: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for tag in re.findall(r"<[a-z-]+ [^>]*>", page):
        m = re.search(r'\bid="(frame|local|element|handwritten)"', tag)
        bind = re.search(r'data-embedgate-bind="([^"]*)"', tag)
        if m and bind:
            found[m.group(1)] = bind.group(1)
    return found


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EMBEDGATE_SECRET", TEST_SECRET)
    monkeypatch.setenv("EMBEDGATE_PROVIDER_URL", "https://provider.example")
    return create()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("path", ["/", "/injected", "/plain"])
async def test_every_genuine_element_carries_the_blocks_binding(
    anyio_backend: str, app: Any, path: str
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        pages = [(await client.get(path)).text for _ in range(2)]
    binds = []
    for page in pages:
        blocks = [json.loads(raw) for raw in _BLOCK.findall(page)]
        (block,) = [b for b in blocks if "attacker" not in json.dumps(b)]  # not the forged ones
        bind = block["bind"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", bind)
        assert genuine_bindings(page) == dict.fromkeys(
            ("frame", "local", "element", "handwritten"), bind
        )
        # The hostile markup's guesses are never the response's value.
        assert bind not in GUESSES
        assert _BIND_ANYWHERE.findall(page).count(bind) == 4
        assert block["allow"] == {
            "origins": ["self", "https://provider.example"],
            "attributes": ["src", "*"],
            "sdks": [],
        }
        binds.append(bind)
    assert binds[0] != binds[1]  # a new value with every response


def test_flask_helpers_and_injection_share_one_binding_a_template_cannot_choose() -> None:
    app = Flask(__name__)
    app.config.update(EMBEDGATE_SECRET=TEST_SECRET, SECRET_KEY="k" * 32)
    gate = EmbedGate(app)

    @gate.user_loader
    def loader() -> Principal:
        return Principal(subject="alice")

    @app.get("/")
    def page() -> str:
        return render_template_string(
            "<html><head><title>t</title></head><body>"
            "{{ embed_snippet('element', 'x', tag='x-dash', attribute='auth', bind='mine') }}"
            '<my-dash data-embedgate-token="auth-token" {{ embed_binding() }}></my-dash>'
            "</body></html>"
        )

    with app.test_client() as client:
        text = client.get("/").get_data(as_text=True)
    (raw,) = _BLOCK.findall(text)
    bind = json.loads(raw)["bind"]
    assert _BIND_ANYWHERE.findall(text) == [bind, bind]
    assert "mine" not in _BIND_ANYWHERE.findall(text)
