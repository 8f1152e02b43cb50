"""Where the snippet goes in an HTML page, found the way the HTML tokenizer reads the page.

A ``</head>`` inside a comment, an attribute value, an inline script's string, a ``<title>``
or any other raw-text element is not an end tag for the browser, and neither is a marker or
a data block written there. The scan below follows the WHATWG tokenizer's states that decide
this (data, comments, tags and their quoted attribute values, RCDATA/RAWTEXT elements, the
script data escape states, ``<plaintext>``), over raw bytes of an ASCII-compatible page.

The read starts at the top and stops at the insertion point, so a page with a ``</head>``
costs its head, whatever its size. It steps from ``<`` to ``<`` with :meth:`bytes.find` and
skips raw-text elements with one search each. Scripting is assumed enabled (``<noscript>``
is raw text), as in any browser that runs the loader. Foreign content (``<svg>``,
``<math>``) and ``<template>`` are not modelled.
"""

from __future__ import annotations

import html
import re
from typing import Literal, NamedTuple

__all__ = ["InsertionPoint", "find_insertion_point"]

MARKER = b"<!-- embedgate -->"
BLOCK_ID = b"embedgate-token"


class InsertionPoint(NamedTuple):
    """Replace ``body[start:end]`` by the snippet (``start == end`` for a pure insertion)."""

    start: int
    end: int
    kind: Literal["marker", "head", "body"]


_SEP = rb"[\t\n\f\r /]"
_NAME_CHARS = rb"[^\t\n\f\r />=]"
# One attribute: a name (a leading "=" is part of it, as the tokenizer says), then either a
# value or no "=" at all. Each piece can match one way only, so a tag cut short by the end
# of the page fails in linear time instead of backtracking through every split (a value
# never starts with whitespace, and is empty only before ">").
_ATTR = (
    rb"[^\t\n\f\r />]" + _NAME_CHARS + rb"*(?!" + _NAME_CHARS + rb")"
    rb"(?:[\t\n\f\r ]*=[\t\n\f\r ]*"
    rb"(?:\"[^\"]*\"|'[^']*'|[^\t\n\f\r >\"'][^\t\n\f\r >]*(?![^\t\n\f\r >])|(?=>|\Z))"
    rb"|(?![\t\n\f\r ]*=))"
)
_ATTRS = rb"(?:" + _SEP + rb"|" + _ATTR + rb")*>"
_TAG_END = rb"(?=[\t\n\f\r />])"
_RAW = frozenset(
    (b"style", b"title", b"textarea", b"xmp", b"iframe", b"noembed", b"noframes", b"noscript")
)


def _ci(name: bytes) -> bytes:
    return rb"(?i:" + name + rb")"


def _raw_element(name: bytes) -> bytes:
    # The start tag, the content up to the first "</name" that ends a tag name, the end tag.
    return (
        rb"<"
        + _ci(name)
        + _TAG_END
        + _ATTRS
        + rb"[^<]*(?:<(?!/"
        + _ci(name)
        + _TAG_END
        + rb")[^<]*)*</"
        + _ci(name)
        + _TAG_END
        + _ATTRS
    )


_SPECIAL = (*sorted(_RAW), b"script", b"plaintext", b"body")
# Runs of tokens that can hold neither an insertion point, a marker nor a data block,
# consumed inside the regex engine: text, ordinary tags, comments, whole raw-text elements
# and inline scripts without "<!--" (whose tag and text up to the first "<" do not mention
# embedgate). It stops at anything else, which the loop below reads token by token.
_SKIP = re.compile(
    rb"(?:"
    + rb"|".join(
        (
            rb"[^<]+",
            rb"<(?!(?:" + b"|".join(_ci(n) for n in _SPECIAL) + rb")" + _TAG_END + rb")"
            rb"[A-Za-z][^\t\n\f\r />]*" + _ATTRS,
            rb"</(?!" + _ci(b"head|body") + _TAG_END + rb")[A-Za-z][^\t\n\f\r />]*" + _ATTRS,
            rb"<"
            + _ci(b"script")
            + _TAG_END
            + rb"(?![^<]*embedgate)"
            + _ATTRS
            + rb"[^<]*(?:<(?!!--|/"
            + _ci(b"script")
            + _TAG_END
            + rb")[^<]*)*</"
            + _ci(b"script")
            + _TAG_END
            + _ATTRS,
            *(_raw_element(n) for n in sorted(_RAW)),
            rb"<!--(?! embedgate -->)(?:>|->|(?:[^-]|-(?!-!?>))*--!?>)",
            rb"<!(?!--)[^>]*>",
            rb"<\?[^>]*>",
            rb"</>",
            rb"</[^A-Za-z>][^>]*>",
            rb"<(?=[^A-Za-z!?/])",  # a lone "<" is text (at the very end: maybe not yet)
        )
    )
    + rb")*",
    re.DOTALL,
)
_START_TAG = re.compile(rb"<([A-Za-z][^\t\n\f\r />]*)((?:" + _SEP + rb"|" + _ATTR + rb")*)>")
_END_TAG = re.compile(rb"</([A-Za-z][^\t\n\f\r />]*)" + _ATTRS)
_ATTR_PAIR = re.compile(
    rb"([^\t\n\f\r />][^\t\n\f\r />=]*)(?:[\t\n\f\r ]*=[\t\n\f\r ]*"
    rb"(?:\"([^\"]*)\"|'([^']*)'|([^\t\n\f\r >]*)))?"
)
# The rest of a comment after "<!--": "<!-->" and "<!--->" close at once.
_COMMENT_CLOSE = re.compile(rb">|->|.*?--!?>", re.DOTALL)
_SCRIPT_TOKENS = re.compile(rb"<!--|-->|<(/?)" + _ci(b"script") + _TAG_END)
_DASHES_GT = re.compile(rb"-*>")
_CLOSERS = {n: re.compile(rb"</" + _ci(n) + _TAG_END) for n in _RAW}


