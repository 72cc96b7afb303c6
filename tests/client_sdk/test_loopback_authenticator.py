"""LoopbackBrowserAuthenticator (RFC 8252 §7.3): 127.0.0.1, a free port, a state-checked wait."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from client_sdk import AuthenticationTimeout, LoginRequest, LoopbackBrowserAuthenticator
from client_sdk.protocol import PendingAuthorization, Requirement

ISSUER = "https://op.example"


def login_request(configured: str | None = None) -> LoginRequest:
    def build(redirect_uri: str) -> tuple[str, PendingAuthorization]:
        pending = PendingAuthorization(
            ISSUER, "bank-cli", redirect_uri, "openid", "s-1", "n-1", "v", Requirement()
        )
        query = urlencode({"redirect_uri": redirect_uri, "state": "s-1"})
        return f"{ISSUER}/authorize?{query}", pending

    return LoginRequest(
        issuer=ISSUER,
        requirement=Requirement(),
        redirect_uri=configured,
        build=build,
        emit=lambda event: None,
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Browser:
    """Plays the user's browser: records the URL it was opened at, then follows the redirect."""

    def __init__(self, *queries: dict[str, str]) -> None:
        self.queries = queries
        self.opened: list[str] = []
        self.answers: list[tuple[int, str]] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        for query in self.queries:
            self.answers.append(get(f"{redirect_uri}?{urlencode(query)}"))
        return True


def test_receives_the_code_on_a_loopback_port() -> None:
    browser = Browser({"code": "c-1", "state": "s-1", "iss": ISSUER})
    callback = LoopbackBrowserAuthenticator(open_browser=browser, timeout=10).authenticate(
        login_request()
    )
    redirect_uri = parse_qs(urlsplit(browser.opened[0]).query)["redirect_uri"][0]
    parts = urlsplit(redirect_uri)
    assert (parts.scheme, parts.hostname, parts.path) == ("http", "127.0.0.1", "/callback")
    assert parts.port is not None
    assert parts.port > 0
    assert callback == f"{redirect_uri}?code=c-1&state=s-1&iss=https%3A%2F%2Fop.example"
    assert browser.answers[0][0] == 200
    assert "Signed in" in browser.answers[0][1]


def test_a_response_with_another_state_does_not_end_the_wait() -> None:
    browser = Browser({"code": "forged", "state": "other"}, {"code": "c-1", "state": "s-1"})
    callback = LoopbackBrowserAuthenticator(open_browser=browser, timeout=10).authenticate(
        login_request()
    )
    assert parse_qs(urlsplit(callback).query)["code"] == ["c-1"]
    assert [status for status, _ in browser.answers] == [400, 200]


def test_uses_the_path_of_the_configured_redirect_uri() -> None:
    browser = Browser({"code": "c-1", "state": "s-1"})
    LoopbackBrowserAuthenticator(open_browser=browser, timeout=10).authenticate(
        login_request("http://127.0.0.1:8765/oauth/done")
    )
    redirect_uri = parse_qs(urlsplit(browser.opened[0]).query)["redirect_uri"][0]
    assert urlsplit(redirect_uri).path == "/oauth/done"


def test_an_error_response_is_returned_for_the_protocol_to_judge() -> None:
    browser = Browser({"error": "access_denied", "state": "s-1"})
    callback = LoopbackBrowserAuthenticator(open_browser=browser, timeout=10).authenticate(
        login_request()
    )
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    assert "did not complete" in browser.answers[0][1]


def test_times_out_when_the_browser_never_comes_back() -> None:
    opened: list[str] = []
    authenticator = LoopbackBrowserAuthenticator(open_browser=opened.append, timeout=0)
    with pytest.raises(AuthenticationTimeout, match="within 0 s"):
        authenticator.authenticate(login_request())
    assert len(opened) == 1
    # The port is closed again (RFC 8252 §8.3: open it only for the authorization).
    port = urlsplit(parse_qs(urlsplit(opened[0]).query)["redirect_uri"][0]).port
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/callback", timeout=2)
