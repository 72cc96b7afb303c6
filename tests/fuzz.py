"""What every fuzz test shares: the budget, the hostile values, requests, and the checks.

The budget: each fuzz test names its number of examples for CI (derandomized, so a run tries the
same inputs every time and a red build is a real regression). ``--hypothesis-profile=fuzz``
multiplies every budget by ten and draws fresh random inputs — for hunting, not for CI.

The checks after every request (:func:`check`): no ``5xx``; nothing logged at ``ERROR`` and no
traceback in the log; a ``Location`` either stays on the server (a path) or starts with a
redirect URI registered for a client (a loopback one with any port, RFC 8252 §7.3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from provider.clients import redirect_target

from .hostile import HUGE_INTEGER, NOT_ASCII_INTEGERS, not_ascii_integers

#: The profile that multiplies fuzz budgets, registered in ``tests/conftest.py`` with this many
#: examples (for the other property tests, ten times Hypothesis' default too).
DEEP_PROFILE = "fuzz"
DEEP_EXAMPLES = 1000
DEEP_FACTOR = 10


def fuzz_settings(examples: int) -> settings:
    """``examples`` for CI; ``examples * 10``, random, under ``--hypothesis-profile=fuzz``."""
    deep = settings.default.max_examples >= DEEP_EXAMPLES
    return settings(
        max_examples=examples * DEEP_FACTOR if deep else examples,
        derandomize=not deep,
        database=settings.default.database if deep else None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# --- values ------------------------------------------------------------------------------------

#: Any Unicode scalar value: control characters, NUL, bidi overrides, non-characters, astral planes.
#: (Surrogates cannot be sent: a request is UTF-8.)
ANY_CHAR = st.characters(codec="utf-8", exclude_categories=["Cs"])

#: Short values that have broken parsers somewhere: quotes, escapes, encodings, CR/LF, numbers
#: that are not numbers, empty and whitespace-only values.
SPECIAL = [
    "", " ", "\t", "\r\n", "\x00", "\x7f", '"', "\\", "'", "%", "%00", "%0d%0a", "%zz", "+",
    "\u202e", "\ufeff", "\uffff", "\U0010ffff", "é", "ß", "İ", "ﬃ", "\U0001d7ce",
    "null", "true", "[]", "{}", "NaN", "-Infinity", "1e400", "-1", "0", "00", "9" * 30,
    '{"a":', "a" * 2048, "=", "&", "#", "?", "/", "..", "../..", "http://evil.example/",
    *NOT_ASCII_INTEGERS, HUGE_INTEGER[:1000],
]  # fmt: skip

#: Characters that each broke, or could break, some parser or header: quote, backslash, CR, LF,
#: NUL and other controls, DEL, non-ASCII, a bidi override, a byte-order mark.
BREAKERS = '"\\\r\n\x00\x01\x1f\x7f\u00e9\u202e\ufeff%&=+#?/ '

hostile_text = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.text(st.sampled_from(BREAKERS) | ANY_CHAR, min_size=1, max_size=8),
    st.sampled_from(SPECIAL),
    not_ascii_integers,
)

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "X"]


@st.composite
def parameters(
    draw: st.DrawFn, base: dict[str, str], pools: dict[str, list[str]]
) -> list[tuple[str, str]]:
    """Parameters for an endpoint: a valid request (``base``) in which each parameter, on its
    own, is sometimes dropped, set to another value a client might send (from ``pools``) or to a
    hostile one; sometimes an unknown parameter more; sometimes one repeated. Each parameter is
    mutated independently, so every one of them meets hostile values in a few dozen examples while
    the others stay valid enough to reach the code behind the first check."""
    params: dict[str, str] = {}
    for name in sorted(set(base) | set(pools)):
        # 0 (what Hypothesis shrinks towards) keeps the valid value: a failure shrinks to the
        # fewest changed parameters.
        choice = draw(st.integers(0, 9))
        if choice <= 5:
            if name in base:
                params[name] = base[name]
        elif choice <= 7:
            params[name] = draw(hostile_text)
        elif choice == 8 and pools.get(name):
            params[name] = draw(st.sampled_from(pools[name]))
        # 9: dropped
    for name, value in draw(st.lists(st.tuples(hostile_text, hostile_text), max_size=2)):
        params[name] = value
    pairs = list(params.items())
    if pairs and draw(st.integers(0, 4)) == 0:  # RFC 6749 §3.1: a repeated parameter
        pairs += draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=2))
    return pairs


@st.composite
def requests(
    draw: st.DrawFn,
    base: dict[str, str],
    pools: dict[str, list[str]],
    *,
    methods: tuple[str, ...] = ("GET", "POST"),
    fixed: dict[str, str] | None = None,
    encodings: tuple[str, ...] = ("form", "query", "form", "json", "bytes"),
) -> dict[str, Any]:
    """Keyword arguments for ``FlaskClient.open``: a method (usually an expected one, sometimes
    any), and the parameters in the query, a form body, a JSON body or raw bytes. ``fixed``:
    parameters left as they are three times out of four (a CSRF token, so that the fuzz gets
    past the CSRF check). ``encodings``: where the parameters go, drawn from this list."""
    odd = draw(st.integers(0, 7)) == 7
    method = draw(st.sampled_from(METHODS if odd else methods))
    pairs = draw(parameters(base, pools))
    if fixed and draw(st.integers(0, 3)) > 0:
        pairs = [(k, v) for k, v in pairs if k not in fixed] + list(fixed.items())
    where = draw(st.sampled_from(encodings))
    kwargs: dict[str, Any] = {"method": method}
    if method == "GET" or where == "query":
        kwargs["query_string"] = urlencode(pairs)
    elif where == "form":
        kwargs["data"] = urlencode(pairs)
        kwargs["content_type"] = "application/x-www-form-urlencoded"
    elif where == "json":
        kwargs["json"] = dict(pairs)
    else:
        kwargs["data"] = draw(st.binary(max_size=200))
        kwargs["content_type"] = draw(st.sampled_from(
            ["application/x-www-form-urlencoded", "application/json", "text/plain",
             "multipart/form-data; boundary=x", "application/x-www-form-urlencoded; charset=latin1"]
        ))  # fmt: skip
    return kwargs


# --- checks ------------------------------------------------------------------------------------


def check(
    response: TestResponse,
    caplog: pytest.LogCaptureFixture,
    registered: Iterable[str],
    case: object,
) -> None:
    """No 5xx, no error or traceback in the log, and no redirect anywhere but home or a
    registered redirect URI."""
    assert response.status_code < 500, (case, response.status_code, response.get_data()[:300])
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, (case, [caplog.text])
    location = response.headers.get("Location")
    if location is not None:
        assert location_is_allowed(location, registered), (case, location)


def location_is_allowed(location: str, registered: Iterable[str]) -> bool:
    """A path on this server, or a registered URI (a loopback one with any port) followed by
    nothing but the response's query."""
    if location.startswith("/") and not location.startswith("//"):
        return all(c not in location for c in "\r\n\x00\\")
    base = location.split("?", 1)[0]
    return any(redirect_target(uri, base) == base for uri in registered)


def run(caplog: pytest.LogCaptureFixture, send: Callable[[], TestResponse]) -> TestResponse:
    """Send one request with a fresh log capture, so each example is checked on its own log."""
    caplog.clear()
    return send()
