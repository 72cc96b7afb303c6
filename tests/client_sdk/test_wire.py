"""``client_sdk.wire``: the grammars the provider, the resource API and the SDK share.

RFC 5234 ``DIGIT`` for integers, RFC 7519 §2 ``NumericDate`` for time claims, RFC 6749 §5.2 for
error text. Properties over arbitrary input, against a reference written from the grammar.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.wire import MAX_NUMERIC_DATE, ascii_digits, ascii_int, is_error_text, numeric_date
from tests.hostile import HUGE_INTEGER, NOT_ASCII_INTEGERS, not_ascii_integers

DIGITS = re.compile(r"[0-9]+")  # ASCII 0-9 only: no re.UNICODE \d


def reference_int(text: str, maximum: int) -> int | None:
    if not DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


@given(
    text=st.one_of(st.text(max_size=30), st.text("0123456789", max_size=30), not_ascii_integers),
    maximum=st.sampled_from([0, 1, 100, 65535, 9_999_999_999, 2**63 - 1]),
)
def test_ascii_int_reads_exactly_ascii_decimal_digits(text: str, maximum: int) -> None:
    assert ascii_int(text, maximum=maximum) == reference_int(text, maximum)
    assert ascii_digits(text) == bool(DIGITS.fullmatch(text))


@pytest.mark.parametrize("text", NOT_ASCII_INTEGERS)
def test_digits_of_other_scripts_and_int_syntax_are_not_integers(text: str) -> None:
    assert ascii_int(text, maximum=10**12) is None
    assert not ascii_digits(text)


def test_a_huge_digit_string_is_refused_without_calling_int_on_it() -> None:
    assert ascii_int(HUGE_INTEGER, maximum=2**63 - 1) is None
    assert ascii_int("0" * 5000 + "7", maximum=10) == 7  # leading zeros do not count
    assert ascii_int("", maximum=10) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000.5, 1_700_000_000.5),
        (MAX_NUMERIC_DATE, float(MAX_NUMERIC_DATE)),
        (MAX_NUMERIC_DATE + 1, None),
        (10**400, None),  # float() of it would raise OverflowError
        (-1, None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        (1e308, None),
        (True, None),
        (False, None),
        ("1700000000", None),
        (None, None),
        ([1_700_000_000], None),
    ],
)
def test_numeric_date(value: object, expected: float | None) -> None:
    assert numeric_date(value) == expected


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=5), st.none()))
def test_numeric_date_is_a_finite_number_in_range_or_none(value: object) -> None:
    result = numeric_date(value)
    if result is None:
        return
    assert not isinstance(value, bool | str)
    assert math.isfinite(result)
    assert 0 <= result <= MAX_NUMERIC_DATE
    assert result == value


@given(st.text(max_size=40))
def test_error_text_is_printable_ascii_without_quote_or_backslash(text: str) -> None:
    allowed = all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in text)
    assert is_error_text(text) == allowed
