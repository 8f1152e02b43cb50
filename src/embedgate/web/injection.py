"""Whether and where to inject the token snippet into an HTML response, sans I/O.

Driving it from a shell (ASGI shown; WSGI is the same loop over the app's iterable)::

    if should_inject(method, status, headers):
        inj = HtmlInjector(charset=content_type_charset(headers))
        # for each body chunk:
        out = inj.feed(chunk)
        if inj.passthrough:              # gave up: send the ORIGINAL start once, then `out`
            ...
        elif inj.ready:                  # the point is known: no need to wait for the end
            body = inj.release(snippet)  # then send start (rewritten headers) and `body`;
            ...                          # later chunks: feed() returns them as they are
        # after the last chunk (more_body False / iterable exhausted):
        if inj.passthrough:
            tail = inj.finish()          # b""
        else:
            snippet = render_token_block(...) if inj.insertion_point() else None
            body = inj.finish(snippet)
            if inj.injected:
                headers = response_headers_after_injection(headers, len(body))
            # send start with `headers`, then `body`

The injector holds the body back only until the insertion point is known: for a page with a
head, up to its ``</head>`` (:attr:`HtmlInjector.ready`: the shell then renders the snippet,
sends the headers and :meth:`HtmlInjector.release` returns the bytes so far, and the rest of
the stream passes as it comes). A page without a head end is held to its end. Past ``limit``
bytes it gives up: everything buffered is returned unchanged, in order, and later chunks pass
straight through.

Only ASCII-compatible charsets are handled, by searching the raw bytes: no decoding, so the
page's bytes round-trip exactly. UTF-16/UTF-32 (declared or BOM-marked), stateful ISO-2022
encodings, UTF-7, EBCDIC and charsets Python does not know are declined: the page is served
untouched and the shell may log it.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

from .headers import Headers, HeadersLike, parse_content_type
from .htmlscan import END, MORE, InsertionPoint, _fallback, _scan, find_insertion_point
from .htmlscan import MARKER as _MARKER

__all__ = [
    "DEFAULT_BUFFER_LIMIT",
    "MARKER",
    "STALE_HEADERS",
    "HtmlInjector",
    "InsertionPoint",
    "content_type_charset",
    "find_insertion_point",
    "inject",
    "is_ascii_compatible",
    "response_headers_after_injection",
    "should_inject",
]

DEFAULT_BUFFER_LIMIT = 1024 * 1024
"""1 MiB: well above server-rendered pages (typically < 200 KB), small enough to buffer."""

MARKER = _MARKER
"""Where the app wants the snippet; replaced by it. Matched exactly (case and spacing)."""

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_NON_INJECTABLE_STATUS = frozenset({204, 205, 206})
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # also prefixes of the UTF-32 BOMs
_PROBE = bytes(range(0x20, 0x7F)) + b"\t\n\r"


@lru_cache(maxsize=64)
def is_ascii_compatible(charset: str) -> bool:
    """Whether ASCII text means the same bytes in ``charset`` (so byte search is sound)."""
    try:
        info = codecs.lookup(charset)
        if info.name.startswith(("iso2022", "hz")):  # stateful: ASCII bytes inside escapes
            return False
        text = _PROBE.decode("ascii")
        return text.encode(info.name) == _PROBE and _PROBE.decode(info.name) == text
    except (LookupError, UnicodeError, TypeError, ValueError):
        return False


def content_type_charset(headers: HeadersLike) -> str | None:
    """The ``charset`` parameter of the response's Content-Type, if any."""
    _, params = parse_content_type(Headers.coerce(headers).get(b"content-type"))
    return params.get("charset") or None


def _tokens(values: list[bytes]) -> list[bytes]:
    return [t.strip().lower() for v in values for t in v.split(b",") if t.strip()]


