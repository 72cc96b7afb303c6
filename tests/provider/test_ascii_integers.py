"""Integers at the provider are ASCII decimal digits (RFC 5234 ``DIGIT``), nothing else.

OIDC Core §3.1.2.1 ``max_age`` is the provider's one integer parameter. Digits of other scripts,
superscripts, circled digits, signs, spaces and underscores are an ``invalid_request`` sent back to
the client (RFC 6749 §4.1.2.1) — never a ``500``, never read as a number.
"""

from __future__ import annotations

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings

from provider.authorization_request import parse_authn_request
from provider.models import Interaction

from ..hostile import HUGE_INTEGER, NOT_ASCII_INTEGERS, not_ascii_integers
from .flow import CLI_REDIRECT, Browser, Client, query_of

ISSUER = "http://127.0.0.1:9000"


@pytest.fixture
def cli(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


def assert_invalid_max_age(cli: Client, max_age: str) -> None:
    response = cli.authorize(max_age=max_age)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert response.location.startswith(CLI_REDIRECT + "?")
    q = query_of(response.location)
    assert (q["error"], q["state"], q["iss"]) == ("invalid_request", cli.state, ISSUER)
    assert q["error_description"] == "max_age must be a non-negative integer in ASCII digits"


@pytest.mark.parametrize("max_age", [*NOT_ASCII_INTEGERS, HUGE_INTEGER, "99999999999"])
def test_max_age_that_is_not_ascii_digits_is_invalid_request(cli: Client, max_age: str) -> None:
    assert_invalid_max_age(cli, max_age)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_age=not_ascii_integers)
def test_any_max_age_lookalike_is_invalid_request(cli: Client, max_age: str) -> None:
    assert_invalid_max_age(cli, max_age)


@pytest.mark.parametrize(
    ("max_age", "seconds"), [("0", 0), ("300", 300), ("00300", 300), ("", None)]
)
def test_max_age_in_ascii_digits_is_read(cli: Client, max_age: str, seconds: int | None) -> None:
    # RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted".
    response = cli.authorize(max_age=max_age)
    assert response.status_code == 303
    assert response.location.startswith("/interaction/")
    op = cli.browser.op
    with op.db.session() as s:
        interaction = s.get(Interaction, response.location.removeprefix("/interaction/"))
        assert interaction is not None
        saved = interaction.params
    assert parse_authn_request(saved, started_at=0).max_age == seconds
