"""A small case-insensitive header list, ASGI style: ``(bytes name, bytes value)`` pairs.

Order and duplicates are kept (``Set-Cookie`` may repeat). Names compare case-insensitively;
names written by :meth:`Headers.set` / :meth:`Headers.add` are lower-cased, as ASGI requires.
WSGI's ``list[tuple[str, str]]`` converts through latin-1 (PEP 3333).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TypeAlias

__all__ = ["Headers", "HeadersLike", "parse_content_type"]


def _name(name: str | bytes) -> bytes:
    return (name.encode("latin-1") if isinstance(name, str) else name).lower()


def _value(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


class Headers:
    """A mutable, ordered, case-insensitive list of raw header pairs."""

    __slots__ = ("_items",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._items: list[tuple[bytes, bytes]] = [(bytes(n), bytes(v)) for n, v in raw]

    @classmethod
    def coerce(cls, headers: Headers | Iterable[tuple[bytes, bytes]]) -> Headers:
        """Return ``headers`` itself if it is a :class:`Headers`, else a new one over the pairs."""
        return headers if isinstance(headers, Headers) else cls(headers)

    @classmethod
    def from_wsgi(cls, items: Iterable[tuple[str, str]]) -> Headers:
        """Build from WSGI ``response_headers`` (native strings, latin-1)."""
        return cls((n.encode("latin-1"), v.encode("latin-1")) for n, v in items)

    def to_wsgi(self) -> list[tuple[str, str]]:
        """Return WSGI ``response_headers`` (native strings, latin-1)."""
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._items]

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """A copy of the pairs, suitable for an ASGI ``http.response.start`` message."""
        return list(self._items)

    def get(self, name: str | bytes, default: bytes | None = None) -> bytes | None:
        """The first value of ``name``, or ``default``."""
        key = _name(name)
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_str(self, name: str | bytes, default: str | None = None) -> str | None:
        """The first value of ``name`` decoded as latin-1, or ``default``."""
        value = self.get(name)
        return default if value is None else value.decode("latin-1")

    def get_all(self, name: str | bytes) -> list[bytes]:
        """Every value of ``name``, in order."""
        key = _name(name)
        return [v for n, v in self._items if n.lower() == key]

    def set(self, name: str | bytes, value: str | bytes) -> None:
        """Replace every ``name`` header by one (at the first one's position, else appended)."""
        key = _name(name)
        new = (key, _value(value))
        out: list[tuple[bytes, bytes]] = []
        placed = False
        for item in self._items:
            if item[0].lower() == key:
                if not placed:
                    out.append(new)
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append(new)
        self._items = out

    def add(self, name: str | bytes, value: str | bytes) -> None:
        """Append a header, keeping any existing ones of the same name."""
        self._items.append((_name(name), _value(value)))

    def delete(self, name: str | bytes) -> None:
        """Remove every ``name`` header (no error if there is none)."""
        key = _name(name)
        self._items = [item for item in self._items if item[0].lower() != key]

    def copy(self) -> Headers:
        return Headers(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str | bytes):
            return False
        return self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # Names only: values may carry cookies or tokens.
        return f"Headers(names={[n.decode('latin-1') for n, _ in self._items]!r})"


HeadersLike: TypeAlias = Headers | Iterable[tuple[bytes, bytes]]
"""What the decision functions accept: a :class:`Headers` or raw ASGI pairs."""

# token / quoted-string grammar of RFC 9110 §5.6, kept lenient on whitespace.
_PARAM = re.compile(
    r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)\s*',
)


def parse_content_type(value: str | bytes | None) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into its lower-cased media type and its parameters.

    Parameter names are lower-cased and quoted values unquoted. ``("", {})`` for a missing
    or empty header. A tiny parser rather than :mod:`email.message`, whose
    ``get_content_type`` silently answers ``text/plain`` for malformed values.
    """
    if value is None:
        return "", {}
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    media, sep, rest = text.partition(";")
    params: dict[str, str] = {}
    if sep:
        for m in _PARAM.finditer(";" + rest):
            raw = m.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params.setdefault(m.group(1).lower(), raw)
    return media.strip().lower(), params
