"""RFC 9110 §11 challenge grammar: what ``parse_www_authenticate`` accepts, rejects and returns."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk import challenges
from client_sdk.challenges import Challenge, parse_www_authenticate
from client_sdk.errors import ChallengeParseError, StepUpError

# --- Exact parses ---------------------------------------------------------------------------------

ACCEPTED: list[tuple[str, str | list[str], list[Challenge]]] = [
    ("scheme_alone", "Basic", [Challenge("basic")]),
    ("two_bare_schemes", "Basic, DPoP", [Challenge("basic"), Challenge("dpop")]),
    (
        "several_challenges_in_one_value",
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        [
            Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
            Challenge("basic", {"realm": "simple"}),
        ],
    ),
    (
        "several_field_lines_form_one_list",
        ['Basic realm="a"', 'Bearer error="invalid_token", DPoP algs="ES256"'],
        [
            Challenge("basic", {"realm": "a"}),
            Challenge("bearer", {"error": "invalid_token"}),
            Challenge("dpop", {"algs": "ES256"}),
        ],
    ),
    (
        "an_empty_field_line_among_others_is_an_empty_list",
        ["", 'Basic realm="a"', "  "],
        [Challenge("basic", {"realm": "a"})],
    ),
    (
        "token68_without_padding",
        "Negotiate YIIB/wYJ+Ko",
        [Challenge("negotiate", token68="YIIB/wYJ+Ko")],
    ),
    ("token68_with_one_trailing_equals", "NTLM abc=", [Challenge("ntlm", token68="abc=")]),
    (
        "token68_with_two_trailing_equals",
        "NTLM abc-._~+/==",
        [Challenge("ntlm", token68="abc-._~+/==")],
    ),
    (
        "token68_followed_by_another_challenge",
        'Negotiate abc==, Basic realm="x"',
        [Challenge("negotiate", token68="abc=="), Challenge("basic", {"realm": "x"})],
    ),
    (
        "name_with_equals_and_no_value_is_a_token68",
        "Bearer error=",
        [Challenge("bearer", token68="error=")],
    ),
    (
        "quoted_pairs_are_unescaped",
        r'Bearer error_description="a \"quoted\" word, a \\ backslash, an \e escaped e"',
        [
            Challenge(
                "bearer", {"error_description": 'a "quoted" word, a \\ backslash, an e escaped e'}
            )
        ],
    ),
    (
        "quoted_pair_may_escape_space_and_tab",
        'Bearer x="a\\ b\\\tc"',
        [Challenge("bearer", {"x": "a b\tc"})],
    ),
    (
        "commas_and_equals_inside_quoted_strings_are_data",
        'Bearer scope="read, write", realm="x=y, Basic realm=z"',
        [Challenge("bearer", {"scope": "read, write", "realm": "x=y, Basic realm=z"})],
    ),
    (
        "empty_list_elements_are_ignored",
        ', , Bearer realm="x" , , error="e",, Basic , ,',
        [Challenge("bearer", {"realm": "x", "error": "e"}), Challenge("basic")],
    ),
    (
        "empty_elements_right_after_the_scheme_open_its_parameter_list",
        'Basic , realm="x"',
        [Challenge("basic", {"realm": "x"})],
    ),
    (
        "whitespace_around_equals_is_bad_but_allowed",
        'Bearer realm = "x",error\t=\ty , scope= "s"',
        [Challenge("bearer", {"realm": "x", "error": "y", "scope": "s"})],
    ),
    (
        "several_spaces_after_the_scheme",
        'Basic    realm="x"',
        [Challenge("basic", {"realm": "x"})],
    ),
    (
        "scheme_and_names_are_lower_cased_values_are_not",
        'BEARER Realm="MixedCase", ERROR=Invalid_Token',
        [Challenge("bearer", {"realm": "MixedCase", "error": "Invalid_Token"})],
    ),
    ("uppercase_scheme_alone", "DPOP", [Challenge("dpop")]),
    (
        "leading_and_trailing_whitespace_of_a_line_is_not_part_of_the_value",
        ' \t Basic realm="x" \t ',
        [Challenge("basic", {"realm": "x"})],
    ),
    (
        "token_values_may_use_every_tchar",
        "Bearer x=!#$%&'*+-.^_`|~09AZaz",
        [Challenge("bearer", {"x": "!#$%&'*+-.^_`|~09AZaz"})],
    ),
    (
        "single_quotes_are_token_characters",
        "Basic realm='x'",
        [Challenge("basic", {"realm": "'x'"})],
    ),
    ("empty_quoted_string", 'Basic realm=""', [Challenge("basic", {"realm": ""})]),
    (
        "obs_text_is_kept_in_quoted_strings",
        'Bearer error_description="caf\xe9 \x80\xff"',
        [Challenge("bearer", {"error_description": "caf\xe9 \x80\xff"})],
    ),
    (
        "percent_escapes_are_not_decoded",
        'Basic realm="a%20b"',
        [Challenge("basic", {"realm": "a%20b"})],
    ),
    (
        "parameter_order_is_kept",
        "Bearer z=1, a=2, m=3",
        [Challenge("bearer", {"z": "1", "a": "2", "m": "3"})],
    ),
    (
        "bare_scheme_after_a_parameter_list_is_a_new_challenge",
        "Digest qop=auth, Basic, Bearer",
        [Challenge("digest", {"qop": "auth"}), Challenge("basic"), Challenge("bearer")],
    ),
    (
        "tab_before_a_comma_after_the_scheme_is_list_whitespace",
        "Basic\t, Bearer \t, realm=x",
        [Challenge("basic"), Challenge("bearer", {"realm": "x"})],
    ),
]


@pytest.mark.parametrize(
    ("header", "expected"),
    [pytest.param(h, e, id=name) for name, h, e in ACCEPTED],
)
def test_valid_header_parses_to_exact_challenges(
    header: str | list[str], expected: list[Challenge]
) -> None:
    assert parse_www_authenticate(header) == expected


def test_a_tuple_of_field_lines_is_accepted_like_a_list() -> None:
    assert parse_www_authenticate(("Basic", "Bearer")) == [Challenge("basic"), Challenge("bearer")]


def test_params_are_a_plain_dict_and_token68_is_none_for_a_param_challenge() -> None:
    (ch,) = parse_www_authenticate('Bearer realm="x"')
    assert type(ch.params) is dict
    assert ch.token68 is None
    (t68,) = parse_www_authenticate("Negotiate abc=")
    assert t68.params == {}


# --- Rejections -----------------------------------------------------------------------------------

REJECTED: list[tuple[str, str | list[str], str]] = [
    ("empty_value", "", "no challenge"),
    ("only_whitespace", " \t ", "no challenge"),
    ("only_commas", " , ,", "no challenge"),
    ("no_field_lines", [], "no challenge"),
    ("only_empty_field_lines", ["", " "], "no challenge"),
    ("param_without_a_scheme", 'realm="x"', "expected ',' or end of value"),
    ("comma_right_after_scheme_then_param", 'Basic, realm="x"', "expected ',' or end of value"),
    ("tab_instead_of_space_after_scheme", 'Basic\trealm="x"', "expected ',' or end of value"),
    ("tab_between_space_and_param", 'Basic \trealm="x"', "spaces only"),
    ("unterminated_quoted_string", 'Bearer realm="open', "not closed"),
    ("backslash_at_the_very_end", 'Bearer realm="open\\', "not closed"),
    ("escaped_closing_quote_leaves_string_open", 'Bearer error="bad\\escape\\"', "not closed"),
    ("backslash_in_a_token_value", "Bearer realm=\\f\\o", "expected a token or quoted-string"),
    ("equals_with_no_value_before_next_param", 'Bearer realm=, error="x"', "expected ',' or end"),
    ("missing_equals", 'Bearer error"x"', "token68 or an auth-param"),
    ("missing_comma_between_params", "Bearer a=b c=d", "expected ',' or end of value after an"),
    ("two_quoted_values", 'Bearer a="b" "c"', "after an auth-param"),
    ("junk_after_a_quoted_value", 'Bearer a="b"c', "after an auth-param"),
    ("equals_inside_a_token_value", "Bearer a=b=c", "after an auth-param"),
    ("junk_after_token68", "Negotiate abc== ???", "expected ',' or end of value after token68"),
    ("two_words_after_the_scheme", "Negotiate abc def", "token68 or an auth-param"),
    ("param_after_token68", 'Negotiate abc==, realm="x"', "expected ',' or end of value"),
    ("junk_after_params", 'Bearer error="ok", ???', "expected an auth-scheme"),
    ("empty_param_name", "Bearer a=b, =c", "expected an auth-scheme"),
    ("value_starts_with_equals", "Bearer =x", "token68 or an auth-param"),
    ("scheme_starts_with_a_delimiter", '"Bearer" realm=x', "expected an auth-scheme"),
    ("scheme_with_a_delimiter_inside", "Bea@rer", "expected ',' or end of value"),
    ("repeated_param", 'Bearer realm="a", realm="b"', "'realm' occurs twice"),
    ("repeated_param_in_another_case", 'Bearer Realm="a", rEALM="b"', "'realm' occurs twice"),
    ("repeated_param_with_token_and_quoted_forms", 'Bearer e=a, e="a"', "'e' occurs twice"),
    ("nul_in_a_quoted_string", 'Bearer x="a\x00b"', "not allowed in a quoted-string"),
    ("line_feed_in_a_quoted_string", 'Bearer x="a\nb"', "not allowed in a quoted-string"),
    ("delete_in_a_quoted_string", 'Bearer x="a\x7fb"', "not allowed in a quoted-string"),
    ("control_after_backslash", 'Bearer x="a\\\x01"', "quoted-pair"),
    ("character_beyond_latin_1", 'Bearer x="\u20ac"', "not allowed in a quoted-string"),
    ("line_feed_between_challenges", "Basic\nBearer", "expected ',' or end of value"),
    ("quoted_string_does_not_continue_on_the_next_line", ['Basic realm="a', 'b"'], "not closed"),
    ("params_do_not_continue_on_the_next_line", ['Bearer realm="x"', 'error="y"'], "line 2"),
    ("comma_only_then_scheme_with_delimiter", ", (Basic", "expected an auth-scheme"),
]


@pytest.mark.parametrize(
    ("header", "message"),
    [pytest.param(h, m, id=name) for name, h, m in REJECTED],
)
def test_malformed_header_raises_challenge_parse_error_saying_what(
    header: str | list[str], message: str
) -> None:
    with pytest.raises(ChallengeParseError, match=re.escape(message)):
        parse_www_authenticate(header)


def test_error_names_the_offset_and_the_character_found() -> None:
    with pytest.raises(ChallengeParseError) as info:
        parse_www_authenticate("Bearer a=b c=d")
    assert str(info.value) == (
        "WWW-Authenticate: expected ',' or end of value after an auth-param at offset 11 "
        "(found 'c')"
    )


def test_error_offset_counts_from_the_start_of_the_line_as_given() -> None:
    with pytest.raises(ChallengeParseError, match=r"at offset 3 \(found '='\)"):
        parse_www_authenticate("\t  =Basic ")


def test_error_names_the_field_line_when_there_are_several() -> None:
    with pytest.raises(ChallengeParseError, match=r"at offset 6 of field line 2 \(found '='\)"):
        parse_www_authenticate(["Basic", "Bearer=x"])


def test_challenge_parse_error_is_a_value_error_and_a_step_up_error() -> None:
    with pytest.raises(ValueError, match="no challenge") as info:
        parse_www_authenticate("")
    assert isinstance(info.value, StepUpError)


def test_non_text_field_line_is_a_type_error_not_a_parse_error() -> None:
    with pytest.raises(TypeError, match="field line 1 is bytes"):
        parse_www_authenticate([b"Basic"])  # type: ignore[list-item]


# --- The Challenge value --------------------------------------------------------------------------


def test_challenge_is_frozen_hashable_and_does_not_share_the_callers_dict() -> None:
    params = {"realm": "x"}
    ch = Challenge("basic", params)
    params["realm"] = "changed"
    assert ch.params == {"realm": "x"}
    assert hash(ch) == hash(Challenge("basic", {"realm": "other"}))
    with pytest.raises(AttributeError):
        ch.scheme = "bearer"  # type: ignore[misc]


def test_public_names_are_pinned() -> None:
    assert sorted(challenges.__all__) == [
        "Challenge",
        "StepUpChallenge",
        "find_step_up_challenge",
        "parse_www_authenticate",
    ]


# --- Properties -----------------------------------------------------------------------------------

_TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TOKEN68_CHARS = "-._~+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Every character a quoted-string may carry once unescaped: HTAB, SP, VCHAR, obs-text.
_QUOTABLE = (
    "\t" + "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100))
)

tokens = st.text(alphabet=_TCHARS, min_size=1, max_size=8)
ows = st.sampled_from(["", " ", "\t", "  ", " \t"])


@st.composite
def separators(draw: st.DrawFn) -> str:
    """OWS "," OWS, sometimes with empty list elements in between."""
    empties = draw(st.integers(min_value=0, max_value=2))
    return draw(ows) + "," + "".join(draw(ows) + "," for _ in range(empties)) + draw(ows)


@st.composite
def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def rendered_value(draw: st.DrawFn, value: str) -> str:
    """A value as a token when it is one and the draw says so, else as a quoted-string."""
    if value and all(c in _TCHARS for c in value) and draw(st.booleans()):
        return value
    out = []
    for c in value:
        # '"' and '\' must be escaped; any other character may be.
        if c in '"\\' or draw(st.integers(min_value=0, max_value=7)) == 0:
            out.append("\\" + c)
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


@st.composite
def challenge_and_text(draw: st.DrawFn) -> tuple[Challenge, str]:
    scheme = draw(tokens).lower()
    shown_scheme = draw(random_case(scheme))
    kind = draw(st.sampled_from(["bare", "token68", "params"]))
    if kind == "bare":
        return Challenge(scheme), shown_scheme
    gap = " " * draw(st.integers(min_value=1, max_value=3))
    if kind == "token68":
        body = draw(st.text(alphabet=_TOKEN68_CHARS, min_size=1, max_size=12))
        token68 = body + "=" * draw(st.integers(min_value=0, max_value=2))
        return Challenge(scheme, token68=token68), shown_scheme + gap + token68
    names = draw(st.lists(tokens.map(str.lower), min_size=1, max_size=4, unique=True))
    params = {name: draw(st.text(alphabet=_QUOTABLE, max_size=10)) for name in names}
    parts = []
    for name, value in params.items():
        shown_name = draw(random_case(name))
        parts.append(shown_name + draw(ows) + "=" + draw(ows) + draw(rendered_value(value)))
    lead = draw(st.sampled_from(["", ", ", ",, "]))
    text = shown_scheme + gap + lead + parts[0]
    for part in parts[1:]:
        text += draw(separators()) + part
    return Challenge(scheme, params), text


@st.composite
def header_and_expected(draw: st.DrawFn) -> tuple[list[str], list[Challenge]]:
    """Several field lines, each a list of whole challenges, with the challenges they hold."""
    line_count = draw(st.integers(min_value=1, max_value=3))
    lines: list[str] = []
    expected: list[Challenge] = []
    for _ in range(line_count):
        pairs = draw(st.lists(challenge_and_text(), max_size=3))
        text = draw(st.sampled_from(["", ", ", " "]))
        for i, (ch, rendered) in enumerate(pairs):
            text += (draw(separators()) if i else "") + rendered
            expected.append(ch)
        lines.append(text + draw(st.sampled_from(["", " ", ",", " ,\t"])))
    if not expected:
        ch, rendered = draw(challenge_and_text())
        lines.append(rendered)
        expected.append(ch)
    return lines, expected


@given(header_and_expected())
def test_rendered_challenges_parse_back_to_the_same_values(
    case: tuple[list[str], list[Challenge]],
) -> None:
    lines, expected = case
    assert parse_www_authenticate(lines) == expected
    assert parse_www_authenticate(", ".join(lines)) == expected


_GRAMMAR_SOUP = ' \t,="\\/+-.~!#abcABC019\x00\n\x7f\xe9\u20ac'


@given(st.one_of(st.text(), st.text(alphabet=_GRAMMAR_SOUP, max_size=40)))
def test_arbitrary_text_either_parses_or_raises_challenge_parse_error(text: str) -> None:
    try:
        result = parse_www_authenticate(text)
    except ChallengeParseError:
        return
    assert result, "a successful parse holds at least one challenge"
    for ch in result:
        assert ch.scheme == ch.scheme.lower()
        assert all(name == name.lower() for name in ch.params)
        assert ch.token68 is None or not ch.params


@given(st.lists(st.text(alphabet=_GRAMMAR_SOUP, max_size=20), max_size=4))
def test_arbitrary_field_lines_either_parse_or_raise_challenge_parse_error(
    lines: list[str],
) -> None:
    try:
        result = parse_www_authenticate(lines)
    except ChallengeParseError:
        return
    assert len(result) >= 1
