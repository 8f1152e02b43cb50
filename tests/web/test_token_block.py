"""JSON-in-HTML escaping, the rendered snippet, CSP nonce extraction."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from embedgate.web.headers import Headers
from embedgate.web.token_block import extract_csp_nonce, json_for_html, render_token_block

NASTY = "</script><script>alert(1)</script><!-- x --> & \u2028\u2029 caf\u00e9 \U0001f600 '\""


class _Scripts(HTMLParser):
    """Collects script elements the way a browser tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._attrs: dict[str, str | None] | None = None
        self._data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._attrs, self._data = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._data.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._attrs is not None:
            self.scripts.append((self._attrs, "".join(self._data)))
            self._attrs = None


def scripts_of(html_text: str) -> list[tuple[dict[str, str | None], str]]:
    parser = _Scripts()
    parser.feed(html_text)
    parser.close()
    return parser.scripts


# --- json_for_html --------------------------------------------------------------------------


@pytest.mark.parametrize("needle", ["<", ">", "&", "\u2028", "\u2029", "</script", "<!--"])
def test_json_for_html_escapes_dangerous_characters(needle: str) -> None:
    out = json_for_html({"v": NASTY, needle: [needle]})
    assert needle not in out


def test_json_for_html_uses_unicode_escapes() -> None:
    out = json_for_html(["</script>", "&", "\u2028", "\u2029"])
    assert out == '["\\u003c/script\\u003e","\\u0026","\\u2028","\\u2029"]'


@pytest.mark.parametrize(
    "obj",
    [
        {"token": NASTY, "expires_at": 1_800_000_000, "refresh_in": 240, "endpoint": "/x?a=1&b=2"},
        [NASTY, None, True, 1.5, {"nested": {"<": ">"}}],
        NASTY,
        {},
    ],
)
def test_json_for_html_round_trips_and_is_ascii(obj: object) -> None:
    out = json_for_html(obj)
    assert out.isascii()
    assert json.loads(out) == obj


def test_json_for_html_refuses_nan() -> None:
    with pytest.raises(ValueError):
        json_for_html({"x": float("nan")})


# --- render_token_block -------------------------------------------------------------------

PAYLOAD = {
    "token": "eyJhbGciOi.abc.def",
    "expires_at": 1_800_000_300,
    "refresh_in": 240,
    "endpoint": "/_embedgate/token",
}


def test_snippet_shape() -> None:
    out = render_token_block(PAYLOAD, "/_embedgate/static/embedgate.js", "n0nce")
    assert out == (
        '<script type="application/json" id="embedgate-token">'
        + json_for_html(PAYLOAD)
        + '</script><script src="/_embedgate/static/embedgate.js" nonce="n0nce" defer></script>'
    )


def test_snippet_parses_into_exactly_two_scripts_even_with_a_hostile_token() -> None:
    payload = {**PAYLOAD, "token": NASTY}
    out = render_token_block(payload, "/s.js", None)
    scripts = scripts_of("<html><head>" + out + "</head></html>")
    assert len(scripts) == 2
    (data_attrs, data), (loader_attrs, loader_body) = scripts
    assert data_attrs == {"type": "application/json", "id": "embedgate-token"}
    assert json.loads(data) == payload
    assert loader_attrs == {"src": "/s.js", "defer": None}
    assert loader_body == ""


def test_snippet_attributes_are_escaped() -> None:
    url = '/s.js?a=1&b="><script>alert(1)</script>'
    nonce = 'abc" onload="alert(1)'
    endpoint = "/t?x=<y>&z='1'"
    out = render_token_block(PAYLOAD, url, nonce, endpoint=endpoint)
    assert "<script>alert" not in out
    assert 'onload="' not in out
    scripts = scripts_of(out)
    assert len(scripts) == 2
    attrs = scripts[1][0]
    assert attrs["src"] == url
    assert attrs["nonce"] == nonce
    assert attrs["data-endpoint"] == endpoint


def test_snippet_is_ascii_even_with_non_ascii_url() -> None:
    out = render_token_block({**PAYLOAD, "token": "t\u00e9"}, "/caf\u00e9.js", "n\u00e9")
    assert out.isascii()
    attrs = scripts_of(out)[1][0]
    assert attrs["src"] == "/caf\u00e9.js"
    assert attrs["nonce"] == "n\u00e9"


def test_snippet_without_nonce_has_no_nonce_attribute() -> None:
    assert "nonce" not in render_token_block(PAYLOAD, "/s.js", None)
    assert "nonce" not in render_token_block(PAYLOAD, "/s.js", "")


def test_snippet_without_payload_renders_null_and_the_endpoint() -> None:
    out = render_token_block(None, "/s.js", None, endpoint="/_embedgate/token")
    (data_attrs, data), (loader_attrs, _) = scripts_of(out)
    assert data_attrs["id"] == "embedgate-token"
    assert json.loads(data) is None
    assert loader_attrs["data-endpoint"] == "/_embedgate/token"


# --- extract_csp_nonce ----------------------------------------------------------------------


def csp(*values: str, name: bytes = b"content-security-policy") -> list[tuple[bytes, bytes]]:
    return [(name, v.encode()) for v in values]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (csp("script-src 'self' 'nonce-abc123'"), "abc123"),
        (
            csp("default-src 'self'; script-src 'strict-dynamic' 'nonce-R4nd0m+/_-=='"),
            "R4nd0m+/_-==",
        ),
        (csp("default-src 'self' 'nonce-fromdefault'"), "fromdefault"),
        (csp("default-src 'nonce-d'; script-src-elem 'nonce-elem'; script-src 'nonce-s'"), "elem"),
        # script-src governs, and it has no nonce: the default-src nonce does not apply.
        (csp("default-src 'nonce-d'; script-src 'self'"), None),
        (csp("style-src 'nonce-style'; img-src *"), None),
        (csp("SCRIPT-SRC 'NONCE-upper'"), "upper"),
        (csp("script-src\t'nonce-tab'"), "tab"),
        (csp("script-src 'nonce-first'; script-src 'nonce-second'"), "first"),
        (csp("img-src *, script-src 'nonce-second-policy'"), "second-policy"),
        (csp("img-src *", "script-src 'nonce-second-header'"), "second-header"),
        (csp("script-src 'nonce-X'", name=b"Content-Security-Policy"), "X"),
        (csp("script-src 'nonce-ro'", name=b"content-security-policy-report-only"), None),
        (csp("script-src 'nonce-'"), None),
        (csp("script-src nonce-unquoted"), None),
        ([], None),
    ],
)
def test_extract_csp_nonce(headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    assert extract_csp_nonce(headers) == expected


def test_extract_csp_nonce_accepts_headers_object_and_prefers_enforced_policy() -> None:
    h = Headers(
        [
            (b"Content-Security-Policy-Report-Only", b"script-src 'nonce-reportonly'"),
            (b"Content-Security-Policy", b"script-src 'nonce-enforced'"),
        ]
    )
    assert extract_csp_nonce(h) == "enforced"


def test_rendered_nonce_matches_extracted_one() -> None:
    nonce = extract_csp_nonce(csp("script-src 'nonce-Zm9vYmFy'"))
    out = render_token_block(PAYLOAD, "/s.js", nonce)
    assert re.search(r'<script src="/s.js" nonce="Zm9vYmFy" defer>', out)
