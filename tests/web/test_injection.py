"""Injection decision, incremental injector, header rewrite (and the header helper)."""

from __future__ import annotations

import pytest

from embedgate.web.headers import Headers, parse_content_type
from embedgate.web.injection import (
    DEFAULT_BUFFER_LIMIT,
    MARKER,
    HtmlInjector,
    InsertionPoint,
    content_type_charset,
    find_insertion_point,
    inject,
    is_ascii_compatible,
    response_headers_after_injection,
    should_inject,
)

SNIPPET = b'<script type="application/json" id="embedgate-token">{"token":"t"}</script>'
HTML = [(b"content-type", b"text/html; charset=utf-8")]


def run(
    page: bytes,
    chunks: list[bytes] | None = None,
    *,
    charset: str | None = None,
    limit: int = DEFAULT_BUFFER_LIMIT,
) -> tuple[bytes, HtmlInjector]:
    """Drive an injector the way a shell does; return everything emitted, in order."""
    inj = HtmlInjector(charset=charset, limit=limit)
    out = [inj.feed(c) for c in (chunks if chunks is not None else [page])]
    out.append(inj.finish(SNIPPET))
    return b"".join(out), inj


# --- should_inject -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [
        ("GET", 200, HTML),
        ("POST", 201, HTML),
        ("GET", 203, [(b"content-type", b"text/html")]),
        ("get", 200, [(b"Content-Type", b"TEXT/HTML; Charset=ISO-8859-1")]),
        ("GET", 200, [(b"content-type", b"application/xhtml+xml")]),
        ("GET", 200, [*HTML, (b"content-encoding", b"identity")]),
        ("GET", 200, [*HTML, (b"content-length", str(DEFAULT_BUFFER_LIMIT).encode())]),
        ("GET", 200, [*HTML, (b"content-disposition", b"inline")]),
    ],
)
def test_should_inject_accepts_html_pages(
    method: str, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    assert should_inject(method, status, headers) is True


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [
        ("HEAD", 200, HTML),
        ("head", 200, HTML),
        ("GET", 204, HTML),
        ("GET", 205, HTML),
        ("GET", 206, HTML),
        ("GET", 304, HTML),
        ("GET", 302, HTML),
        ("GET", 404, HTML),
        ("GET", 500, HTML),
        ("GET", 199, HTML),
        ("GET", 200, [(b"content-type", b"application/json")]),
        ("GET", 200, [(b"content-type", b"text/event-stream")]),
        ("GET", 200, [(b"content-type", b"text/plain")]),
        ("GET", 200, [(b"content-type", b"text/htmlx")]),
        ("GET", 200, []),
        ("GET", 200, [*HTML, (b"content-encoding", b"gzip")]),
        ("GET", 200, [*HTML, (b"Content-Encoding", b"br")]),
        ("GET", 200, [*HTML, (b"content-encoding", b"identity, gzip")]),
        ("GET", 200, [*HTML, (b"content-range", b"bytes 0-10/100")]),
        ("GET", 200, [*HTML, (b"content-disposition", b'attachment; filename="a.html"')]),
        ("GET", 200, [*HTML, (b"cache-control", b"public, No-Transform")]),
        ("GET", 200, [*HTML, (b"content-length", str(DEFAULT_BUFFER_LIMIT + 1).encode())]),
        ("GET", 200, [*HTML, (b"content-length", b"12abc")]),
        ("GET", 200, [(b"content-type", b"text/html; charset=utf-16")]),
        ("GET", 200, [(b"content-type", b"text/html; charset=UTF-32LE")]),
        ("GET", 200, [(b"content-type", b"text/html; charset=iso-2022-jp")]),
        ("GET", 200, [(b"content-type", b'text/html; charset="no-such-charset"')]),
    ],
)
def test_should_inject_declines(
    method: str, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    assert should_inject(method, status, headers) is False


def test_should_inject_limit_none_ignores_content_length() -> None:
    big = [*HTML, (b"content-length", b"999999999")]
    assert should_inject("GET", 200, big) is False
    assert should_inject("GET", 200, big, limit=None) is True


@pytest.mark.parametrize(
    ("charset", "expected"),
    [
        ("utf-8", True),
        ("UTF8", True),
        ("iso-8859-1", True),
        ("latin-1", True),
        ("windows-1252", True),
        ("shift_jis", True),
        ("euc-jp", True),
        ("gb18030", True),
        ("utf-16", False),
        ("utf-16le", False),
        ("utf-32", False),
        ("utf-7", False),
        ("iso-2022-jp", False),
        ("hz", False),
        ("cp500", False),  # EBCDIC
        ("rot13", False),  # a str-to-str codec, not a charset
        ("x-no-such-charset", False),
    ],
)
def test_is_ascii_compatible(charset: str, expected: bool) -> None:
    assert is_ascii_compatible(charset) is expected


def test_content_type_charset() -> None:
    assert content_type_charset([(b"Content-Type", b'text/html; charset="Shift_JIS"')]) == (
        "Shift_JIS"
    )
    assert content_type_charset([(b"content-type", b"text/html")]) is None
    assert content_type_charset([]) is None


# --- find_insertion_point / inject -----------------------------------------------------------


def test_marker_is_replaced_and_wins_over_head() -> None:
    page = b"<html><head><!-- embedgate --><title>x</title></head><body><div></div></body></html>"
    point = find_insertion_point(page)
    start = page.index(MARKER)
    assert point == InsertionPoint(start, start + len(MARKER), "marker")
    out = inject(page, SNIPPET)
    assert out == page.replace(MARKER, SNIPPET)
    assert MARKER not in out


def test_only_first_marker_is_replaced() -> None:
    page = b"<body><!-- embedgate -->a<!-- embedgate --></body>"
    out = inject(page, SNIPPET)
    assert out == page.replace(MARKER, SNIPPET, 1)
    assert out is not None
    assert out.count(SNIPPET) == 1


@pytest.mark.parametrize(
    "end_head", [b"</head>", b"</HEAD>", b"</Head>", b"</hEaD >", b"</head\n>", b"</head/>"]
)
def test_inserted_before_first_head_end_in_any_case(end_head: bytes) -> None:
    page = b"<html><head><title>t</title>" + end_head + b"<body>x</head></body></html>"
    out = inject(page, SNIPPET)
    i = page.index(end_head)
    assert find_insertion_point(page) == InsertionPoint(i, i, "head")
    assert out == page[:i] + SNIPPET + page[i:]


def test_header_element_is_not_mistaken_for_head() -> None:
    page = b"<html><body><header>h</header><p>x</p></body></html>"
    i = page.index(b"</body>")
    assert find_insertion_point(page) == InsertionPoint(i, i, "body")


@pytest.mark.parametrize("end_body", [b"</body>", b"</BODY>", b"</BoDy >"])
def test_falls_back_to_last_body_end(end_body: bytes) -> None:
    page = b"<html><body><pre>literal </body> text</pre>" + end_body + b"</html>"
    out = inject(page, SNIPPET)
    i = page.rindex(end_body)
    assert out == page[:i] + SNIPPET + page[i:]


def test_last_body_end_found_far_from_the_end() -> None:
    # Several backward windows have to be scanned before the tag shows up.
    page = b"<body>x</body>" + b"<!-- trailing junk -->" * 5000
    assert find_insertion_point(page) == InsertionPoint(7, 7, "body")


@pytest.mark.parametrize("shift", range(-9, 10))
def test_body_end_straddling_the_backward_window_edge(shift: int) -> None:
    # The first backward window is the last 8192 bytes; put "</body>" across its edge.
    page_len = 20_000
    pos = page_len - 8192 + shift
    page = b"a" * pos + b"</body>" + b"b" * (page_len - pos - 7)
    assert len(page) == page_len
    assert find_insertion_point(page) == InsertionPoint(pos, pos, "body")


def test_no_insertion_point() -> None:
    page = b"<div>fragment without head or body</div>"
    assert find_insertion_point(page) is None
    assert inject(page, SNIPPET) is None
    out, inj = run(page)
    assert out == page
    assert inj.injected is False


def test_page_already_carrying_the_snippet_is_left_alone() -> None:
    page = b"<html><head>" + SNIPPET + b"</head><body><!-- embedgate --></body></html>"
    assert find_insertion_point(page) is None
    out, inj = run(page)
    assert out == page
    assert inj.injected is False


def test_never_injects_twice_when_run_on_its_own_output() -> None:
    page = b"<html><head></head><body></body></html>"
    once, first = run(page)
    twice, second = run(once)
    assert first.injected is True
    assert second.injected is False
    assert twice == once
    assert twice.count(b'id="embedgate-token"') == 1


def test_latin1_page_round_trips_except_for_the_insertion() -> None:
    head = "<html><head><title>Caf\u00e9 \u00fc\u00df \u00ff</title>".encode("latin-1")
    tail = "</head><body>na\u00efve \u00a9 \x85</body></html>".encode("latin-1")
    page = head + tail
    out, inj = run(page, charset="iso-8859-1")
    assert inj.injected is True
    assert out == head + SNIPPET + tail
    assert out.decode("latin-1") == head.decode("latin-1") + SNIPPET.decode() + tail.decode(
        "latin-1"
    )


def test_shift_jis_page_is_injected_bytewise() -> None:
    text = "<html><head><title>\u8868\u793a</title></head><body>\u30bd</body></html>"
    page = text.encode("shift_jis")
    out, inj = run(page, charset="shift_jis")
    assert inj.injected is True
    assert out.decode("shift_jis") == text.replace("</head>", SNIPPET.decode() + "</head>")


def test_utf8_bom_page_is_injected() -> None:
    page = b"\xef\xbb\xbf<html><head></head></html>"
    out, inj = run(page)
    assert inj.injected is True
    assert out == b"\xef\xbb\xbf<html><head>" + SNIPPET + b"</head></html>"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_or_32_page_with_bom_is_declined(encoding: str) -> None:
    text = "<html><head></head><body></body></html>"
    page = text.encode(encoding)
    if not page.startswith((b"\xff\xfe", b"\xfe\xff")):
        page = b"\xfe\xff" + page  # utf-16-be has no BOM of its own
    out, inj = run(page)
    assert out == page
    assert inj.injected is False
    assert inject(page, SNIPPET) is None


def test_utf16_bom_wins_even_if_ascii_tags_are_present() -> None:
    # Browsers decode by the BOM, so ASCII-looking bytes after it are not "</head>".
    page = b"\xff\xfe<html><head></head></html>"
    assert inject(page, SNIPPET) is None
    out, inj = run(page, charset="utf-8")
    assert out == page
    assert inj.injected is False


def test_declared_utf16_passes_through_immediately() -> None:
    page = "<html><head></head></html>".encode("utf-16-le")
    inj = HtmlInjector(charset="utf-16le")
    assert inj.passthrough is True
    assert inj.feed(page[:5]) == page[:5]
    assert inj.feed(page[5:]) == page[5:]
    assert inj.finish(SNIPPET) == b""
    assert inj.injected is False
    assert inject(page, SNIPPET, charset="utf-16le") is None


def test_non_ascii_snippet_is_refused() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        inject(b"<head></head>", "<script>\u00e9</script>")
    with pytest.raises(ValueError, match="ASCII"):
        HtmlInjector().finish(b"\xe9")


def test_str_snippet_is_accepted() -> None:
    assert inject(b"<head></head>", "<i>x</i>") == b"<head><i>x</i></head>"


# --- HtmlInjector: chunking -----------------------------------------------------------------

MARKER_PAGE = b"<html><body><p>a</p><!-- embedgate --><p>b</p></body>"
HEAD_PAGE = b"<html><head><title>t</title></HEAD><body><p>x</p></body></html>"
BODY_PAGE = b"<html><body><p>x</p></BODY></html>"


@pytest.mark.parametrize("split", range(len(MARKER_PAGE) + 1))
def test_marker_split_at_every_boundary(split: int) -> None:
    out, inj = run(MARKER_PAGE, [MARKER_PAGE[:split], MARKER_PAGE[split:]])
    assert inj.injected is True
    assert out == MARKER_PAGE.replace(MARKER, SNIPPET)


@pytest.mark.parametrize("split", range(len(HEAD_PAGE) + 1))
def test_head_split_at_every_boundary(split: int) -> None:
    out, _ = run(HEAD_PAGE, [HEAD_PAGE[:split], HEAD_PAGE[split:]])
    assert out == HEAD_PAGE.replace(b"</HEAD>", SNIPPET + b"</HEAD>")


@pytest.mark.parametrize("split", range(len(BODY_PAGE) + 1))
def test_body_split_at_every_boundary(split: int) -> None:
    out, _ = run(BODY_PAGE, [BODY_PAGE[:split], BODY_PAGE[split:]])
    assert out == BODY_PAGE.replace(b"</BODY>", SNIPPET + b"</BODY>")


@pytest.mark.parametrize("page", [MARKER_PAGE, HEAD_PAGE, BODY_PAGE])
def test_one_byte_chunks(page: bytes) -> None:
    inj = HtmlInjector()
    emitted = [inj.feed(page[i : i + 1]) for i in range(len(page))]
    assert emitted == [b""] * len(page)  # nothing escapes before finish()
    assert inj.buffered == len(page)
    out = inj.finish(SNIPPET)
    assert inj.injected is True
    assert out.count(SNIPPET) == 1
    assert out.replace(SNIPPET, b"") == page.replace(MARKER, b"")


def test_empty_chunks_are_harmless() -> None:
    out, inj = run(HEAD_PAGE, [b"", HEAD_PAGE[:10], b"", HEAD_PAGE[10:], b""])
    assert inj.injected is True
    assert out == HEAD_PAGE.replace(b"</HEAD>", SNIPPET + b"</HEAD>")


def test_insertion_point_before_finish_then_finish_uses_it() -> None:
    inj = HtmlInjector()
    inj.feed(HEAD_PAGE[:20])
    inj.feed(HEAD_PAGE[20:])
    i = HEAD_PAGE.index(b"</HEAD>")
    assert inj.insertion_point() == InsertionPoint(i, i, "head")
    assert inj.finish(SNIPPET) == HEAD_PAGE[:i] + SNIPPET + HEAD_PAGE[i:]


def test_finish_without_snippet_returns_body_unchanged() -> None:
    inj = HtmlInjector()
    inj.feed(HEAD_PAGE)
    assert inj.finish(None) == HEAD_PAGE
    assert inj.injected is False


def test_misuse_after_finish_raises() -> None:
    inj = HtmlInjector()
    inj.feed(b"<head></head>")
    inj.finish(SNIPPET)
    with pytest.raises(RuntimeError):
        inj.feed(b"more")
    with pytest.raises(RuntimeError):
        inj.finish(SNIPPET)
    assert inj.insertion_point() is None


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        HtmlInjector(limit=-1)


# --- HtmlInjector: overflow -----------------------------------------------------------------


def test_overflow_returns_everything_unchanged_and_in_order() -> None:
    page = b"<html><head></head><body>" + bytes(range(256)) * 2 + b"</body></html>"
    chunks = [page[i : i + 7] for i in range(0, len(page), 7)]
    inj = HtmlInjector(limit=100)
    emitted: list[bytes] = []
    for n, chunk in enumerate(chunks):
        out = inj.feed(chunk)
        emitted.append(out)
        fed = sum(map(len, chunks[: n + 1]))
        # Held back while within the limit; the whole backlog at the crossing; then as fed.
        if fed <= 100:
            assert out == b""
            assert inj.passthrough is False
        elif fed - len(chunk) <= 100:
            assert out == page[:fed]
            assert inj.overflowed is True
            assert inj.passthrough is True
        else:
            assert out == chunk
    emitted.append(inj.finish(SNIPPET))
    assert emitted[-1] == b""
    assert b"".join(emitted) == page
    assert inj.injected is False


def test_body_of_exactly_the_limit_is_still_injected() -> None:
    page = HEAD_PAGE
    out, inj = run(page, [page[:10], page[10:]], limit=len(page))
    assert inj.overflowed is False
    assert inj.injected is True
    assert out.count(SNIPPET) == 1
    _, over = run(page, [page[:10], page[10:]], limit=len(page) - 1)
    assert over.overflowed is True
    assert over.injected is False


def test_zero_limit_overflows_on_first_non_empty_chunk() -> None:
    inj = HtmlInjector(limit=0)
    assert inj.feed(b"") == b""
    assert inj.passthrough is False
    assert inj.feed(b"<head>") == b"<head>"
    assert inj.passthrough is True
    assert inj.feed(b"</head>") == b"</head>"
    assert inj.finish(SNIPPET) == b""


def test_default_limit_overflow_on_a_large_page() -> None:
    page = b"<html><head></head><body>" + b"x" * DEFAULT_BUFFER_LIMIT + b"</body></html>"
    chunk = 64 * 1024
    out, inj = run(page, [page[i : i + chunk] for i in range(0, len(page), chunk)])
    assert inj.overflowed is True
    assert out == page


# --- response headers -----------------------------------------------------------------------


def test_response_headers_after_injection() -> None:
    original = [
        (b"Content-Type", b"text/html; charset=utf-8"),
        (b"Content-Length", b"120"),
        (b"ETag", b'"abc"'),
        (b"Last-Modified", b"Wed, 21 Oct 2015 07:28:00 GMT"),
        (b"Cache-Control", b"public, max-age=3600"),
        (b"Set-Cookie", b"a=1"),
        (b"Vary", b"Accept-Encoding"),
        (b"Set-Cookie", b"b=2"),
        (b"Accept-Ranges", b"bytes"),
        (b"Repr-Digest", b"sha-256=:x:"),
    ]
    before = list(original)
    h = response_headers_after_injection(original, 200)
    assert original == before  # input untouched
    assert h.get_all("content-length") == [b"200"]
    for gone in ("etag", "last-modified", "accept-ranges", "repr-digest"):
        assert gone not in h
    assert h.get_all("cache-control") == [b"private, no-store"]
    assert h.get_all("vary") == [b"Accept-Encoding, Cookie"]
    assert h.get_all("set-cookie") == [b"a=1", b"b=2"]
    assert h.get("content-type") == b"text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        ([], b"Cookie"),
        ([b"cookie"], b"cookie"),
        ([b"Accept-Encoding, Cookie"], b"Accept-Encoding, Cookie"),
        ([b"Accept-Encoding", b"Accept-Language"], b"Accept-Encoding, Accept-Language, Cookie"),
        ([b"Origin,origin , Accept"], b"Origin, Accept, Cookie"),
        ([b"*"], b"*"),
    ],
)
def test_vary_merge(vary: list[bytes], expected: bytes) -> None:
    h = response_headers_after_injection([(b"vary", v) for v in vary], 1)
    assert h.get_all(b"Vary") == [expected]


