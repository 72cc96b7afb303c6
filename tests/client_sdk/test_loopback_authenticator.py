"""LoopbackBrowserAuthenticator (RFC 8252 §7.3): 127.0.0.1, a free port, a state-checked wait."""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from client_sdk import (
    AuthenticationTimeout,
    LoginRequest,
    LoopbackBrowserAuthenticator,
    StepUpChallenge,
)
from client_sdk.protocol import PendingAuthorization, Requirement

ISSUER = "https://op.example"
PROVIDER_CSS = Path(__file__).parents[2] / "provider" / "static" / "style.css"


def login_request(
    configured: str | None = None,
    requirement: Requirement | None = None,
    challenge: StepUpChallenge | None = None,
) -> LoginRequest:
    requirement = requirement or Requirement()

    def build(redirect_uri: str) -> tuple[str, PendingAuthorization]:
        pending = PendingAuthorization(
            ISSUER, "bank-cli", redirect_uri, "openid", "s-1", "n-1", "v", requirement
        )
        query = urlencode({"redirect_uri": redirect_uri, "state": "s-1"})
        return f"{ISSUER}/authorize?{query}", pending

    return LoginRequest(
        issuer=ISSUER,
        requirement=requirement,
        redirect_uri=configured,
        build=build,
        emit=lambda event: None,
        challenge=challenge,
    )


HEADERS: list[dict[str, str]] = []


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            HEADERS.append(dict(response.headers))
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        HEADERS.append(dict(error.headers))
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
    callback = LoopbackBrowserAuthenticator(
        open_browser=browser, timeout=10, notify=lambda message: None
    ).authenticate(login_request())
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


# --- what the user sees: the page, and what is printed before the browser opens -------------------


def run(*queries: dict[str, str], **kwargs: object) -> tuple[Browser, list[str], LoginRequest]:
    browser = Browser(*queries)
    told: list[str] = []
    login = kwargs.pop("login", None) or login_request()
    assert isinstance(login, LoginRequest)
    LoopbackBrowserAuthenticator(open_browser=browser, timeout=10, notify=told.append).authenticate(
        login
    )
    return browser, told, login


def test_the_signed_in_page_looks_like_the_providers_and_loads_nothing() -> None:
    HEADERS.clear()
    browser, _, _ = run({"code": "c-1", "state": "s-1"})
    status, page = browser.answers[0]
    assert status == 200
    assert '<p class="brand">Stepup</p>' in page
    assert "<title>Signed in · Stepup</title>" in page
    assert '<p class="notice" role="status">You are signed in.</p>' in page
    # The provider's own accent colour and type, inline (a restyle of the provider shows here).
    css = PROVIDER_CSS.read_text()
    for declaration in (r"--accent:\s*[^;]+;", r"font:\s*[^;]+;"):
        match = re.search(declaration, css)
        assert match is not None
        assert match.group(0) in page
    # Nothing external: no links, scripts, images or URLs at all; the CSP allows only the style.
    assert not re.search(r"<(link|script|img)|src=|href=|https?://", page)
    style = page[page.index("<style>") + 7 : page.index("</style>")]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    headers = HEADERS[0]
    assert headers["Content-Security-Policy"] == (
        f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_an_error_page_says_what_the_provider_answered_escaped() -> None:
    browser, _, _ = run(
        {"error": "access_denied", "error_description": "<b>cancelled</b>", "state": "s-1"}
    )
    page = browser.answers[0][1]
    assert (
        '<p class="error" role="alert">The provider answered: access_denied — '
        "&lt;b&gt;cancelled&lt;/b&gt;</p>"
    ) in page


def test_a_first_login_says_where_the_user_signs_in() -> None:
    _, told, _ = run({"code": "c-1", "state": "s-1"})
    assert told == ["Opening your browser to sign in at https://op.example …"]


def test_a_step_up_says_why_the_browser_opens() -> None:
    challenge = StepUpChallenge(
        "bearer",
        acr_values=["urn:stepup:loa:2"],
        max_age=300,
        error_description="needs level 2\x1b[31m; the token's level is loa:1",
    )
    login = login_request(requirement=Requirement(("urn:stepup:loa:2",), 300), challenge=challenge)
    _, told, _ = run({"code": "c-1", "state": "s-1"}, login=login)
    # The API's words reach the terminal without its control characters.
    assert told == [
        "This action needs urn:stepup:loa:2, with a sign-in within the last 5 minutes "
        "(max_age=300).\n"
        'The API says: "needs level 2 [31m; the token\'s level is loa:1"\n'
        "Opening your browser to sign in again at https://op.example …"
    ]


def test_max_age_alone_and_several_levels_read_naturally() -> None:
    from client_sdk.authenticators.loopback import why_sign_in

    assert why_sign_in(login_request(requirement=Requirement((), 3600))).splitlines()[0] == (
        "This action needs a sign-in within the last 1 hour (max_age=3600)."
    )
    assert why_sign_in(login_request(requirement=Requirement(("a", "b")))).splitlines()[0] == (
        "This action needs a or b."
    )


def test_no_browser_the_url_is_printed() -> None:
    told: list[str] = []
    opened: list[str] = []

    def no_browser(url: str) -> bool:
        opened.append(url)
        return False

    with pytest.raises(AuthenticationTimeout):
        LoopbackBrowserAuthenticator(
            open_browser=no_browser, timeout=0, notify=told.append
        ).authenticate(login_request())
    assert told == [
        "Opening your browser to sign in at https://op.example …",
        f"No browser opened. Open this URL to sign in:\n  {opened[0]}",
    ]