def should_inject(
    method: str,
    status: int,
    headers: HeadersLike,
    *,
    limit: int | None = DEFAULT_BUFFER_LIMIT,
) -> bool:
    """Whether a response is an HTML page the snippet may be injected into.

    Requires a 2xx status other than 204/205/206, a method other than HEAD, a Content-Type of
    ``text/html`` or ``application/xhtml+xml`` in an ASCII-compatible charset, no
    Content-Encoding other than ``identity``, no Content-Range, no ``Content-Disposition:
    attachment``, no ``Cache-Control: no-transform`` and, when Content-Length is declared and
    ``limit`` is given, a length within ``limit`` (so the shell does not buffer in vain).
    """
    if method.upper() == "HEAD" or not 200 <= status < 300 or status in _NON_INJECTABLE_STATUS:
        return False
    h = Headers.coerce(headers)
    media, params = parse_content_type(h.get(b"content-type"))
    if media not in HTML_TYPES:  # also excludes text/event-stream and missing types
        return False
    charset = params.get("charset")
    if charset and not is_ascii_compatible(charset):
        return False
    if any(t != b"identity" for t in _tokens(h.get_all(b"content-encoding"))):
        return False
    if b"content-range" in h or b"no-transform" in _tokens(h.get_all(b"cache-control")):
        return False
    disposition = h.get(b"content-disposition")
    if disposition is not None and disposition.split(b";")[0].strip().lower() == b"attachment":
        return False
    lengths = h.get_all(b"content-length")
    if lengths and limit is not None:
        try:
            if int(lengths[0]) > limit:
                return False
        except ValueError:
            return False
    return True


def _snippet_bytes(snippet: str | bytes) -> bytes:
    if not snippet.isascii():
        raise ValueError("the snippet must be ASCII (render it with render_token_block)")
    return snippet.encode("ascii") if isinstance(snippet, str) else bytes(snippet)


def inject(body: bytes, snippet: str | bytes, *, charset: str | None = None) -> bytes | None:
    """Return ``body`` with ``snippet`` inserted, or ``None`` when it must be left alone.

    ``None`` for a charset that is not ASCII-compatible, a UTF-16/32 byte-order mark, a page
    already injected or one without an insertion point. The snippet must be ASCII, which is the
    same bytes in every accepted charset, so it needs no re-encoding.
    """
    data = _snippet_bytes(snippet)
    if (charset and not is_ascii_compatible(charset)) or body.startswith(_UTF16_BOMS):
        return None
    point = find_insertion_point(body)
    if point is None:
        return None
    return _splice(body, point, data)


def _splice(body: bytes, point: InsertionPoint, data: bytes) -> bytes:
    view = memoryview(body)  # slicing a view does not copy the (up to 1 MiB) halves
    return b"".join((view[: point.start], data, view[point.end :]))


