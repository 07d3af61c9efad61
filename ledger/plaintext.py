"""Human names and labels that a client sends must be plain text.

A name is shown to heads, the war room and coordinators, written into logs and CSV
exports, and compared by eye. Characters that change how text is shown without being seen
themselves make a name lie: a bidi override (U+202E) shows ``"gro.hctaw"`` as
``"watch.org"``, a zero-width space makes two names that look the same differ, a control
character breaks a log line or a terminal. So names, labels and contacts refuse every
character of the Unicode general categories

- ``Cc`` control characters (U+0000–U+001F, U+007F–U+009F),
- ``Cf`` format characters: the bidi embeddings, overrides and isolates (U+202A–U+202E,
  U+2066–U+2069), zero-width characters (U+200B–U+200D, U+2060, U+FEFF), soft hyphen…,
- ``Co`` private use, ``Cs`` surrogates, ``Cn`` unassigned (as of Python's Unicode
  database),
- ``Zl`` and ``Zp``, the line and paragraph separators (a name is one line).

Everything else stays allowed, in particular the combining marks (``Mn``) that Thai and
most scripts of the region need: ``"สมชาย ใจดี"`` is a plain name.
"""

from __future__ import annotations

import unicodedata

from ledger.errors import LedgerError

__all__ = ["PLAIN_TEXT_PATTERN", "REFUSED_CATEGORIES", "InvalidText", "check_plain_text", "plain_text_problem"]

REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Co": "a private-use character",
    "Cs": "a surrogate",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


class InvalidText(LedgerError, ValueError):
    """A name, label or contact holds a character that is not plain text."""

    def __init__(self, message: str, *, path: tuple[str | int, ...] = ()):
        self.path = path
        super().__init__(message)


def plain_text_problem(text: str) -> str | None:
    """What is wrong with ``text`` as plain text (the first refused character), or ``None``.

    >>> plain_text_problem("สมชาย ใจดี") is None
    True
    >>> plain_text_problem("Civic\\u202eWatch")
    'contains U+202E RIGHT-TO-LEFT OVERRIDE (an invisible format character)'
    """
    for character in text:
        category = unicodedata.category(character)
        kind = REFUSED_CATEGORIES.get(category)
        if kind is not None:
            name = unicodedata.name(character, "")
            label = f"U+{ord(character):04X} {name}" if name else f"U+{ord(character):04X}"
            return f"contains {label} ({kind})"
    return None


def _refused_bmp_ranges() -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for point in range(0x10000):
        if unicodedata.category(chr(point)) in REFUSED_CATEGORIES and unicodedata.category(chr(point)) != "Cn":
            if ranges and ranges[-1][1] == point - 1:
                ranges[-1] = (ranges[-1][0], point)
            else:
                ranges.append((point, point))
    return ranges


PLAIN_TEXT_PATTERN = (
    "^[^"
    + "".join(f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in _refused_bmp_ranges())
    + "]*$"
)
"""For the OpenAPI document: a JSON Schema ``pattern`` refusing the assigned characters of the
refused categories in the Basic Multilingual Plane. The rule itself (``plain_text_problem``)
also refuses unassigned code points and those beyond the BMP, which a pattern cannot list."""


def check_plain_text(text: str | None, *, field: str, what: str = "names") -> str | None:
    """``text`` unchanged if it is plain text (or ``None``); else ``InvalidText`` naming the
    field and the character, e.g. ``name: contains U+202E RIGHT-TO-LEFT OVERRIDE (…);
    names must be plain text``."""
    if text is None:
        return None
    problem = plain_text_problem(text)
    if problem is not None:
        raise InvalidText(f"{field}: {problem}; {what} must be plain text", path=(field,))
    return text
