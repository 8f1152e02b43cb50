"""The JSON token endpoint, the script and the JWKS, through both
shells."""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import pytest

from embedgate import Config, Engine, IssueRequest, IssuerError, LocalSigner, ManualClock
from embedgate.token import EmbedToken
from tests.conftest import TEST_SECRET
from tests.core.material import ALGORITHM_KEYS, private_pem
from tests.middleware.cases import make_engine
from tests.middleware.checks import claims_of
from tests.middleware.drivers import Result
from tests.middleware.shells import SAME_ORIGIN, Shell, cookie_value
from tests.support.net import free_port

PAYLOAD_KEYS = {"token", "expires_at", "expires_in", "refresh_in", "server_time"}


def assert_endpoint_headers(result: Result) -> None:
    """What every answer of the endpoint carries, and what none ever does."""
    assert result.header("content-type") == "application/json"
    assert result.header("cache-control") == "private, no-store"
    assert result.header("x-content-type-options") == "nosniff"
    assert not [n for n in result.names() if n.startswith("access-control-")]
    assert isinstance(result.json(), dict)  # an object at the top level, never an array


def assert_error(result: Result, status: int, code: str) -> None:
    assert result.status == status, result.body
    assert_endpoint_headers(result)
    assert result.json()["error"] == code
    assert "token" not in result.json()


class FailingSigner(LocalSigner):
    """A real signer whose provider is 'down': every issuance raises IssuerError."""

    def issue(self, request: IssueRequest) -> EmbedToken:
        raise IssuerError(
            "upstream answered 503", provider="generic", code="upstream_unavailable",
            status=503, retry_after=7,
        )  # fmt: skip


def failing_engine() -> Engine:
    engine = make_engine()
    signer: LocalSigner = engine.service.issuer  # type: ignore[assignment]
    engine.service.issuer = FailingSigner(signer.keys, issuer=signer.issuer, audience="x")
    return engine


# -- answers -----------------------------------------------------------------------------------


def test_a_logged_in_user_gets_a_json_object_with_the_token_and_its_timing(shell: Shell) -> None:
    engine = make_engine(ttl=300)
    result = shell.token(shell.wrap(engine), user="alice")
    assert result.status == 200
    assert_endpoint_headers(result)
    data = result.json()
    assert set(data) == PAYLOAD_KEYS
    assert all(isinstance(data[k], int) for k in PAYLOAD_KEYS - {"token"})
    assert claims_of(engine, data["token"])["sub"] == "alice"
    assert claims_of(engine, data["token"])["exp"] == data["expires_at"]
    assert data["expires_at"] - data["server_time"] in (data["expires_in"], data["expires_in"] + 1)
    assert 290 <= data["expires_in"] <= 300
    assert 0 < data["refresh_in"] < data["expires_in"]
    assert cookie_value(result)  # the session it is cached under starts now


def test_anonymous_is_401(shell: Shell) -> None:
    assert_error(shell.token(shell.wrap(make_engine()), user=None), 401, "unauthenticated")


def body_kw(shell: Shell, body: bytes) -> dict[str, Any]:
    """How this shell's driver sends a request body."""
    if shell.kind == "asgi":
        return {"body": body}
    return {"extra": {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{}", "application/json"),
        (b'{"resource": "dashboard:1"}', "application/json"),
        (b"[1]", "application/json"),
        (b"{", "application/json"),
        (b"x" * 5000, "application/json"),
        (b'{"resource": "d"}', "text/plain"),
    ],
)
def test_anonymous_is_401_whatever_the_body(shell: Shell, body: bytes, content_type: str) -> None:
    headers = [*SAME_ORIGIN, ("Content-Type", content_type)]
    result = shell.token(
        shell.wrap(make_engine()), user=None, headers=headers, **body_kw(shell, body)
    )
    assert_error(result, 401, "unauthenticated")