def _is_block(attrs: bytes) -> bool:
    """Whether a start tag's attributes give it the data block's id (first ``id`` wins)."""
    if BLOCK_ID not in attrs and b"&" not in attrs:
        return False
    for m in _ATTR_PAIR.finditer(attrs):
        if m.group(1).lower() == b"id":
            value = m.group(2) if m.group(2) is not None else m.group(3)
            if value is None:
                value = m.group(4) or b""
            if b"&" in value:
                value = html.unescape(value.decode("latin-1")).encode("latin-1", "replace")
            return value == BLOCK_ID
    return False


def _script_end(body: bytes | bytearray, pos: int) -> int:
    """Where the end tag of a script whose content starts at ``pos`` ends, or -1 (EOF).

    Follows the script data (double) escaped states: inside ``<!-- <script>`` a
    ``</script>`` does not end the element.
    """
    state = 0  # 0 data, 1 escaped, 2 double escaped
    for m in _SCRIPT_TOKENS.finditer(body, pos):
        token = m.group(0)
        if token == b"<!--":
            if state == 0 and _DASHES_GT.match(body, m.end()) is None:  # "<!-->" stays data
                state = 1
        elif token == b"-->":
            if state:
                state = 0
        elif m.group(1):  # </script
            if state == 2:
                state = 1
            else:
                end = _END_TAG.match(body, m.start())
                return -1 if end is None else end.end()
        elif state == 1:  # <script
            state = 2
    return -1


POINT, NONE, END, MORE = "point", "none", "end", "more"


def _scan(
    body: bytes | bytearray,
    pos: int,
    *,
    head: bool,
    eof: bool = True,
    marker: InsertionPoint | None = None,
) -> tuple[str, int, InsertionPoint | None, int]:
    """Tokenize from ``pos`` (in the data state). Returns ``(status, pos, point, last_body_end)``.

    ``POINT``: the insertion point is known (the first marker, else ``</head>``; in head
    mode a marker is final only at the head's end). ``NONE``: the page takes no snippet (a
    data block first, or nothing after ``pos`` can be markup: an unterminated comment, tag or
    raw-text element at the end of the page, ``<plaintext>``). ``END``: head mode met
    ``<body>`` or the end without a head end (``point`` carries a marker met on the way);
    full mode reached the end (the last ``</body>`` is ``last_body_end``). ``MORE``: with
    ``eof`` false, the page so far ends inside a token that decides; ``pos`` is where to
    resume once more bytes came, ``point`` the marker met so far.
    """
    last_body_end = -1
    find = body.find
    size = len(body)
    skip = _SKIP.match
    while True:
        pos = skip(body, pos).end()  # type: ignore[union-attr]  # "(...)*" always matches
        start = find(b"<", pos)
        if start < 0:
            return (END if eof else MORE), size, marker, last_body_end
        pos = start
        nxt = body[pos + 1 : pos + 2]
        if not nxt and not eof:
            return MORE, start, marker, last_body_end
        if nxt == b"!":
            if size - pos < len(MARKER) and not eof and MARKER.startswith(body[pos:]):
                return MORE, start, marker, last_body_end
            if body.startswith(b"<!--", pos):
                if body.startswith(MARKER, pos):
                    if marker is None:  # read on: a block before the head's end still wins
                        marker = InsertionPoint(pos, pos + len(MARKER), "marker")
                    pos += len(MARKER)
                    continue
                m = _COMMENT_CLOSE.match(body, pos + 4)
                if m is None:
                    return (NONE if eof else MORE), start, marker, last_body_end
                pos = m.end()
                continue
            pos = find(b">", pos)  # doctype, CDATA, bogus comment
        elif nxt == b"/":
            m = _END_TAG.match(body, pos)
            if m is None:  # "</>", "</3 …>" (skipped), or a tag cut short
                third = body[pos + 2 : pos + 3]
                pos = -1 if third.isalpha() or not third else find(b">", pos)
                if pos < 0:
                    return (NONE if eof else MORE), start, marker, last_body_end
                pos += 1
                continue
            name = bytes(m.group(1)).lower()
            if name == b"head" and head:
                return POINT, pos, marker or InsertionPoint(pos, pos, "head"), last_body_end
            if name == b"body":
                last_body_end = pos
            pos = m.end()
            continue
        elif nxt == b"?":
            pos = find(b">", pos)
        elif nxt.isalpha():
            m = _START_TAG.match(body, pos)
            if m is None:  # cut short by the end of the page
                return (NONE if eof else MORE), start, marker, last_body_end
            name = bytes(m.group(1)).lower()
            pos = m.end()
            if name in _RAW:
                close = _CLOSERS[name].search(body, pos)
                end = None if close is None else _END_TAG.match(body, close.start())
                pos = -1 if end is None else end.end()
            elif name == b"script":
                if _is_block(m.group(2)):
                    return NONE, start, None, last_body_end
                pos = _script_end(body, pos)
            elif name == b"body":
                if head:
                    return END, start, marker, last_body_end
            elif name == b"plaintext":  # the rest of the page is text
                return (NONE if marker is None else POINT), start, marker, last_body_end
            if pos < 0:
                return (NONE if eof else MORE), start, marker, last_body_end
            continue
        else:  # a lone "<" is text
            pos += 1
            continue
        if pos < 0:  # "<!" or "<?" without ">"
            return (NONE if eof else MORE), start, marker, last_body_end
        pos += 1


