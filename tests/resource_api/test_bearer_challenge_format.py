"""WWW-Authenticate values (RFC 6750 §3, RFC 9470 §3, RFC 9110 §11.2): quoted, escaped,
parseable."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.challenges import parse_www_authenticate
from resource_api.challenges import bearer_challenge, quote, sanitize_description


def test_no_credentials_is_a_bare_bearer_challenge() -> None:
    assert bearer_challenge() == "Bearer"
    assert bearer_challenge(realm="bank") == 'Bearer realm="bank"'


def test_step_up_challenge_matches_the_rfc9470_example_shape() -> None:
    value = bearer_challenge(
        error="insufficient_user_authentication",
        error_description="A different authentication level is required",
        acr_values=["myACR", "other"],
        max_age=5,
    )
    assert value == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", '
        'acr_values="myACR other", max_age=5'
    )
    [challenge] = parse_www_authenticate(value)
    assert challenge.params == {
        "error": "insufficient_user_authentication",
        "error_description": "A different authentication level is required",
        "acr_values": "myACR other",
        "max_age": "5",
    }


def test_quote_escapes_backslash_and_quote_and_drops_controls() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("line\r\nbreak\x00é") == '"line??break??"'


def test_descriptions_keep_to_the_rfc6750_character_set() -> None:
    text = sanitize_description('say "hi" \\ there\n\u2014')
    assert re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]*", text)
    assert text == "say 'hi' / there??"


@pytest.mark.parametrize("bad", [-1, True, "5"])
def test_max_age_must_be_a_non_negative_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="max_age"):
        bearer_challenge(max_age=bad)  # type: ignore[arg-type]


@given(
    realm=st.text(max_size=40),
    description=st.text(max_size=80),
    scopes=st.lists(st.from_regex(r"[\x21\x23-\x5b\x5d-\x7e]{1,12}", fullmatch=True), max_size=3),
)
def test_any_input_gives_one_parseable_ascii_header(
    realm: str, description: str, scopes: list[str]
) -> None:
    value = bearer_challenge(
        realm=realm, error="invalid_token", error_description=description, scope=scopes
    )
    assert value.isascii()
    assert "\r" not in value
    assert "\n" not in value
    [challenge] = parse_www_authenticate(value)
    assert challenge.scheme == "bearer"
    assert challenge.params["error"] == "invalid_token"
    assert challenge.params["realm"] == re.sub(r"[^\t\x20-\x7e]", "?", realm)
    assert challenge.params["error_description"] == sanitize_description(description)
    if scopes:
        assert challenge.params["scope"] == " ".join(scopes)
