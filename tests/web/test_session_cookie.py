"""Reading embedgate's session cookie: the byte-search path agrees with reading every
cookie-pair, whatever the header holds; verified ids are remembered but forged ones never."""

from __future__ import annotations

import itertools

from embedgate.web.session import SessionIds, read_session_cookie

NAME = "embedgate_session"
IDS = SessionIds(b"k" * 32)
GOOD = IDS.issue()
OTHER = IDS.issue()
FORGED = GOOD[:-4] + ("AAAA" if not GOOD.endswith("AAAA") else "BBBB")


def reference(header: str | None, name: str, ids: SessionIds | None) -> str | None:
    """The rule spelled out: every pair, split on ';', names compared stripped."""
    if not header:
        return None
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
            well_formed = value.isascii() and len(value) >= 32
            well_formed = well_formed and all(c.isalnum() or c in "-_" for c in value)
            if well_formed and (ids is None or SessionIds(b"k" * 32).verify(value)):
                return value
    return None


PIECES = [
    f"{NAME}={GOOD}",
    f"{NAME}={FORGED}",
    f' {NAME} = "{OTHER}" ',
    f"{NAME}=",
    f"{NAME}2={OTHER}",
    f"x{NAME}={OTHER}",
    f"other={NAME}",
    f"other={NAME}={GOOD}",
    f"\t{NAME}\t={GOOD}",
    f"{NAME} x={GOOD}",
    "theme=dark",
    "_ga=GA1.2.3",
    "",
    NAME,
]


def test_the_byte_search_agrees_with_reading_every_pair() -> None:
    for count in (1, 2, 3):
        for parts in itertools.product(PIECES, repeat=count):
            for joiner in (";", "; "):
                header = joiner.join(parts)
                for ids in (None, IDS):
                    expected = reference(header, NAME, ids)
                    assert read_session_cookie(header, NAME, ids) == expected, header


def test_a_forged_id_is_refused_after_a_good_one_was_verified() -> None:
    ids = SessionIds(b"q" * 32)
    good = ids.issue()
    assert ids.verify(good)
    assert ids.verify(good)  # remembered
    assert not ids.verify(good[:-1] + ("A" if good[-1] != "A" else "B"))
    assert not SessionIds(b"r" * 32).verify(good)  # another key never sees it
