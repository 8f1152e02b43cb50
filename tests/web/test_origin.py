"""Same-origin and custom-header checks of the JSON token endpoint."""

from __future__ import annotations

import pytest

from embedgate.web.headers import Headers
from embedgate.web.origin import (
    has_csrf_header,
    is_same_origin,
    normalize_origin,
    request_origin,
)


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        (b"same-origin", True),
        (b"none", True),
        (b"Same-Origin", True),
        (b"same-site", False),
        (b"cross-site", False),
        (b"", False),
        (b"bogus", False),
    ],
)
def test_sec_fetch_site_decides(site: bytes, expected: bool) -> None:
    assert is_same_origin([(b"sec-fetch-site", site)], "https", "app.example") is expected


def test_sec_fetch_site_overrides_origin() -> None:
    # Fetch Metadata is set by the browser itself and wins over a matching Origin...
    cross = [(b"Sec-Fetch-Site", b"cross-site"), (b"Origin", b"https://app.example")]
    assert is_same_origin(cross, "https", "app.example") is False
    # ...and a same-origin verdict is not second-guessed by Origin either.
    same = [(b"Sec-Fetch-Site", b"same-origin"), (b"Origin", b"https://other.example")]
    assert is_same_origin(same, "https", "app.example") is True


def test_repeated_sec_fetch_site_is_refused() -> None:
    h = [(b"sec-fetch-site", b"same-origin"), (b"sec-fetch-site", b"cross-site")]
    assert is_same_origin(h, "https", "app.example") is False


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "expected"),
    [
        ("https://app.example", "https", "app.example", True),
        ("https://app.example", "https", "app.example:443", True),
        ("https://app.example:443", "https", "app.example", True),
        ("http://app.example:80", "http", "app.example", True),
        ("HTTPS://App.Example", "https", "APP.example", True),
        ("https://app.example:8443", "https", "app.example:8443", True),
        ("http://127.0.0.1:8000", "http", "127.0.0.1:8000", True),
        ("http://[::1]:8000", "http", "[::1]:8000", True),
        ("https://app.example", "https", "app.example:8443", False),
        ("https://app.example:8443", "https", "app.example", False),
        ("http://app.example", "https", "app.example", False),
        ("https://app.example:443", "http", "app.example:443", False),
        ("http://app.example:443", "https", "app.example", False),
        ("https://evil.example", "https", "app.example", False),
        ("https://sub.app.example", "https", "app.example", False),
        ("https://app.example.evil", "https", "app.example", False),
        ("null", "https", "app.example", False),
        ("https://app.example/", "https", "app.example", False),
        ("https://user@app.example", "https", "app.example", False),
        ("https://app.example:99999", "https", "app.example", False),
        ("ftp://app.example", "ftp", "app.example", False),
        ("", "https", "app.example", False),
        ("https://app.example", "https", "", False),
        ("https://app.example", "https", "app.example:notaport", False),
    ],
)
def test_origin_header(origin: str, scheme: str, host: str, expected: bool) -> None:
    assert is_same_origin([(b"origin", origin.encode())], scheme, host) is expected


def test_multiple_origin_headers_are_refused() -> None:
    h = [(b"origin", b"https://app.example"), (b"origin", b"https://app.example")]
    assert is_same_origin(h, "https", "app.example") is False


def test_no_fetch_metadata_and_no_origin_is_allowed() -> None:
    # Non-browser clients; X-Embedgate (which needs a preflight) is what stops cross-site posts.
    assert is_same_origin([], "https", "app.example") is True
    # Referer is not consulted: a mismatching one does not refuse.
    referer = [(b"referer", b"https://evil.example/page")]
    assert is_same_origin(referer, "https", "app.example") is True


def test_accepts_headers_object() -> None:
    h = Headers([(b"Origin", b"https://evil.example")])
    assert is_same_origin(h, "https", "app.example") is False


@pytest.mark.parametrize(
    ("scheme", "host", "expected"),
    [
        ("https", "x", "https://x"),
        ("HTTPS", "X:443", "https://x"),
        ("http", "x:8080", "http://x:8080"),
        ("http", "[::1]", "http://[::1]"),
        ("ws", "x", None),
        ("https", "x/y", None),
        ("https", "a@x", None),
    ],
)
def test_request_origin(scheme: str, host: str, expected: str | None) -> None:
    assert request_origin(scheme, host) == expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://x", "https://x"),
        (" https://X:443 ", "https://x"),
        ("https://x?q", None),
        ("https://x#f", None),
        ("https:x", None),
        ("null", None),
    ],
)
def test_normalize_origin(origin: str, expected: str | None) -> None:
    assert normalize_origin(origin) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"x-embedgate", b"1")], True),
        ([(b"X-Embedgate", b" 1 ")], True),
        ([(b"X-EMBEDGATE", b"1")], True),
        ([(b"x-embedgate", b"0")], False),
        ([(b"x-embedgate", b"true")], False),
        ([(b"x-embedgate", b"")], False),
        ([(b"x-embedgate", b"1"), (b"x-embedgate", b"1")], False),
        ([(b"x-requested-with", b"XMLHttpRequest")], False),
        ([], False),
    ],
)
def test_has_csrf_header(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert has_csrf_header(headers) is expected
