"""The Flask extension, through Flask's own test client (the real WSGI app)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask, Response, g, render_template_string, send_file, stream_with_context
from flask.testing import FlaskClient
from flask_login import LoginManager, login_user, logout_user

from embedgate import ConfigurationError, Principal
from embedgate.integrations.flask import EmbedGate, EmbedGateState
from embedgate.keys import generate_private_pem
from tests.integrations.helpers import blocks, claims, iframe_token, page_token
from tests.support.net import free_port

PAGE = "<!doctype html><html><head><title>t</title></head><body>hello</body></html>"
TOKEN = {"X-Embedgate": "1"}


@dataclass
class User:
    id: str
    tenant: str = "acme"
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return self.id


USERS = {"alice": User("alice"), "bob": User("bob", tenant="globex")}


def make_app(config: dict[str, str] | None = None, **settings: object) -> tuple[Flask, EmbedGate]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="flask-test-key", TESTING=True, **(config or {}))
    login = LoginManager(app)
    login.user_loader(USERS.get)
    ext = EmbedGate(app, **settings)

    @app.get("/")
    def index() -> str:
        return PAGE

    @app.get("/helpers")
    def helpers_page() -> str:
        return render_template_string(
            "<html><head>{{ embed_script() }}</head><body>"
            '<p id="t">{{ embed_token() }}</p>'
            "{{ embed_snippet('iframe', 'sales', url='/embedded#token={token}') }}"
            "</body></html>"
        )

    @app.get("/api/token")
    def api_token() -> dict[str, str | None]:
        token = ext.token()
        return {"token": token.token if token else None}

    @app.post("/login/<name>")
    def login_route(name: str) -> str:
        login_user(USERS[name])
        return "ok"

    @app.post("/logout")
    def logout_route() -> str:
        logout_user()
        return "bye"

    return app, ext


@pytest.fixture
def app() -> Flask:
    return make_app()[0]


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


def test_one_line_injects_the_logged_in_users_token_into_pages(client: FlaskClient) -> None:
    assert page_token(client.get("/").get_data(as_text=True)) is None  # anonymous
    client.post("/login/alice")
    response = client.get("/")
    token = page_token(response.get_data(as_text=True))
    assert token is not None
    assert claims(token)["sub"] == "alice"
    assert claims(token)["tenant"] == "acme"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Cookie" in response.headers["Vary"]
    assert response.headers["Content-Length"] == str(len(response.get_data()))
    assert client.get_cookie("embedgate_session") is not None


def test_the_endpoint_and_ext_token_answer_the_same_sessions_token(client: FlaskClient) -> None:
    assert client.post("/_embedgate/token", headers=TOKEN).status_code == 401
    assert client.get("/api/token").json == {"token": None}
    client.post("/login/alice")
    page = page_token(client.get("/").get_data(as_text=True))
    answer = client.post("/_embedgate/token", headers=TOKEN)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "private, no-store"
    assert answer.json is not None
    assert answer.json["token"] == page  # one session, one cached token
    assert client.get("/api/token").json == {"token": page}


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("POST", {}, 403),
        ("POST", {**TOKEN, "Origin": "https://evil.example"}, 403),
        ("POST", {**TOKEN, "Sec-Fetch-Site": "cross-site"}, 403),
        ("GET", TOKEN, 405),
    ],
)
def test_the_endpoint_refuses_what_the_gate_refuses(
    client: FlaskClient, method: str, headers: dict[str, str], status: int
) -> None:
    client.post("/login/alice")
    assert client.open("/_embedgate/token", method=method, headers=headers).status_code == status


def test_script_and_jwks_routes(client: FlaskClient) -> None:
    script = client.get("/_embedgate/embedgate.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert b"embedgate" in script.data
    etag = {"If-None-Match": script.headers["ETag"]}
    assert client.get("/_embedgate/embedgate.js", headers=etag).status_code == 304
    assert client.get("/_embedgate/jwks.json").status_code == 404  # HMAC: nothing public
    app, _ = make_app(secret=None, private_key=generate_private_pem("ES256"))
    with app.test_client() as es256:
        (jwk,) = es256.get("/_embedgate/jwks.json").json["keys"]  # type: ignore[index]
    assert jwk["alg"] == "ES256"
    assert "d" not in jwk


def test_template_helpers_share_the_session_and_the_page_is_not_injected_twice(
    client: FlaskClient,
) -> None:
    client.post("/login/alice")
    html = client.get("/helpers").get_data(as_text=True)
    (block,) = blocks(html)
    assert f'<p id="t">{block["token"]}</p>' in html
    assert iframe_token(html) == block["token"]  # one token per session serves every embed
    endpoint = client.post("/_embedgate/token", headers=TOKEN).json
    assert endpoint is not None
    assert endpoint["token"] == block["token"]


def test_helpers_pick_the_nonce_from_g_or_the_callable() -> None:
    app, _ = make_app()

    @app.before_request
    def nonce() -> None:
        g.csp_nonce = "from-g"

    with app.test_client() as client:
        client.post("/login/alice")
        assert 'nonce="from-g"' in client.get("/helpers").get_data(as_text=True)
        assert 'nonce="from-g"' in client.get("/").get_data(as_text=True)  # injected
    app, _ = make_app(csp_nonce=lambda: "from-callable")
    with app.test_client() as client:
        client.post("/login/alice")
        assert 'nonce="from-callable"' in client.get("/helpers").get_data(as_text=True)


def test_helpers_render_nothing_for_anonymous_visitors(client: FlaskClient) -> None:
    response = client.get("/helpers")
    html = response.get_data(as_text=True)
    assert blocks(html) == []
    assert '<p id="t"></p>' in html
    assert "iframe" not in html
    assert "Set-Cookie" not in response.headers


def test_flask_login_logout_purges_the_sessions_tokens(client: FlaskClient) -> None:
    client.post("/login/alice")
    before = page_token(client.get("/").get_data(as_text=True))
    assert page_token(client.get("/").get_data(as_text=True)) == before  # cached
    client.post("/logout")
    assert page_token(client.get("/").get_data(as_text=True)) is None
    assert client.post("/_embedgate/token", headers=TOKEN).status_code == 401
    client.post("/login/alice")
    after = page_token(client.get("/").get_data(as_text=True))
    assert after is not None
    assert after != before  # purged: a fresh token, not the cached one


def test_logout_then_another_user_never_sees_the_previous_token(client: FlaskClient) -> None:
    client.post("/login/alice")
    alice = page_token(client.get("/").get_data(as_text=True))
    client.post("/logout")
    client.post("/login/bob")
    html = client.get("/").get_data(as_text=True)
    bob = page_token(html)
    assert bob is not None
    assert claims(bob)["sub"] == "bob"
    assert alice is not None
    assert alice not in html


def test_without_flask_login_g_user_then_the_loader_and_ext_logout() -> None:
    app = Flask(__name__)
    ext = EmbedGate(app)
    who: dict[str, object] = {}

    @ext.user_loader
    def loader() -> object:
        return who.get("loader")

    @app.before_request
    def set_user() -> None:
        if "g" in who:
            g.user = who["g"]

    @app.get("/")
    def index() -> str:
        return PAGE

    @app.post("/logout")
    def logout() -> str:
        return str(ext.logout())

    with app.test_client() as client:
        assert page_token(client.get("/").get_data(as_text=True)) is None
        who["loader"] = Principal(subject="from-loader")
        first = page_token(client.get("/").get_data(as_text=True))
        assert first is not None
        assert claims(first)["sub"] == "from-loader"
        who["g"] = Principal(subject="from-g")
        token = page_token(client.get("/").get_data(as_text=True))
        assert token is not None
        assert claims(token)["sub"] == "from-g"
        # The switch from the loader's user to g.user purged the first token already.
        assert client.post("/logout").get_data(as_text=True) == "1"
        del who["g"]
        again = page_token(client.get("/").get_data(as_text=True))
        assert again is not None
        assert again != first


def test_a_user_embedgate_cannot_read_is_refused_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)
    EmbedGate(app)

    @app.before_request
    def set_user() -> None:
        g.user = object()  # no id, no embed_principal()

    @app.get("/")
    def index() -> str:
        return PAGE

    with app.test_client() as client, caplog.at_level(logging.WARNING, logger="embedgate"):
        page = client.get("/")
        answer = client.post("/_embedgate/token", headers=TOKEN)
    assert page.get_data(as_text=True) == PAGE
    assert answer.status_code == 403
    assert answer.json is not None
    assert answer.json["error"] == "principal_rejected"
    assert "principal refused (subject)" in caplog.text


def test_app_factory_serves_several_apps_with_their_own_settings() -> None:
    ext = EmbedGate()
    apps = []
    for audience in ("first", "second"):
        app = Flask(audience)
        app.config["EMBEDGATE_AUDIENCE"] = audience
        ext.init_app(app)

        @app.get("/")
        def index() -> str:
            return PAGE

        apps.append(app)

    @ext.user_loader
    def loader() -> Principal:
        return Principal(subject="alice")

    for app, audience in zip(apps, ("first", "second"), strict=True):
        state = app.extensions["embedgate"]
        assert isinstance(state, EmbedGateState)
        assert state.extension is ext
        with app.test_client() as client:
            token = page_token(client.get("/").get_data(as_text=True))
        assert token is not None
        assert claims(token, audience=audience)["aud"] == audience
    assert not any(isinstance(value, Flask) for value in vars(ext).values())


def test_unknown_embedgate_keys_in_app_config_fail_at_start_up() -> None:
    app = Flask(__name__)
    app.config["EMBEDGATE_AUDIANCE"] = "typo"
    with pytest.raises(ConfigurationError, match="EMBEDGATE_AUDIANCE"):
        EmbedGate(app)


def test_files_json_and_errors_pass_untouched(client: FlaskClient) -> None:
    # Streamed pages are injected: see test_streamed_pages_are_injected_at_the_head...
    app = client.application

    @app.get("/file")
    def file() -> Response:
        import io

        return send_file(io.BytesIO(PAGE.encode()), mimetype="text/html")

    @app.get("/json")
    def json_route() -> dict[str, str]:
        return {"html": PAGE}

    client.post("/login/alice")
    for path in ("/file", "/json", "/missing"):
        response = client.get(path)
        assert blocks(response.get_data(as_text=True)) == [], path
        # A streamed page renders after its headers leave (a template helper may still put
        # a token in it): for a logged-in user it leaves private. Nothing else changes.
        private = response.headers.get("Cache-Control") == "private, no-store"
        assert private == (path == "/stream"), path


def test_a_failing_provider_still_serves_the_page(caplog: pytest.LogCaptureFixture) -> None:
    api_key = "tc-live-do-not-log-77aa"
    app, _ = make_app(
        {"EMBEDGATE_TOUCAN_RETRIES": "0"},
        provider="toucan",
        provider_url=f"http://127.0.0.1:{free_port()}",
        api_key=api_key,
    )
    with app.test_client() as client, caplog.at_level(logging.WARNING, logger="embedgate"):
        client.post("/login/alice")
        page = client.get("/")
        answer = client.post("/_embedgate/token", headers=TOKEN)
    assert page.status_code == 200
    assert blocks(page.get_data(as_text=True)) == [None]  # the browser asks again later
    assert answer.status_code == 503
    assert "Retry-After" in answer.headers
    assert api_key not in caplog.text


@pytest.mark.parametrize("csrf_first", [True, False], ids=["csrf-first", "embedgate-first"])
def test_flask_wtf_csrf_protect_leaves_the_endpoint_alone(csrf_first: bool) -> None:
    from flask_wtf.csrf import CSRFProtect

    app = Flask(__name__)
    app.config.update(SECRET_KEY="flask-test-key")
    login = LoginManager(app)
    login.user_loader(USERS.get)
    csrf = CSRFProtect()
    if csrf_first:
        csrf.init_app(app)
    EmbedGate(app)
    if not csrf_first:
        csrf.init_app(app)

    @app.post("/login/<name>")
    def login_route(name: str) -> str:
        login_user(USERS[name])
        return "ok"

    csrf.exempt(login_route)
    app.add_url_rule("/form", "form", lambda: "posted", methods=["POST"])
    with app.test_client() as client:
        client.post("/login/alice")
        answer = client.post("/_embedgate/token", headers=TOKEN)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert claims(answer.get_json()["token"])["sub"] == "alice"
        # The app's other forms stay protected.
        assert client.post("/form").status_code == 400


def test_a_caller_dropping_the_session_cookie_is_still_rate_limited() -> None:
    # Each call starts a new embedgate session; the limit then counts against the user.
    app, _ = make_app(rate_limit=2)
    with app.test_client() as client:
        client.post("/login/alice")
        statuses = []
        for _ in range(3):
            client.delete_cookie("embedgate_session")
            statuses.append(client.post("/_embedgate/token", headers=TOKEN).status_code)
    assert statuses == [200, 200, 429]


def test_a_block_the_template_wrote_after_the_head_gets_no_second_one() -> None:
    # The injection reads the page only up to </head>: the helper tells it the block exists.
    app, _ = make_app()

    @app.get("/late")
    def late() -> str:
        return render_template_string(
            "<html><head><title>t</title></head><body><p>x</p>{{ embed_script() }}</body></html>"
        )

    with app.test_client() as client:
        client.post("/login/alice")
        body = client.get("/late").get_data()
    assert body.count(b'id="embedgate-token"') == 1
    assert body.index(b'id="embedgate-token"') > body.index(b"</head>")


def test_streamed_pages_are_injected_at_the_head_and_the_rest_streams() -> None:
    from flask import stream_template_string

    app, _ = make_app()
    asked: list[str] = []

    @app.get("/gen")
    def gen() -> Response:
        def pieces() -> Iterator[str]:
            yield "<html><head><title>s</title></head><body>"
            asked.append("more")
            yield "<p>later</p></body></html>"

        return Response(stream_with_context(pieces()), mimetype="text/html")

    @app.get("/tpl")
    def tpl() -> Response:
        return Response(
            stream_template_string("<html><head></head><body>{{ n }}</body></html>", n=7),
            mimetype="text/html",
        )

    with app.test_client() as client:
        client.post("/login/alice")
        response = client.get("/gen", buffered=False)
        parts = iter(response.response)
        first = next(parts)
        assert not asked, "the head must go out before the app makes the rest"
        assert first.count(b'id="embedgate-token"') == 1
        assert first.endswith(b"</head><body>")
        assert b"".join(parts) == b"<p>later</p></body></html>"
        response.close()
        assert response.headers.get("Content-Length") is None
        assert response.headers["Cache-Control"] == "private, no-store"
        body = client.get("/tpl").get_data()
        assert body.count(b'id="embedgate-token"') == 1
        assert body.index(b'id="embedgate-token"') < body.index(b"</head>")
        assert body.endswith(b"<body>7</body></html>")
        client.post("/logout")
        assert b"embedgate-token" not in client.get("/gen").get_data()
