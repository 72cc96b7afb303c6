"""Redirect URIs match exactly but for a loopback port; a redirect goes to the registered URI.

RFC 9700 §4.1.3 (exact string matching), RFC 8252 §7.3 ("The authorization server MUST allow any
port to be specified at the time of the request for loopback IP redirect URIs"), RFC 6749 §4.1.2.1
(an invalid redirection URI: "the authorization server SHOULD inform the resource owner of the
error and MUST NOT automatically redirect the user-agent to the invalid redirection URI").

The near misses are the ones URL parsers normalise away: the scheme's case, an empty ``?`` or
``#``, spaces, tabs, CR, LF and other control characters. Each must be refused, at the error page,
even on a request that has another error to report.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from provider.clients import redirect_target

from .flow import CLI_REDIRECT, Browser, Client

REGISTERED = [CLI_REDIRECT, "http://[::1]:8765/callback", "http://127.0.0.1/cb?x=1"]

# Characters a URL parser strips, drops or folds: C0 controls, space, DEL.
_CONTROL = st.sampled_from([chr(c) for c in [*range(0x00, 0x21), 0x7F]])


def with_port(uri: str, port: str | None) -> str:
    """``uri`` with its loopback port replaced (``None``: removed)."""
    m = re.match(r"(http://(?:127\.0\.0\.1|\[::1\]))(?::[0-9]+)?", uri)
    assert m is not None
    return m[1] + (f":{port}" if port is not None else "") + uri[m.end() :]


# --- the matching rule -------------------------------------------------------------------------


@pytest.mark.parametrize("registered", REGISTERED)
@given(port=st.integers(1, 65535))
def test_any_port_of_a_loopback_uri_matches_and_is_the_target(registered: str, port: int) -> None:
    presented = with_port(registered, str(port))
    assert redirect_target(registered, presented) == presented
    assert redirect_target(registered, with_port(registered, None)) == with_port(registered, None)


NEAR_MISSES = [
    "HTTP://127.0.0.1:8765/callback",  # scheme case
    "Http://127.0.0.1:51234/callback",
    "http://127.0.0.1:8765/callback?",  # empty query
    "http://127.0.0.1:8765/callback#",  # empty fragment
    "http://127.0.0.1:8765/callback?#",
    " http://127.0.0.1:8765/callback",  # spaces
    "http://127.0.0.1:8765/callback ",
    "http://127.0.0.1:8765/call back",
    "\thttp://127.0.0.1:8765/callback",  # tab, CR, LF anywhere
    "http://127.0.0.1:8765/call\tback",
    "http://127.0.0.1:8765/callback\n",
    "http://127.0.0.1:8765/call\r\nback",
    "http://127.0.0.1:87\n65/callback",
    "\x01http://127.0.0.1:8765/callback",  # other C0 characters
    "http://127.0.0.1:8765/callback\x1f",
    "http://127.0.0.1:8765/callback\x7f",
    "http://127.0.0.1:8765/Callback",  # path case
    "http://127.0.0.1:8765/callbac%6B",  # an encoded letter is another string
    "http://127.0.0.1:8765/callback/",
    "http://127.0.0.1:8765//callback",
    "http://127.0.0.1:08765/callback",  # port: leading zero, zero, too big, not ASCII, empty
    "http://127.0.0.1:0/callback",
    "http://127.0.0.1:65536/callback",
    "http://127.0.0.1:\uff18\uff17\uff16\uff15/callback",
    "http://127.0.0.1:/callback",
    "http://127.0.0.1:8765@evil.example/callback",  # userinfo
    "http://127.0.0.1.evil.example/callback",
    "http://localhost:8765/callback",  # another host than the one registered
    "http://[::1]:8765/callback",
    "https://127.0.0.1:8765/callback",
]


@pytest.mark.parametrize("presented", NEAR_MISSES)
def test_near_misses_of_a_loopback_uri_do_not_match(presented: str) -> None:
    assert redirect_target(CLI_REDIRECT, presented) is None


@pytest.mark.parametrize("registered", REGISTERED)
@given(data=st.data(), port=st.one_of(st.none(), st.integers(1, 65535).map(str)))
def test_a_control_character_anywhere_never_matches(
    registered: str, data: st.DataObject, port: str | None
) -> None:
    uri = with_port(registered, port)
    at = data.draw(st.integers(0, len(uri)), label="at")
    presented = uri[:at] + data.draw(_CONTROL, label="char") + uri[at:]
    assert redirect_target(registered, presented) is None


@pytest.mark.parametrize("registered", REGISTERED)
@given(data=st.data())
def test_changing_the_case_of_any_letter_never_matches(
    registered: str, data: st.DataObject
) -> None:
    letters = [i for i, c in enumerate(registered) if c.isalpha()]
    at = data.draw(st.sampled_from(letters), label="at")
    presented = registered[:at] + registered[at].swapcase() + registered[at + 1 :]
    assert redirect_target(registered, presented) is None


@pytest.mark.parametrize("registered", [*REGISTERED, "https://app.example/cb"])
@given(presented=st.text(max_size=60))
def test_a_match_is_always_the_presented_text_itself(registered: str, presented: str) -> None:
    # So the authorization code is bound to exactly what was sent (RFC 6749 §4.1.3), and the
    # redirect, built from the registered URI, goes where the client asked.
    assert redirect_target(registered, presented) in (None, presented)


def test_a_non_loopback_uri_matches_only_itself() -> None:
    assert redirect_target("https://app.example/cb", "https://app.example/cb") == (
        "https://app.example/cb"
    )
    for near_miss in (
        "https://app.example:443/cb",
        "https://app.example/cb?",
        "HTTPS://app.example/cb",
    ):
        assert redirect_target("https://app.example/cb", near_miss) is None
    # A registered "http://localhost" is not a loopback IP literal: no port freedom.
    assert redirect_target("http://localhost:8765/cb", "http://localhost:9999/cb") is None


# --- at the authorization endpoint -------------------------------------------------------------


@pytest.fixture
def cli(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


def assert_error_page(response: TestResponse, case: str) -> None:
    assert (response.status_code, response.location) == (400, None), case
    assert "Unregistered redirect URI" in response.get_data(as_text=True), case


def test_a_near_miss_gets_the_error_page(cli: Client) -> None:
    # One app for every case: a loop, not a parametrisation, keeps this to one provider start.
    for presented in NEAR_MISSES:
        assert_error_page(cli.authorize(redirect_uri=presented), repr(presented))


def test_a_near_miss_gets_the_error_page_even_when_the_request_has_another_error(
    cli: Client,
) -> None:
    # The order of RFC 6749 §4.1.2.1: the redirect URI is checked before anything is sent to it.
    for presented in NEAR_MISSES:
        for error in ({"response_type": "token"}, {"max_age": "\u00b2"}, {"prompt": "none x"}):
            response = cli.authorize(redirect_uri=presented, **error)
            assert_error_page(response, f"{presented!r} {error}")


def test_the_code_goes_to_the_port_the_client_asked_for(cli: Client) -> None:
    cli.redirect_uri = "http://127.0.0.1:51234/callback"
    callback = cli.sign_in()  # asserts the Location starts with the redirect_uri
    assert cli.exchange(callback["code"]).status_code == 200


def test_an_error_goes_to_the_port_the_client_asked_for(cli: Client) -> None:
    response = cli.authorize(redirect_uri="http://127.0.0.1:51234/callback", response_type="x")
    assert response.status_code == 302
    assert response.location.startswith("http://127.0.0.1:51234/callback?error=")
