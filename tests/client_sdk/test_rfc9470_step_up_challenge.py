"""RFC 9470 §3: reading the ``insufficient_user_authentication`` challenge from WWW-Authenticate."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.challenges import Challenge, StepUpChallenge, find_step_up_challenge
from client_sdk.errors import ChallengeParseError
from tests.hostile import not_ascii_integers

# RFC 9470 §3, Figures 2 and 3, as one field line each (the RFC folds them for display only).
RFC9470_FIGURE_2 = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A different authentication level is required", '
    'acr_values="myACR"'
)
RFC9470_FIGURE_3 = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="More recent authentication is required", '
    'max_age="5"'
)


def test_rfc9470_figure_2_acr_values_challenge() -> None:
    assert find_step_up_challenge(RFC9470_FIGURE_2) == StepUpChallenge(
        scheme="bearer",
        error="insufficient_user_authentication",
        acr_values=["myACR"],
        max_age=None,
        error_description="A different authentication level is required",
        realm=None,
        scope=[],
    )


def test_rfc9470_figure_3_max_age_challenge() -> None:
    assert find_step_up_challenge(RFC9470_FIGURE_3) == StepUpChallenge(
        scheme="bearer",
        acr_values=[],
        max_age=5,
        error_description="More recent authentication is required",
    )


def test_the_challenge_our_resource_api_sends() -> None:
    header = (
        'Bearer realm="bank", error="insufficient_user_authentication", '
        'acr_values="urn:stepup:loa:2", max_age=300, scope="transfers:write accounts:read"'
    )
    assert find_step_up_challenge(header) == StepUpChallenge(
        scheme="bearer",
        acr_values=["urn:stepup:loa:2"],
        max_age=300,
        realm="bank",
        scope=["transfers:write", "accounts:read"],
    )


def test_dpop_scheme_carries_a_step_up_challenge() -> None:
    header = (
        'DPoP algs="ES256 PS256", error="insufficient_user_authentication", '
        'acr_values="urn:stepup:loa:2", max_age=60'
    )
    found = find_step_up_challenge(header)
    assert found == StepUpChallenge(scheme="dpop", acr_values=["urn:stepup:loa:2"], max_age=60)


def test_acr_values_keep_the_servers_order_of_preference() -> None:
    found = find_step_up_challenge(
        'Bearer error="insufficient_user_authentication", acr_values="urn:c  urn:a urn:b"'
    )
    assert found is not None
    assert found.acr_values == ["urn:c", "urn:a", "urn:b"]
    assert type(found.acr_values) is list


def test_acr_values_may_be_a_token() -> None:
    found = find_step_up_challenge("Bearer error=insufficient_user_authentication, acr_values=gold")
    assert found is not None
    assert found.acr_values == ["gold"]


def test_unquoted_urn_acr_value_is_malformed_because_colon_is_not_a_tchar() -> None:
    with pytest.raises(
        ChallengeParseError, match=r"after an auth-param at offset 61 \(found ':'\)"
    ):
        find_step_up_challenge(
            "Bearer error=insufficient_user_authentication, acr_values=urn:stepup:loa:2"
        )


@pytest.mark.parametrize(
    ("rendered", "seconds"),
    [
        pytest.param("max_age=300", 300, id="token"),
        pytest.param('max_age="300"', 300, id="quoted"),
        pytest.param("max_age=0", 0, id="zero"),
        pytest.param('max_age="007"', 7, id="leading_zeros"),
        pytest.param(f"max_age={2**63 - 1}", 2**63 - 1, id="largest_accepted"),
    ],
)
def test_max_age_is_read_as_a_token_or_a_quoted_string(rendered: str, seconds: int) -> None:
    found = find_step_up_challenge(f'Bearer error="insufficient_user_authentication", {rendered}')
    assert found is not None
    assert found.max_age == seconds


@pytest.mark.parametrize(
    "rendered",
    [
        pytest.param('max_age="-1"', id="negative"),
        pytest.param("max_age=-1", id="negative_token"),
        pytest.param('max_age="abc"', id="letters"),
        pytest.param('max_age=""', id="empty"),
        pytest.param("max_age=1.5", id="fraction"),
        pytest.param('max_age=" 5"', id="space_inside_quotes"),
        pytest.param("max_age=+5", id="plus_sign"),
        pytest.param('max_age="\xb2"', id="superscript_two_is_not_a_decimal_digit"),
        pytest.param("max_age=1e3", id="exponent"),
        pytest.param(f"max_age={2**63}", id="beyond_signed_64_bit"),
        pytest.param("max_age=" + "9" * 5000, id="five_thousand_digits"),
    ],
)
def test_malformed_max_age_in_a_step_up_challenge_raises(rendered: str) -> None:
    with pytest.raises(ChallengeParseError, match="max_age"):
        find_step_up_challenge(f'Bearer error="insufficient_user_authentication", {rendered}')


def test_malformed_max_age_message_says_what_is_required() -> None:
    with pytest.raises(
        ChallengeParseError,
        match=re.escape("'dpop' step-up challenge has max_age='abc'; RFC 9470 §3 requires"),
    ):
        find_step_up_challenge('DPoP error="insufficient_user_authentication", max_age="abc"')


def test_malformed_max_age_outside_a_step_up_challenge_is_not_checked() -> None:
    assert find_step_up_challenge('Bearer error="invalid_token", max_age="abc"') is None


def test_step_up_challenge_without_acr_values_or_max_age_is_still_a_step_up() -> None:
    assert find_step_up_challenge(
        'Bearer error="insufficient_user_authentication"'
    ) == StepUpChallenge(scheme="bearer", acr_values=[], max_age=None)


def test_empty_acr_values_reads_as_none_requested() -> None:
    found = find_step_up_challenge('Bearer error="insufficient_user_authentication", acr_values=""')
    assert found is not None
    assert found.acr_values == []


@pytest.mark.parametrize(
    "header",
    [
        pytest.param('Bearer error="invalid_token"', id="other_bearer_error"),
        pytest.param('Bearer realm="bank"', id="bearer_without_error"),
        pytest.param(
            'Bearer error="Insufficient_User_Authentication"', id="error_codes_are_case_sensitive"
        ),
        pytest.param(
            'Basic error="insufficient_user_authentication"', id="scheme_not_bearer_or_dpop"
        ),
        pytest.param("Bearer aW5zdWZmaWNpZW50", id="token68_bearer"),
        pytest.param('Basic realm="x", Negotiate abc=', id="no_oauth_scheme"),
    ],
)
def test_no_step_up_challenge_is_none(header: str) -> None:
    assert find_step_up_challenge(header) is None


def test_first_step_up_challenge_wins_over_later_ones_and_other_schemes() -> None:
    header = (
        'Basic realm="x", Bearer error="invalid_token", '
        'DPoP error="insufficient_user_authentication", acr_values="first", '
        'Bearer error="insufficient_user_authentication", acr_values="second"'
    )
    found = find_step_up_challenge(header)
    assert found is not None
    assert (found.scheme, found.acr_values) == ("dpop", ["first"])


def test_step_up_challenge_on_a_later_field_line_is_found() -> None:
    lines = [
        'Basic realm="x"',
        'Bearer error="insufficient_user_authentication", max_age=10',
    ]
    found = find_step_up_challenge(lines)
    assert found is not None
    assert found.max_age == 10


def test_malformed_header_raises_even_after_a_step_up_challenge() -> None:
    with pytest.raises(ChallengeParseError, match="expected an auth-scheme"):
        find_step_up_challenge('Bearer error="insufficient_user_authentication", ???')


def test_from_challenge_reads_a_challenge_built_by_hand() -> None:
    ch = Challenge(
        "dpop", {"error": "insufficient_user_authentication", "acr_values": "a b", "max_age": "1"}
    )
    assert StepUpChallenge.from_challenge(ch) == StepUpChallenge(
        scheme="dpop", acr_values=["a", "b"], max_age=1
    )


def test_from_challenge_is_none_for_another_error() -> None:
    assert StepUpChallenge.from_challenge(Challenge("bearer", {"error": "invalid_token"})) is None


def test_step_up_challenge_is_frozen_hashable_and_copies_its_lists() -> None:
    acr = ["urn:a"]
    found = StepUpChallenge(scheme="bearer", acr_values=acr)
    acr.append("urn:b")
    assert found.acr_values == ["urn:a"]
    assert hash(found) == hash(StepUpChallenge(scheme="bearer", acr_values=["urn:other"]))
    with pytest.raises(AttributeError):
        found.max_age = 5  # type: ignore[misc]


_ACR_CHARS = "abcXYZ019:._-/#"


@given(
    scheme=st.sampled_from(["Bearer", "bearer", "DPoP", "DPOP"]),
    acr_values=st.lists(st.text(alphabet=_ACR_CHARS, min_size=1, max_size=12), max_size=4),
    max_age=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    quote_max_age=st.booleans(),
)
def test_rendered_step_up_challenge_reads_back(
    scheme: str, acr_values: list[str], max_age: int | None, quote_max_age: bool
) -> None:
    parts = ['error="insufficient_user_authentication"']
    if acr_values:
        parts.append('acr_values="' + " ".join(acr_values) + '"')
    if max_age is not None:
        parts.append(f'max_age="{max_age}"' if quote_max_age else f"max_age={max_age}")
    header = 'Basic realm="x", ' + scheme + " " + ", ".join(parts)
    assert find_step_up_challenge(header) == StepUpChallenge(
        scheme=scheme.lower(), acr_values=acr_values, max_age=max_age
    )


@given(st.text(alphabet=' \t,="\\-0123456789abc_ ', max_size=30))
def test_arbitrary_max_age_text_is_an_integer_or_a_parse_error(raw: str) -> None:
    quoted = raw.replace("\\", "\\\\").replace('"', '\\"')
    header = f'Bearer error="insufficient_user_authentication", max_age="{quoted}"'
    try:
        found = find_step_up_challenge(header)
    except ChallengeParseError:
        assert not (raw.isascii() and raw.isdigit() and int(raw) < 2**63)
        return
    assert found is not None
    assert found.max_age == int(raw)


@given(raw=not_ascii_integers)
def test_max_age_in_digits_of_another_script_or_int_syntax_is_a_parse_error(raw: str) -> None:
    # RFC 9470 §3: max_age "has to represent a non-negative integer" — in DIGIT (%x30-39). A
    # non-ASCII character is already refused by the quoted-string grammar (RFC 9110 §5.6.4).
    quoted = raw.replace("\\", "\\\\").replace('"', '\\"')
    with pytest.raises(ChallengeParseError):
        find_step_up_challenge(
            f'Bearer error="insufficient_user_authentication", max_age="{quoted}"'
        )