def test_an_empty_object_is_an_empty_body(shell: Shell) -> None:
    app = shell.wrap(make_engine())
    headers = [*SAME_ORIGIN, ("Content-Type", "application/json")]
    result = shell.token(app, headers=headers, **body_kw(shell, b"{}"))
    assert result.status == 200, result.body
    assert set(result.json()) == PAYLOAD_KEYS


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ((("Sec-Fetch-Site", "same-origin"),), 200),
        ((("Sec-Fetch-Site", "none"),), 200),
        ((("Sec-Fetch-Site", "cross-site"),), 403),
        ((("Sec-Fetch-Site", "same-site"),), 403),
        ((("Sec-Fetch-Site", "cross-site"), ("Origin", "http://testserver")), 403),
        ((("Origin", "http://testserver"),), 200),
        ((("Origin", "http://evil.example"),), 403),
        ((("Origin", "https://testserver"),), 403),  # another scheme is another origin
        ((("Origin", "null"),), 403),
        ((), 200),  # no browser headers: a script; still needs the custom header
    ],
    ids=lambda v: repr(v) if isinstance(v, int) else ",".join(f"{n}={x}" for n, x in v) or "none",
)
def test_only_same_origin_requests_are_answered(
    shell: Shell, headers: tuple[tuple[str, str], ...], status: int
) -> None:
    result = shell.token(shell.wrap(make_engine()), headers=[("X-Embedgate", "1"), *headers])
    if status == 200:
        assert result.status == 200
        assert "token" in result.json()
    else:
        assert_error(result, 403, "cross_origin")


@pytest.mark.parametrize("value", [None, "0", "true"])
def test_the_custom_header_is_required(shell: Shell, value: str | None) -> None:
    headers = [("Sec-Fetch-Site", "same-origin")] + ([("X-Embedgate", value)] if value else [])
    assert_error(shell.token(shell.wrap(make_engine()), headers=headers), 403, "missing_header")


def test_get_is_405_unless_allowed(shell: Shell) -> None:
    refused = shell.call(
        shell.wrap(make_engine()), "GET", "/_embedgate/token", SAME_ORIGIN, user="a"
    )
    assert_error(refused, 405, "method_not_allowed")
    assert refused.header("allow") == "POST"
    allowed = shell.call(
        shell.wrap(make_engine(allow_get=True)), "GET", "/_embedgate/token", SAME_ORIGIN, user="a"
    )
    assert allowed.status == 200
    assert set(allowed.json()) == PAYLOAD_KEYS


def test_a_cors_preflight_gets_no_cors_headers(shell: Shell) -> None:
    preflight = [
        ("Origin", "http://evil.example"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "x-embedgate"),
    ]
    result = shell.call(shell.wrap(make_engine()), "OPTIONS", "/_embedgate/token", preflight)
    assert_error(result, 405, "method_not_allowed")


def test_the_rate_limit_is_per_session_and_answers_429_with_retry_after(shell: Shell) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    engine = Engine(Config.load(environ={}, secret=TEST_SECRET, rate_limit=3), clock=clock)
    app = shell.wrap(engine)
    first = shell.token(app)
    cookie = [("Cookie", f"embedgate_session={cookie_value(first)}"), *SAME_ORIGIN]
    assert [shell.token(app, headers=cookie).status for _ in range(2)] == [200, 200]
    clock.advance(20)
    limited = shell.token(app, headers=cookie)
    assert_error(limited, 429, "rate_limited")
    assert limited.header("retry-after") == "40"  # the window opened 20 s ago
    assert shell.token(app).status == 200  # another session is not affected
    clock.advance(40)
    assert shell.token(app, headers=cookie).status == 200  # a new window


def test_dropping_the_cookie_does_not_lift_the_limit(shell: Shell) -> None:
    app = shell.wrap(make_engine(rate_limit=3))
    statuses = [shell.token(app, user="alice").status for _ in range(4)]  # no cookie sent back
    assert statuses == [200, 200, 200, 429]
    assert shell.token(app, user="bob").status == 200  # per user


def test_an_issuer_failure_is_503_with_retry_after_and_the_error_code(shell: Shell) -> None:
    result = shell.token(shell.wrap(failing_engine()))
    assert_error(result, 503, "upstream_unavailable")
    assert result.header("retry-after") == "7"
    assert "503" not in result.json()["message"]  # the provider's own words stay server-side