def test_content_length_added_when_absent() -> None:
    h = response_headers_after_injection(Headers([(b"content-type", b"text/html")]), 42)
    assert h.get(b"content-length") == b"42"


def test_wsgi_round_trip_of_rewritten_headers() -> None:
    wsgi = [("Content-Type", "text/html; charset=latin-1"), ("X-Title", "caf\u00e9")]
    h = response_headers_after_injection(Headers.from_wsgi(wsgi), 7)
    out = h.to_wsgi()
    assert ("Content-Type", "text/html; charset=latin-1") in out
    assert ("X-Title", "caf\u00e9") in out
    assert ("content-length", "7") in out


# --- Headers helper -------------------------------------------------------------------------


def test_headers_case_insensitive_get_set_delete_add() -> None:
    h = Headers([(b"Content-Type", b"text/html"), (b"X-A", b"1"), (b"x-a", b"2")])
    assert h.get("content-type") == b"text/html"
    assert h.get(b"CONTENT-TYPE") == b"text/html"
    assert h.get_str("x-a") == "1"
    assert h.get("missing") is None
    assert h.get("missing", b"d") == b"d"
    assert h.get_all("X-a") == [b"1", b"2"]
    assert "X-A" in h
    assert "nope" not in h
    h.set("X-A", "3")
    assert h.get_all("x-a") == [b"3"]
    assert h.raw == [(b"Content-Type", b"text/html"), (b"x-a", b"3")]
    h.add("X-B", b"4")
    h.add("x-b", b"5")
    assert h.get_all("x-b") == [b"4", b"5"]
    h.delete("X-B")
    assert "x-b" not in h
    h.delete("never-there")
    assert len(h) == 2


