"""Values as they travel on the wire, read one way by the provider, the resource API and the SDK.

Each rule here is a grammar from a spec that more than one package parses, kept in one place so
that they cannot drift apart:

- RFC 5234 ``DIGIT`` (``%x30-39``): integers in parameters and headers are ASCII decimal digits
  only (:func:`ascii_digits`, :func:`ascii_int`).
- RFC 7519 §2 ``NumericDate``: a JSON number of seconds since the epoch, finite, within the years a
  calendar can name, never a boolean (:func:`numeric_date`).
- RFC 6749 §4.1.2.1 / §5.2 and RFC 6750 §3: ``error`` and ``error_description`` are limited to
  ``%x20-21 / %x23-5B / %x5D-7E`` (:func:`is_error_text`).

It lives in the SDK because the SDK is the one package that imports none of the others: the
provider and the resource API can import it without a cycle, and the SDK stays standalone. Not part
of the SDK's public API (``client_sdk.__all__``). Pure: standard library only.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_NUMERIC_DATE", "ascii_digits", "ascii_int", "is_error_text", "numeric_date"]

# --- integers -------------------------------------------------------------------------------------
#
# Every integer a spec puts in a parameter or a header (OIDC and RFC 9470 max_age, a TOTP code, a
# page size, a port) is made of DIGIT = %x30-39 (RFC 5234 Appendix B.1). str.isdigit() is also
# true for superscripts, circled digits and the digits of other scripts (U+00B2, U+2460, U+0661):
# int() then raises on the first two (a 500 where nothing catches it) and silently reads the third
# as 1. int() also takes " 7 ", "+7" and "1_000", and raises ValueError on more than 4,300 digits,
# so the length is bounded before int() runs.


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII decimal digits (``0``-``9``), nothing else."""
    # isascii() first: among ASCII characters, isdigit() is true for 0-9 only.
    return bool(text) and text.isascii() and text.isdigit()


def ascii_int(text: str, *, maximum: int) -> int | None:
    """The non-negative integer ``text`` spells in ASCII decimal digits, if it is at most
    ``maximum``; ``None`` for anything else (empty, a sign, a space, a non-ASCII digit, too big).

    Leading zeros are allowed (``"007"`` is 7): the grammars say "digits", not "no leading zero".
    """
    if not ascii_digits(text):
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant)
    return value if value <= maximum else None


# --- times ----------------------------------------------------------------------------------------
#
# RFC 7519 §2 NumericDate: "A JSON numeric value representing the number of seconds from
# 1970-01-01T00:00:00Z UTC until the specified UTC date/time, ignoring leap seconds." JSON has no
# NaN or Infinity, but Python's json module reads them, and True is an int in Python. A claim
# holding NaN compares false with everything, so "now >= exp" never holds and the token would never
# expire. A time before the epoch or after the year 9999 is no time a token can have been issued,
# authenticated or expire at; refusing it also keeps float() from overflowing on a huge integer.

#: 9999-12-31T23:59:59Z, the last second ``datetime`` can represent.
MAX_NUMERIC_DATE = 253_402_300_799


def numeric_date(value: object) -> float | None:
    """``value`` as seconds since the epoch, or ``None`` if it is not a NumericDate we accept: a
    JSON number (not a boolean, not a string), finite, from 0 to :data:`MAX_NUMERIC_DATE`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        # Compared as an int first: float() of a huge int raises OverflowError.
        return float(value) if 0 <= value <= MAX_NUMERIC_DATE else None
    if not math.isfinite(value) or not 0 <= value <= MAX_NUMERIC_DATE:
        return None
    return value


# --- error text -----------------------------------------------------------------------------------
#
# RFC 6749 §4.1.2.1 and §5.2: "Values for the "error_description" parameter MUST NOT include
# characters outside the set %x20-21 / %x23-5B / %x5D-7E" (printable ASCII without the double
# quote and the backslash). RFC 6750 §3 sets the same limit on the Bearer challenge's attributes.

_ERROR_TEXT = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def is_error_text(text: str) -> bool:
    """Whether ``text`` uses only the characters RFC 6749 allows in ``error_description``."""
    return _ERROR_TEXT.fullmatch(text) is not None
