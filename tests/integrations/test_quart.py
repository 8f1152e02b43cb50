"""The Quart extension: the Flask extension's shape on Quart's async cycle, the user from
Quart-Auth (or ``g.user``), async template globals, the blueprint's endpoint and logout, on a
real Quart app driven by its test client."""

from __future__ import annotations

import pytest
from quart import Quart, g, render_template_string, request
from quart_auth import AuthUser, QuartAuth, login_user, logout_user

from embedgate import ConfigurationError
from embedgate.integrations.quart import EXTENSION_KEY, EmbedGate, EmbedGateState
from tests.conftest import TEST_SECRET
from tests.integrations.helpers import blocks, claims, page_token

pytestmark = pytest.mark.anyio

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
PAGE = "<html><head><title>p</title></head><body>hello</body></html>"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app() -> tuple[Quart, EmbedGate]:
    app = Quart(__name__)
    app.secret_key = "quart-test-secret-0123456789"
    app.config["EMBEDGATE_SECRET"] = TEST_SECRET
    QuartAuth(app)
    ext = EmbedGate(app)

    @app.route("/login/<name>", methods=["POST"])
    async def login(name: str) -> str:
        login_user(AuthUser(name))
        return "ok"

    @app.route("/logout", methods=["POST"])
    async def logout() -> dict[str, int]:
        purged = await ext.logout()
        logout_user()
        return {"purged": purged}

    @app.route("/page")
    async def page() -> str:
        return PAGE

    @app.route("/g-user")
    async def g_user() -> str:
        g.user = {"sub": request.args["name"]}
        return PAGE

    @app.route("/script")
    async def script() -> str:
        return await render_template_string(
            "<html><head>{{ embed_script() }}</head><body>s</body></html>"
        )

    @app.route("/token-page")
    async def token_page() -> str:
        return await render_template_string(
            '<html><head></head><body><p id="t">{{ embed_token() }}</p></body></html>'
        )

    return app, ext


async def test_extension_shape() -> None:
    app, ext = make_app()
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, EmbedGateState)
    assert state.extension is ext
    later = Quart(__name__)
    later.config["EMBEDGATE_SECRET"] = TEST_SECRET
    EmbedGate().init_app(later)
    assert isinstance(later.extensions[EXTENSION_KEY], EmbedGateState)
    with pytest.raises(ConfigurationError):
        EmbedGate(Quart(__name__), environ={})


async def test_quart_auth_user_gets_page_and_endpoint_tokens() -> None:
    app, _ = make_app()
    client = app.test_client()
    anonymous = await client.get("/page")
    assert blocks(await anonymous.get_data(as_text=True)) == []
    assert (await client.post("/_embedgate/token", headers=SAME_ORIGIN)).status_code == 401
    await client.post("/login/alice")
    page = await client.get("/page")
    token = page_token(await page.get_data(as_text=True))
    assert token is not None
    assert claims(token)["sub"] == "alice"
    assert page.headers["Cache-Control"] == "private, no-store"
    answer = await client.post("/_embedgate/token", headers=SAME_ORIGIN)
    assert answer.status_code == 200
    assert (await answer.get_json())["token"] == token  # the page's session, the page's token
    script = await client.get("/_embedgate/embedgate.js")
    assert script.status_code == 200


async def test_cross_site_refused() -> None:
    app, _ = make_app()
    client = app.test_client()
    await client.post("/login/alice")
    answer = await client.post(
        "/_embedgate/token", headers={"X-Embedgate": "1", "Sec-Fetch-Site": "cross-site"}
    )
    assert answer.status_code == 403


async def test_g_user() -> None:
    app, _ = make_app()
    page = await app.test_client().get("/g-user?name=bob")
    token = page_token(await page.get_data(as_text=True))
    assert token is not None
    assert claims(token)["sub"] == "bob"


async def test_async_template_globals() -> None:
    app, _ = make_app()
    client = app.test_client()
    await client.post("/login/carol")
    page = await client.get("/script")
    (block,) = blocks(await page.get_data(as_text=True))
    assert claims(block["token"])["sub"] == "carol"
    assert page.headers["Cache-Control"] == "private, no-store"
    assert page.headers.get("Set-Cookie", "").startswith("embedgate_session=")
    other = app.test_client()
    await other.post("/login/alice")
    bare = await other.get("/token-page")
    text = await bare.get_data(as_text=True)
    token = text.split('<p id="t">')[1].split("</p>")[0]
    assert claims(token)["sub"] == "alice"
    assert bare.headers["Cache-Control"] == "private, no-store"
    assert bare.headers.get("Set-Cookie", "").startswith("embedgate_session=")


async def test_logout_purges_and_user_change_is_noticed() -> None:
    app, _ = make_app()
    client = app.test_client()
    await client.post("/login/alice")
    first = await (await client.post("/_embedgate/token", headers=SAME_ORIGIN)).get_json()
    purged = await (await client.post("/logout")).get_json()
    assert purged["purged"] >= 1
    await client.post("/login/alice")
    second = await (await client.post("/_embedgate/token", headers=SAME_ORIGIN)).get_json()
    assert second["token"] != first["token"]
    # Another user on the same browser, no logout call: bob never gets alice's token.
    await client.post("/login/bob")
    third = await (await client.post("/_embedgate/token", headers=SAME_ORIGIN)).get_json()
    assert claims(third["token"])["sub"] == "bob"
