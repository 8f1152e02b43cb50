"""The insertion point is where the browser's HTML parser sees it: never inside a comment,
an attribute value, a raw-text element or a script string; an existing data block is
recognised however it is written."""

from __future__ import annotations

import pytest

from embedgate.web.injection import MARKER, find_insertion_point, inject

SNIPPET = b'<script type="application/json" id="embedgate-token">null</script>'
HEAD_END = b"</head><body><p>x</p></body></html>"


def _head_point(page: bytes) -> int:
    """Where the real ``</head>`` is: the last one (every decoy comes before it)."""
    return page.rindex(b"</head>")


@pytest.mark.parametrize(
    "decoy",
    [
        b'<script>var s = "</head>";</script>',
        b"<script>var s = '</HEAD >';</script>",
        b"<title>a </head> b</title>",
        b"<TITLE></head></TITLE>",
        b"<!-- </head> -->",
        b"<!--\n</head>\n--!>",
        b'<meta name="x" content="</head>">',
        b"<meta name='x' content='</head> '>",
        b'<link rel=x title="a>b</head>">',
        b"<style>a::after { content: '</head>' }</style>",
        b"<noscript></head></noscript>",
        b"<textarea></head></textarea>",
        b"<xmp></head></xmp>",
        b"<noframes></head></noframes>",
        b"<script><!-- <script>document.write('</script></head>')</script> --></script>",
        b"<!DOCTYPE html>",
        b"<?xml version='1.0'?>",
        b"<meta a=b/c>",
        b'<meta content="</head>"/>',
    ],
)
def test_head_end_inside_a_decoy_does_not_receive_the_snippet(decoy: bytes) -> None:
    page = b"<html><head>" + decoy + HEAD_END
    point = find_insertion_point(page)
    assert point is not None
    assert point.kind == "head"
    assert point.start == _head_point(page)


@pytest.mark.parametrize(
    "tail",
    [b"<!-- </body> -->", b"<!-- a --><!-- </body> -->\n", b"<script>'</body>'</script>"],
)
def test_trailing_body_end_in_a_comment_or_script_does_not_swallow_it(tail: bytes) -> None:
    page = b"<html><body><p>x</p></body></html>" + tail
    point = find_insertion_point(page)
    assert point is not None
    assert point.kind == "body"
    assert point.start == page.index(b"</body>")


@pytest.mark.parametrize(
    "block",
    [
        b'<script type="application/json" id="embedgate-token">null</script>',
        b"<script type='application/json' id='embedgate-token'>null</script>",
        b"<script type=application/json id=embedgate-token>null</script>",
        b"<script id=embedgate-token type=application/json>null</script>",
        b'<SCRIPT ID="embedgate-token" TYPE="application/json">null</SCRIPT>',
        b'<script\nid = "embedgate-token"\ntype="application/json">null</script>',
        b"<script id=embedgate&#45;token>null</script>",
        b'<script/id="embedgate-token">null</script>',
    ],
)
def test_a_block_written_any_way_is_recognised(block: bytes) -> None:
    for page in (
        b"<html><head>" + block + b"</head><body></body></html>",
        b"<html><body><p>x</p>" + block + b"</body></html>",
    ):
        assert find_insertion_point(page) is None
        assert inject(page, SNIPPET) is None


@pytest.mark.parametrize(
    "not_a_block",
    [
        b"<!-- <script id=embedgate-token></script> -->",
        b"<meta content='<script id=embedgate-token>'>",
        b'<script id="other" data-x="id=embedgate-token"></script>',
        b'<script id="embedgate-token-2"></script>',
        b"<title><script id=embedgate-token></script></title>",
        b'<script id="a" id="embedgate-token"></script>',  # the first id counts
    ],
)
def test_text_that_only_looks_like_a_block_is_not_one(not_a_block: bytes) -> None:
    page = b"<html><head>" + not_a_block + HEAD_END
    point = find_insertion_point(page)
    assert point is not None
    assert point.start == _head_point(page)


@pytest.mark.parametrize(
    "decoy",
    [
        b"<meta content='<!-- embedgate -->'>",
        b"<title><!-- embedgate --></title>",
        b"<script>'<!-- embedgate -->'</script>",
    ],
)
def test_a_marker_the_parser_does_not_see_is_not_used(decoy: bytes) -> None:
    page = b"<html><head>" + decoy + HEAD_END
    point = find_insertion_point(page)
    assert point is not None
    assert point.kind == "head"


def test_a_marker_before_the_head_end_wins() -> None:
    page = b"<html><head><title>t</title>" + MARKER + HEAD_END
    point = find_insertion_point(page)
    assert point is not None
    assert (point.kind, point.start) == ("marker", page.index(MARKER))


def test_the_scan_stops_at_the_head_end() -> None:
    # What follows </head> is never read: a marker or a block there changes nothing, so
    # the cost does not grow with the page.
    page = b"<html><head><title>t</title>" + HEAD_END + MARKER + b"<script id=embedgate-token>"
    point = find_insertion_point(page)
    assert point is not None
    assert (point.kind, point.start) == ("head", page.index(b"</head>"))


@pytest.mark.parametrize(
    "page",
    [
        b"<html><head><!-- </head>",  # unterminated comment
        b"<html><head><script>'</head>'",  # unterminated script
        b"<html><head><meta content='</head>",  # unterminated attribute value
        b"<html><head><plaintext></head></body>",  # the rest is text
        b"<html><head><title></head></body>",
    ],
)
def test_no_insertion_point_when_the_rest_is_not_markup(page: bytes) -> None:
    assert find_insertion_point(page) is None


def test_body_end_inside_an_attribute_or_textarea_is_skipped() -> None:
    page = b"<body><div title='</body>'></div><textarea></body></textarea></body>"
    point = find_insertion_point(page)
    assert point is not None
    assert point.start == page.rindex(b"</body>")


def test_a_tag_cut_by_the_end_of_a_large_page_is_linear() -> None:
    # A pathological unterminated tag must not make the regex backtrack exponentially.
    page = b"<html><head><meta " + b"a" * 5000 + b" b=" * 2000
    assert find_insertion_point(page) is None


def test_a_block_after_the_marker_in_the_head_still_counts() -> None:
    page = b"<html><head>" + MARKER + b"<script id=embedgate-token>null</script>" + HEAD_END
    assert find_insertion_point(page) is None


def test_a_large_page_without_a_head_stays_cheap_and_skips_a_trailing_comment() -> None:
    page = b"<body>" + b"<p class=x>a</p>" * 40000 + b"</body><!-- </body> -->"
    point = find_insertion_point(page)
    assert point is not None
    assert point.start == page.index(b"</body>")
