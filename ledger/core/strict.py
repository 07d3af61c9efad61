"""The one strict rule for numbers that a client sends as text.

Python's ``int()`` and ``str.isdigit()`` accept far more than ASCII: Thai digits
(``"๓๑"``), superscripts (``"³¹"``), Arabic-Indic and fullwidth digits, surrounding
whitespace, ``"+"`` and ``"_"``. A key that passes such a check but is stored as sent is a
second spelling of the same number, and code further on that looks it up by its canonical
spelling fails. So every number that arrives as text (a party or candidate key in a
tally, a cursor, a token's expiry, a query parameter read by hand) is parsed here, by one
rule: ASCII digits only, in canonical form (no sign, no leading zero except "0" itself,
no whitespace), of bounded length.

The rule is part of what makes a signed record valid, so the server, the client SDK and
the auditor all use this function.
"""

from __future__ import annotations

import re

from ledger.core.errors import LedgerError

__all__ = ["ENTRY_ID_PATTERN", "InvalidNumber", "is_canonical_decimal", "parse_decimal"]

_CANONICAL = re.compile(r"(?:0|[1-9][0-9]*)", re.ASCII)

ENTRY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}", re.ASCII)
"""The id a client chooses for an entry it signs (a tally's ``submission_id``, an authority
entry's ``grant_id``): 8-64 ASCII letters, digits, ``_`` and ``-``, matched whole with
``fullmatch`` ("$" alone would let a trailing newline through)."""


class InvalidNumber(LedgerError, ValueError):
    """A number sent as text is not ASCII digits in canonical form."""


def is_canonical_decimal(text: object, *, max_digits: int = 18) -> bool:
    """True when ``text`` is a ``str`` of ASCII digits in canonical form (no sign, no
    leading zero, no whitespace) of at most ``max_digits`` digits."""
    return isinstance(text, str) and len(text) <= max_digits and _CANONICAL.fullmatch(text) is not None


def parse_decimal(text: object, *, what: str = "number", max_digits: int = 18) -> int:
    """Parse a non-negative whole number written as canonical ASCII digits.

    >>> parse_decimal("31")
    31
    >>> parse_decimal("๓๑")
    Traceback (most recent call last):
    ...
    ledger.core.strict.InvalidNumber: '๓๑' is not a number: use the ASCII digits 0-9 without a sign, spaces or leading zeros

    Raises :class:`InvalidNumber` (a ``ValueError``) naming ``what`` otherwise.
    """
    if not isinstance(text, str):
        raise InvalidNumber(f"{what} must be a number written as text, got {type(text).__name__}")
    if len(text) > max_digits:
        raise InvalidNumber(f"{what} has more than {max_digits} digits")
    if _CANONICAL.fullmatch(text) is None:
        raise InvalidNumber(f"{text!r} is not a {what}: use the ASCII digits 0-9 without a sign, spaces or leading zeros")
    return int(text)