class HtmlInjector:
    """Incremental driver: buffer body chunks until the insertion point is known.

    :meth:`feed` returns the bytes to send now: ``b""`` while buffering. Once the point is
    known before the end of the body (``</head>`` passed, the usual case), :attr:`ready`
    turns true: the shell renders the snippet and calls :meth:`release`, which returns the
    buffered bytes with it; later chunks then pass straight through (a stream is never held
    back past its insertion point). A page whose point needs the whole body (no head) is
    injected at :meth:`finish`. Once the body has outgrown ``limit`` (or the charset or a
    data block says no) :attr:`passthrough` turns true and ``feed`` returns the whole buffer,
    then each chunk as is: the shell must send the original headers. Not thread-safe; one
    instance per response.
    """

    __slots__ = (
        "_charset",
        "_data",
        "_declined",
        "_finished",
        "_injected",
        "_limit",
        "_marker",
        "_overflowed",
        "_point",
        "_point_known",
        "_released",
        "_scan_at",
        "_scan_last",
        "_scan_state",
    )

    def __init__(self, *, charset: str | None = None, limit: int = DEFAULT_BUFFER_LIMIT) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self._charset = charset
        self._limit = limit
        self._data: bytes | bytearray = b""
        self._overflowed = False
        self._declined = bool(charset) and not is_ascii_compatible(charset or "")
        self._finished = False
        self._injected = False
        self._released = False
        self._point: InsertionPoint | None = None
        self._point_known = False
        # Where the head scan resumes, the marker it met, the last </body>; state "head"
        # while scanning the head, "rest" once the point needs the whole body.
        self._scan_at = 0
        self._scan_last = -1
        self._marker: InsertionPoint | None = None
        self._scan_state = "head"

    @property
    def passthrough(self) -> bool:
        """True once the injector has given up (overflow, unusable charset, data block)."""
        return self._overflowed or self._declined

    @property
    def overflowed(self) -> bool:
        """True once more than ``limit`` bytes were fed."""
        return self._overflowed

    @property
    def injected(self) -> bool:
        """True if the snippet went in (headers must then be rewritten)."""
        return self._injected

    @property
    def ready(self) -> bool:
        """True when the insertion point is known before the end: call :meth:`release`."""
        return self._point_known and self._point is not None and not self._released

    @property
    def released(self) -> bool:
        """True once :meth:`release` has run: later chunks pass through as fed."""
        return self._released

    @property
    def buffered(self) -> int:
        """Bytes held back so far."""
        return len(self._data)

    def feed(self, chunk: bytes) -> bytes:
        """Take the next body chunk; return the bytes to emit now (possibly ``b""``)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self.passthrough or self._released:
            return bytes(chunk)
        if not chunk:
            return b""
        data = self._data
        if not data:
            self._data = data = bytes(chunk)
        else:
            if not isinstance(data, bytearray):
                self._data = data = bytearray(data)
            data += chunk
        if len(data) > self._limit:
            self._overflowed = True
            return self._drain()
        if not self._point_known and self._scan_state == "head" and b">" in chunk:
            # Every token that decides ends with ">": no need to look before one arrives.
            self._scan_head(eof=False)
            if self._declined:
                return self._drain()
        return b""

    def _scan_head(self, *, eof: bool) -> None:
        data = self._data
        if self._scan_at == 0:
            if len(data) < 4 and not eof:  # a byte-order mark is not known yet
                return
            if data.startswith(_UTF16_BOMS):
                self._declined = True
                return
        status, pos, point, last = _scan(
            data,
            self._scan_at,
            head=True,
            eof=eof,
            marker=self._marker,
        )
        self._scan_last = max(self._scan_last, last)
        if status == MORE:
            self._scan_at, self._marker = pos, point
        elif status == END:
            self._scan_at, self._marker, self._scan_state = pos, point, "rest"
        else:
            self._point, self._point_known = point, True
            if point is None:
                self._declined = True  # a data block: the page keeps its own

    def _drain(self) -> bytes:
        out = bytes(self._data)
        self._data = b""
        return out

    def insertion_point(self) -> InsertionPoint | None:
        """Where the snippet goes into what was fed, or ``None`` if it would not.

        Known early when :attr:`ready`; otherwise call after the last chunk, to skip minting
        a token for a page that will not take it.
        """
        if self.passthrough or self._finished or self._released:
            return None
        if not self._point_known:
            if self._scan_state == "head":
                self._scan_head(eof=True)
                if self._declined:
                    return None
            if not self._point_known:
                self._point = _fallback(
                    bytes(self._data), self._scan_at, self._scan_last, self._marker
                )
                self._point_known = True
        return self._point

    def release(self, snippet: str | bytes | None) -> bytes:
        """Once :attr:`ready`: the bytes held so far, with ``snippet`` in place (unchanged
        when it is ``None``). Later chunks pass through :meth:`feed` as they come."""
        if not self.ready:
            raise RuntimeError("release() before the insertion point is known")
        point = self._point
        assert point is not None
        body = self._drain()
        self._released = True
        if snippet is None:
            return body
        self._injected = True
        return _splice(body, point, _snippet_bytes(snippet))

    def added(self, snippet: str | bytes) -> int:
        """How many bytes injecting ``snippet`` adds to the body (for a known length)."""
        point = self._point
        replaced = 0 if point is None else point.end - point.start
        return len(snippet) - replaced

    def finish(self, snippet: str | bytes | None = None) -> bytes:
        """End of body: return the remaining bytes, with ``snippet`` injected if possible.

        ``b""`` in passthrough mode or after :meth:`release` (everything was returned
        already). With ``snippet=None`` the buffered body is returned unchanged.
        """
        if self._finished:
            raise RuntimeError("finish() called twice")
        if self.passthrough or self._released:
            self._finished = True
            return b""
        data = None if snippet is None else _snippet_bytes(snippet)
        point = self.insertion_point()
        if self.passthrough:  # the last look found a data block
            self._finished = True
            return self._drain()
        body = self._drain()
        self._finished = True
        if data is None or point is None:
            return body
        self._injected = True
        return _splice(body, point, data)


# Validators and digests describe the original body; after rewriting they would lie.
STALE_HEADERS = (
    b"etag",
    b"last-modified",
    b"content-md5",
    b"digest",
    b"content-digest",
    b"repr-digest",
    b"accept-ranges",
)


def response_headers_after_injection(headers: HeadersLike, new_length: int) -> Headers:
    """A copy of ``headers`` fit for the rewritten body carrying a token.

    Content-Length set to ``new_length`` and Transfer-Encoding dropped; ETag, Last-Modified,
    body digests and Accept-Ranges dropped; ``Cache-Control: private, no-store`` (replacing
    any value, since the page now holds a credential); ``Cookie`` merged into ``Vary``
    without duplicates; every header a shared cache could obey dropped
    (:func:`~embedgate.web.cache_policy.private_headers`).
    """
    from .cache_policy import private_headers

    return Headers(private_headers(Headers.coerce(headers).raw, body_length=new_length))
