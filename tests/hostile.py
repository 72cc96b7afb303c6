"""Classes of hostile input, defined once and thrown at every parser that meets them.

Each class is a fixed list of representatives (one per way the class goes wrong, so a failure
names its case) and a hypothesis strategy that draws from the whole class.
"""

from __future__ import annotations

from hypothesis import strategies as st

# --- integers that are not ASCII decimal digits ---------------------------------------------------
#
# str.isdigit() or str.isnumeric() is true for the first twelve; int() reads some of them (digits of
# other scripts) and raises on others (superscripts, circled digits), and it also takes spaces,
# signs and underscores: a parser built on either crashes or accepts what no spec allows.
NOT_ASCII_INTEGERS = [
    "\u00b2",  # superscript two: isdigit(), int() raises
    "3\u00b2",  # an ASCII digit and a superscript
    "\u00b3\u2070\u2070",  # superscript 300
    "\u2460",  # circled one: isdigit(), int() raises
    "\u0661\u0662",  # Arabic-Indic 12: int() reads 12
    "\u0663\u0660\u0660",  # Arabic-Indic 300
    "\uff13\uff10\uff10",  # fullwidth 300: int() reads 300
    "\U0001d7d1\U0001d7ce\U0001d7ce",  # mathematical bold 300
    "\u0969\u0966\u0966",  # Devanagari 300
    "\u216b",  # Roman numeral twelve (Nl): isnumeric()
    "\u00bd",  # vulgar fraction one half (No): isnumeric()
    "\u4e09",  # CJK three (Lo): isnumeric()
    " 300",  # int() strips whitespace
    "300\n",
    "+300",  # int() takes a sign
    "-0",
    "3_00",  # int() takes underscores
]

#: ASCII digits, too many of them: int() refuses more than 4,300 digits with a ValueError.
HUGE_INTEGER = "9" * 5000

_ASCII_DIGITS = st.text(alphabet="0123456789", max_size=3)
_NUMERIC_NOT_ASCII = st.characters(
    categories=("Nd", "Nl", "No"), exclude_characters="0123456789"
) | st.sampled_from("\u4e00\u4e8c\u4e09\u3007\u5341")

#: Text that ``str.isdigit()``/``str.isnumeric()``/``int()`` may take for a number, but that is not
#: one or more ASCII decimal digits.
not_ascii_integers = st.one_of(
    st.tuples(_ASCII_DIGITS, _NUMERIC_NOT_ASCII, _ASCII_DIGITS).map("".join),
    st.tuples(st.sampled_from([" ", "\t", "\n", "+", "-"]), _ASCII_DIGITS).map("".join),
    st.tuples(_ASCII_DIGITS, st.sampled_from([" ", "\n", "_", "."])).map("".join),
    st.sampled_from(NOT_ASCII_INTEGERS),
)


# --- time claims that are no time -----------------------------------------------------------------
#
# RFC 7519 §2 NumericDate is a JSON number of seconds. Python's json reads NaN and Infinity, and
# True is an int: each compares in ways no time does (NaN never expires). Strings, huge integers
# (float() overflows on 10**400) and dates past the year 9999 are no NumericDate either.
NOT_TIMES: list[object] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
    None,
    "1795262400",
    10**400,
    1e300,
    253_402_300_800,  # 10000-01-01T00:00:00Z
    -1,
    [1795262400],
    {"t": 1795262400},
]
TIME_CLAIMS = ["exp", "iat", "nbf", "auth_time"]
