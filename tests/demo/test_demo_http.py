"""`embedgate demo` over HTTP: the real command in a subprocess on 127.0.0.1, driven with
httpx: start-up message, login, the three models, the demo IdP, logout, and the port check."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from embedgate.keys import generate_private_pem
from tests.support.net import free_port, run_server, wait_for_port

pytestmark = pytest.mark.timeout(90)

EMBEDGATE = str(Path(sys.executable).with_name("embedgate"))
TTL = 15
AUDIENCE = "embedgate-demo-provider"
ISSUER = "embedgate-demo-host"
# What row-level security must leave each user: (tenants, regions, rows in total).
EXPECTED = {
    "alice": ({"acme"}, {"EU"}, 48),
    "bob": ({"globex"}, {"US"}, 48),
    "carol": ({"acme", "globex", "initech"}, {"EU", "US", "APAC"}, 432),
}
_DATA_BLOCK = re.compile(r'<script type="application/json" id="embedgate-token">(.*?)</script>')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@contextlib.contextmanager
def running_demo(ttl: int = TTL) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``embedgate demo`` on a free loopback port: its base URL and process."""
    port = free_port()
    argv = [EMBEDGATE, "demo", "--port", str(port), "--ttl", str(ttl)]
    with run_server(argv, port) as process:
        yield f"http://127.0.0.1:{port}", process


def output_so_far(process: subprocess.Popen[bytes]) -> str:
    """What the process printed until now (stdout and stderr), without blocking."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with running_demo() as running:
        yield running


@pytest.fixture(scope="module")
def base(demo: tuple[str, subprocess.Popen[bytes]]) -> str:
    return demo[0]


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=15) as c:
        yield c


def log_in(client: httpx.Client, user: str, next_path: str = "") -> httpx.Response:
    return client.post("/login", data={"username": user, "password": "demo", "next": next_path})


def page_token(page: httpx.Response) -> str:
    """The token the page carries in embedgate's data block."""
    found = _DATA_BLOCK.search(page.text)
    assert found is not None, "the page carries no token"
    token: str = json.loads(found.group(1))["token"]
    assert f'auth-token="{html.escape(token)}"' in page.text  # the dashboard holds the same one
    return token


def dashboard(client: httpx.Client, token: str) -> dict[str, Any]:
    """What the provider answers the dashboard for ``token``."""
    response = client.get(
        "/provider/api/dashboard/sales",
        params={"limit": 500},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_rows_of(user: str, data: dict[str, Any]) -> None:
    tenants, regions, total = EXPECTED[user]
    rows = data["table"]["rows"]
    assert {r["tenant"] for r in rows} == tenants
    assert {r["region"] for r in rows} == regions
    assert data["totals"]["rows"] == total == len(rows)
    assert data["identity"]["subject"] == user


def verified_claims(client: httpx.Client, token: str, prefix: str) -> dict[str, Any]:
    """The claims of a host JWT, checked with the public key the host publishes."""
    jwks = jwt.PyJWKSet.from_dict(client.get(f"{prefix}/_embedgate/jwks.json").json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
    )
    return claims


def endpoint(client: httpx.Client, prefix: str) -> httpx.Response:
    return client.post(f"{prefix}/_embedgate/token", headers={"X-Embedgate": "1"})


def hidden_fields(page: httpx.Response) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}


def sso_login(client: httpx.Client, user: str) -> dict[str, str]:
    """Walk the SSO flow up to the IdP's form post; the fields it posts to the host."""
    start = client.get("/sso/login")
    assert start.status_code == 303
    authorize = urlsplit(start.headers["location"])
    assert authorize.path == "/idp/authorize"
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert query["response_mode"] == "form_post"
    assert query["state"]
    assert query["nonce"]
    picker = client.get(start.headers["location"])
    assert picker.status_code == 200
    assert f'data-user="{user}"' in picker.text
    posted = client.post("/idp/authorize", data={**hidden_fields(picker), "user": user})
    assert posted.status_code == 200
    assert posted.headers["cache-control"] == "no-store"
    assert f'action="{query["redirect_uri"]}"' in posted.text
    return hidden_fields(posted)


# -- start-up ---------------------------------------------------------------------------