def test_headers_wsgi_conversion_is_latin1() -> None:
    h = Headers.from_wsgi([("X-Name", "\u00e9t\u00e9")])
    assert h.raw == [(b"X-Name", b"\xe9t\xe9")]
    assert h.to_wsgi() == [("X-Name", "\u00e9t\u00e9")]


def test_headers_repr_hides_values() -> None:
    assert "secret" not in repr(Headers([(b"cookie", b"session=secret")]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("", {})),
        (b"", ("", {})),
        (b"text/html", ("text/html", {})),
        (b"Text/HTML ; Charset=UTF-8", ("text/html", {"charset": "UTF-8"})),
        ('text/html; charset="iso-8859-1"', ("text/html", {"charset": "iso-8859-1"})),
        (b'multipart/x; boundary="a;b\\"c"; x=1', ("multipart/x", {"boundary": 'a;b"c', "x": "1"})),
        (b"text/html; charset=utf-8; charset=latin-1", ("text/html", {"charset": "utf-8"})),
    ],
)
def test_parse_content_type(
    value: bytes | str | None, expected: tuple[str, dict[str, str]]
) -> None:
    assert parse_content_type(value) == expected


def test_a_head_end_after_the_body_opens_is_not_the_head() -> None:
    # Text that only looks like </head> inside the body (the head was omitted): the snippet
    # goes before </body>, where a page without a head wants it.
    page = b"<html><body><pre>&lt;/head&gt; </head> is shown here</pre></body></html>"
    point = find_insertion_point(page)
    assert point is not None
    assert point.kind == "body"
    assert page[point.start :].startswith(b"</body>")


def test_the_head_end_before_the_body_is_found_even_with_body_like_text_later() -> None:
    page = b"<html><head><title>t</title></HEAD><BODY class='x'>see <body> and </head></body>"
    point = find_insertion_point(page)
    assert point is not None
    assert point.kind == "head"
    assert page[point.start : point.start + 7] == b"</HEAD>"