def test_a_remote_provider_that_cannot_be_reached_is_503(shell: Shell) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    engine = Engine.from_settings(
        {
            "EMBEDGATE_TOUCAN_RETRIES": "0",
            "EMBEDGATE_TOUCAN_CONNECT_TIMEOUT": "1",
            # The refusal, not the page deadline, must answer, however loaded the machine.
            "EMBEDGATE_PAGE_DEADLINE": "10",
        },
        environ={},
        provider="toucan",
        provider_url=closed,
        api_key="toucan-api-key-0123456789abcdef",
    )
    result = shell.token(shell.wrap(engine))
    assert_error(result, 503, "provider_unavailable")
    assert int(result.header("retry-after") or 0) >= 1
    assert "toucan-api-key" not in result.body.decode()


def test_a_principal_the_mapping_cannot_read_is_403_not_a_crash(shell: Shell) -> None:
    def no_subject(_: Any) -> dict[str, str]:
        return {"email": "someone@example.com"}  # no "sub" claim

    app = shell.wrap(make_engine(), user_resolver=no_subject)
    assert_error(shell.token(app), 403, "principal_rejected")


# -- the script --------------------------------------------------------------------------------

SCRIPT = resources.files("embedgate").joinpath("static/embedgate.js").read_bytes()


def test_the_script_is_served_cacheable_with_an_etag(shell: Shell) -> None:
    app = shell.wrap(make_engine())
    result = shell.call(app, "GET", "/_embedgate/embedgate.js")
    assert result.status == 200
    assert result.body == SCRIPT
    assert result.header("content-type") == "text/javascript; charset=utf-8"
    assert result.header("content-length") == str(len(SCRIPT))
    assert result.header("cache-control") == "public, max-age=3600"
    etag = result.header("etag")
    assert etag is not None
    assert etag.startswith('"')
    assert "set-cookie" not in result.names()
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = shell.call(app, "GET", "/_embedgate/embedgate.js", [("If-None-Match", validator)])
        assert again.status == 304, validator
        assert again.body == b""
        assert again.header("etag") == etag
    stale = shell.call(app, "GET", "/_embedgate/embedgate.js", [("If-None-Match", '"old"')])
    assert stale.status == 200
    assert stale.body == SCRIPT
    head = shell.call(app, "HEAD", "/_embedgate/embedgate.js")
    assert head.status == 200
    assert head.body == b""
    assert head.header("content-length") == str(len(SCRIPT))
    post = shell.call(app, "POST", "/_embedgate/embedgate.js")
    assert post.status == 405


def test_the_page_points_at_the_script_version_it_serves(shell: Shell) -> None:
    app = shell.wrap(make_engine())
    page = shell.call(app, "GET", "/case/html-head", user="alice")
    etag = shell.call(app, "GET", "/_embedgate/embedgate.js").header("etag")
    assert etag is not None
    assert f"/_embedgate/embedgate.js?v={etag.strip(chr(34))[:10]}".encode() in page.body


# -- the JWKS ----------------------------------------------------------------------------------


def test_jwks_is_published_with_asymmetric_keys_public_members_only(shell: Shell) -> None:
    pem = private_pem(ALGORITHM_KEYS["ES256"]).decode()
    app = shell.wrap(make_engine(secret=None, private_key=pem))
    result = shell.call(app, "GET", "/_embedgate/jwks.json")
    assert result.status == 200
    assert result.header("content-type") == "application/jwk-set+json"
    assert not [n for n in result.names() if n.startswith("access-control-")]
    keys = json.loads(result.body)["keys"]
    assert keys
    assert all(k["kty"] == "EC" and "d" not in k for k in keys)
    assert {"x", "y", "crv", "kid"} <= set(keys[0])
    post = shell.call(app, "POST", "/_embedgate/jwks.json")
    assert post.status == 405


def test_jwks_is_404_with_hmac_keys(shell: Shell) -> None:
    result = shell.call(shell.wrap(make_engine()), "GET", "/_embedgate/jwks.json")
    assert_error(result, 404, "no_public_keys")
    assert TEST_SECRET not in result.body.decode()