def test_start_up_prints_the_url_and_the_logins(
    demo: tuple[str, subprocess.Popen[bytes]], client: httpx.Client
) -> None:
    base, process = demo
    assert client.get("/login").status_code == 200  # serving: the banner came before
    printed = output_so_far(process)
    assert f"embedgate demo running on {base}/" in printed
    assert 'password "demo"' in printed
    for user, line in (
        ("alice", "tenant acme, region EU, role analyst"),
        ("bob", "tenant globex, region US, role viewer"),
        ("carol", "tenant acme, every region, role admin"),
    ):
        assert re.search(rf"^\s+{user}\s+{line}$", printed, re.MULTILINE)
    # The sandbox's api_key warning is explained, not left to alarm a first-time user.
    assert "api_key mode" in printed
    assert "The api_key WARNING logged at start-up is expected" in printed

    for path in ("/token/", "/sandbox/", "/sso/"):
        assert f"{base}{path}" in printed
    assert "DEVELOPMENT ONLY" in printed
    assert "api_key mode" in printed  # embedgate's own sandbox warning
    assert "eyJ" not in printed
    assert "demo.gAAAA" not in printed


def test_the_idp_root_answers_a_page(client: httpx.Client) -> None:
    page = client.get("/idp/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "identity provider" in page.text
    assert 'href="/sso/"' in page.text


def test_the_port_being_taken_is_one_clear_line_and_exit_code_1() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = subprocess.run(
            [EMBEDGATE, "demo", "--port", str(port)], capture_output=True, timeout=60, check=False
        )
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert lines == [
        f"embedgate demo: port {port} on 127.0.0.1 is already in use (is the demo already "
        "running?); stop that program or choose another port with --port"
    ]
    assert result.stdout == b""  # nothing started, no banner


def test_ctrl_c_stops_the_demo_cleanly() -> None:
    port = free_port()
    process = subprocess.Popen(
        [EMBEDGATE, "demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port, process=process)
        assert httpx.get(f"http://127.0.0.1:{port}/login", timeout=10).status_code == 200
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 0
    assert err.decode().strip().splitlines()[-1] == "embedgate demo: stopped"
    assert b"Traceback" not in err


def test_a_ttl_the_core_cannot_honour_is_refused_before_start() -> None:
    result = subprocess.run(
        [EMBEDGATE, "demo", "--port", str(free_port()), "--ttl", "5"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "embedgate: --ttl: expected 10 to 3600 seconds, got 5"


# -- login and the host's models --------------------------------------------------------


def test_strangers_get_the_login_and_no_token(client: httpx.Client) -> None:
    assert client.get("/").headers["location"] == "/login"
    for prefix in ("/token", "/sandbox"):
        page = client.get(f"{prefix}/")
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next={prefix}/"
    assert endpoint(client, "/token").status_code == 401
    assert endpoint(client, "/sso").status_code == 401
    signin = client.get("/sso/")
    assert signin.status_code == 200
    assert 'id="sso-start"' in signin.text
    assert 'id="embedgate-token"' not in signin.text


def test_a_wrong_password_is_refused(client: httpx.Client) -> None:
    response = client.post("/login", data={"username": "alice", "password": "wrong"})
    assert response.status_code == 401
    assert "Unknown user or wrong password." in response.text
    assert client.get("/token/").status_code == 303  # still not logged in


def test_login_switch_between_models_and_logout(client: httpx.Client) -> None:
    response = log_in(client, "alice")
    assert (response.status_code, response.headers["location"]) == (303, "/token/")

    page = client.get("/token/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert 'aria-current="page"' in page.text
    assert 'id="who">alice<' in page.text
    signed = page_token(page)
    claims = verified_claims(client, signed, "/token")
    assert claims["sub"] == "alice"
    assert claims["tenant"] == "acme"
    assert claims["roles"] == ["analyst"]
    assert claims["attributes"] == {"region": "EU"}
    assert "email" not in claims
    assert "name" not in claims
    assert_rows_of("alice", dashboard(client, signed))
    again = endpoint(client, "/token")
    assert again.status_code == 200
    assert again.json()["token"] == signed  # the session's cached token, not a new one

    sandbox = client.get("/sandbox/")
    assert sandbox.status_code == 200
    assert "DEVELOPMENT ONLY" in sandbox.text
    assert 'id="dev-only"' in sandbox.text
    minted = page_token(sandbox)
    assert minted.startswith("demo.")  # opaque, minted by the provider
    data = dashboard(client, minted)
    assert data["identity"]["source"] == "provider"
    assert_rows_of("alice", data)

    signin = client.get("/sso/")  # a password login is no SSO login
    assert 'id="sso-start"' in signin.text
    assert 'id="embedgate-token"' not in signin.text

    out = client.post("/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    farewell = client.get("/login")
    assert "Logged out. 2 cached embed tokens of your session purged." in farewell.text
    assert endpoint(client, "/token").status_code == 401
    assert client.get("/token/").status_code == 303


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
@pytest.mark.parametrize("prefix", ["/token", "/sandbox"])
def test_each_user_sees_only_their_rows(client: httpx.Client, user: str, prefix: str) -> None:
    log_in(client, user)
    token = page_token(client.get(f"{prefix}/"))
    data = dashboard(client, token)
    assert_rows_of(user, data)
    assert data["identity"]["source"] == ("host" if prefix == "/token" else "provider")
    role = {"alice": "analyst", "bob": "viewer", "carol": "admin"}[user]
    assert data["identity"]["roles"] == [role]


# -- SSO ---------------------------------------------------------------------------------


def test_sso_login_through_the_demo_idp(client: httpx.Client) -> None:
    fields = sso_login(client, "bob")
    assert set(fields) == {"id_token", "state"}
    callback = client.post("/sso/callback", data=fields)
    assert (callback.status_code, callback.headers["location"]) == (303, "/sso/")

    page = client.get("/sso/")
    assert 'id="who">bob<' in page.text
    assert "(from the IdP)" in page.text
    token = page_token(page)
    claims = verified_claims(client, token, "/sso")
    # The namespaced IdP claims, mapped by the ClaimMapping.
    assert claims["tenant"] == "globex"
    assert claims["attributes"] == {"region": "US"}
    assert claims["roles"] == ["viewer"]
    assert "email" not in claims
    assert "groups" not in claims
    assert_rows_of("bob", dashboard(client, token))
    # The SSO login logged bob into the host too: the other models follow.
    assert 'id="who">bob<' in client.get("/token/").text

    replay = client.post("/sso/callback", data=fields)
    assert replay.status_code == 400
    assert "no_pending_login" in replay.text


def test_the_host_refuses_id_tokens_it_did_not_ask_for(client: httpx.Client) -> None:
    fields = sso_login(client, "carol")
    wrong_state = client.post("/sso/callback", data={**fields, "state": "forged"})
    assert wrong_state.status_code == 400
    assert "bad_state" in wrong_state.text

    fields = sso_login(client, "carol")
    claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
    header = jwt.get_unverified_header(fields["id_token"])
    forged = jwt.encode(
        {**claims, "https://demo.embedgate/tenant": "globex"},
        generate_private_pem("EdDSA"),
        algorithm="EdDSA",
        headers={"kid": header["kid"]},
    )
    refused = client.post("/sso/callback", data={**fields, "id_token": forged})
    assert refused.status_code == 400
    assert "bad_signature" in refused.text
    assert forged not in refused.text
    assert client.get("/sso/").text.count('id="sso-start"') == 1  # still signed out


def test_the_idp_only_answers_its_registered_redirect(client: httpx.Client, base: str) -> None:
    params = {
        "client_id": "embedgate-demo-host",
        "redirect_uri": "http://attacker.example/sso/callback",
        "response_type": "id_token",
        "response_mode": "form_post",
        "scope": "openid",
        "state": "s",
        "nonce": "n",
    }
    refused = client.get("/idp/authorize", params=params)
    assert refused.status_code == 400
    assert "redirect_uri" in refused.text
    unknown = client.get("/idp/authorize", params={**params, "client_id": "other"})
    assert unknown.status_code == 400
    assert "client_id" in unknown.text
    discovery = client.get("/idp/.well-known/openid-configuration").json()
    assert discovery["issuer"] == f"{base}/idp"
    assert client.get("/idp/jwks.json").json()["keys"][0]["crv"] == "Ed25519"