_EXACT_FALLBACK_LIMIT = 32 * 1024
_BODY_END_TAG = re.compile(rb"</(?i:body)(?=[\t\n\f\r />])")
_TAIL_WINDOW = 8192
_NEAR = 64 * 1024
_RAW_CHECKED = (b"script", b"style", b"textarea", b"title", b"noscript", b"xmp")


def _last_candidate(body: bytes | bytearray, end: int) -> int:
    """Start of the last ``</body`` before ``end``, scanning back in growing windows."""
    window = _TAIL_WINDOW
    while end > 0:
        start = max(0, end - window)
        last = -1
        for m in _BODY_END_TAG.finditer(body, start, end):
            last = m.start()
        if last >= 0:
            return last
        end = start + 6 if start else 0  # a tag straddling ``start`` lies in the next window
        window *= 2
    return -1


def _plausibly_data(body: bytes | bytearray, pos: int) -> bool:
    """Whether ``pos`` is outside comments, common raw-text elements and tags, judged from
    the nearest openers and closers before it."""
    near = max(0, pos - _NEAR)  # comments and raw text longer than this are not judged
    if body.rfind(b"<!--", near, pos) > body.rfind(b"-->", near, pos):
        return False
    if body.rfind(b"<", near, pos) > body.rfind(b">", near, pos):
        return False
    for name in _RAW_CHECKED:
        for spelled in (name, name.upper()):
            opened = body.rfind(b"<" + spelled, near, pos)
            if opened >= 0 and opened > body.rfind(b"</" + spelled, near, pos):
                return False
    return True


def _last_body_end_estimate(body: bytes | bytearray) -> InsertionPoint | None:
    """A large page without a head: the last ``</body>`` that is plausibly an end tag
    (tokenizing a large body costs too much; pages without a head are rare)."""
    end = len(body)
    while True:
        pos = _last_candidate(body, end)
        if pos < 0:
            return None
        if _plausibly_data(body, pos):
            return InsertionPoint(pos, pos, "body")
        end = pos


def find_insertion_point(body: bytes) -> InsertionPoint | None:
    """Where the snippet goes in a complete HTML body, or ``None``.

    The page is read as the browser's tokenizer reads it, from the start and only as far as
    needed: the snippet replaces the marker comment or goes before the ``</head>`` end tag,
    whichever comes first (a ``</head>`` counts only before ``<body>``); in a page without
    either, the first marker anywhere, else before the last ``</body>`` end tag. ``None``
    when there is no such place, or when a data block (a ``<script>`` whose ``id`` is
    ``embedgate-token``, however quoted or ordered) comes before it. Text, comments,
    attribute values and raw-text elements never count.
    """
    status, pos, point, last = _scan(body, 0, head=True)
    if status != END:
        return point
    return _fallback(body, pos, last, point)


def _fallback(
    body: bytes | bytearray, pos: int, last: int = -1, marker: InsertionPoint | None = None
) -> InsertionPoint | None:
    """A page without a head end before ``<body>``, read on from ``pos`` (where the head scan
    stopped, in the data state; ``last`` is the last ``</body>`` and ``marker`` the marker it
    met): a data block anywhere leaves it alone; else the first marker, else the last
    ``</body>``."""
    if _last_candidate(body, len(body)) < pos and body.find(b"embedgate", pos) < 0:
        if marker is not None:
            return marker
        return None if last < 0 else InsertionPoint(last, last, "body")
    if len(body) - pos > _EXACT_FALLBACK_LIMIT:
        return marker or _last_body_end_estimate(body)
    status, _, point, later = _scan(body, pos, head=False, marker=marker)
    if status != END or point is not None:
        return point
    last = max(last, later)
    return InsertionPoint(last, last, "body") if last >= 0 else None
