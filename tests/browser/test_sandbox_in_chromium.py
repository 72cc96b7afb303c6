"""The sandbox's own pages in a real browser: a step-up through the login pages as the step-up
timeline shows it (live, and as Mermaid), and the personas on ``/sandbox``.

The app of the flow is the test itself: it builds the authorization requests (PKCE S256, state,
nonce) for the registered public client ``bank-cli``, calls the demo API, and exchanges codes.
Chromium is the user agent: it follows the requests through the provider's real pages, and its
trip back to the app's loopback redirect URI is answered by Playwright (nothing listens there).

Every page is also checked at a phone's width (390 px) for what a newcomer trips over first: a
page wider than the screen.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect

from provider.factors.totp import code_at
from stepup.inprocess import Sandbox

from .conftest import Screenshot

LOA1, LOA2 = "urn:stepup:loa:1", "urn:stepup:loa:2"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def fits_the_screen(page: Page) -> bool:
    """No horizontal scrolling of the whole page (a table may scroll inside its own box)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def both_widths(page: Page, screenshot: Screenshot, name: str) -> None:
    """Screenshots at a desktop's and a phone's width; the page must fit the phone's."""
    page.set_viewport_size(DESKTOP)
    screenshot(page, f"{name}-desktop")
    page.set_viewport_size(PHONE)
    assert fits_the_screen(page), f"{name} is wider than a phone's screen"
    screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>App</title><h1 id=app>Back at the app</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class App:
    """The client app: authorization requests out, codes back at its loopback redirect URI (a
    port of its own: RFC 8252 §7.3, any port for a registered loopback URI), tokens, API calls."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = requests.Session()
        self.pending: dict[str, str] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.http.close()

    def authorization_url(self, **params: str) -> str:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        state = secrets.token_urlsafe(8)
        self.pending = {"verifier": verifier, "state": state}
        query = {
            "response_type": "code",
            "client_id": "bank-cli",
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            **params,
        }
        return f"{self.sandbox.issuer}/authorize?{urlencode(query)}"

    def token_from(self, landed_at: str) -> str:
        """The callback's code, exchanged at the token endpoint: the access token."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(landed_at).query).items()}
        assert query["state"] == self.pending["state"]
        answer = self.http.post(
            f"{self.sandbox.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"],
                "redirect_uri": self.redirect_uri,
                "client_id": "bank-cli",
                "code_verifier": self.pending["verifier"],
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def call(self, method: str, path: str, token: str, body: Any = None) -> requests.Response:
        return self.http.request(
            method,
            f"{self.sandbox.api_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )


@pytest.fixture
def app(sandbox: Sandbox) -> Iterator[App]:
    running = App(sandbox)
    try:
        yield running
    finally:
        running.close()


def _password_page(page: Page, sandbox: Sandbox, username: str) -> None:
    assert page.inner_text("h1") == "Enter your username and password"
    page.fill("#username", username)
    password = sandbox.user(username).password
    page.fill("#password", password)
    page.click("button[value=continue]")


def _code_page(page: Page, sandbox: Sandbox, username: str) -> None:
    assert page.inner_text("h1") == "Enter your one-time code"
    secret = sandbox.user(username).totp_secret
    assert secret is not None
    page.fill("#code", code_at(secret, sandbox.now()))
    page.click("button[value=continue]")


def _rows(page: Page) -> list[list[str]]:
    return [
        [cell.inner_text() for cell in row.locator("td").all()]
        for row in page.locator("#timeline tbody tr").all()
    ]


def _claims(token: str) -> dict[str, Any]:
    """A token's claims, unverified: the test only compares them with what the timeline shows."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_a_step_up_through_the_pages_as_the_timeline_shows_it(
    page: Page, sandbox: Sandbox, app: App, screenshot: Screenshot
) -> None:
    # Sign in with the password: a level-1 token.
    page.goto(app.authorization_url(acr_values=LOA1))
    _password_page(page, sandbox, "alice")
    assert page.inner_text("#app") == "Back at the app"
    token = app.token_from(page.url)
    accounts = app.call("GET", "/accounts", token).json()["accounts"]
    move = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": "5.00"}
    # The transfer needs level 2 within the hour: the API's challenge says so.
    challenged = app.call("POST", "/transfers", token, move)
    assert challenged.status_code == 401
    # The step-up the challenge asks for: the session has the password, so only the code.
    page.goto(app.authorization_url(acr_values=LOA2, max_age="3600"))
    _code_page(page, sandbox, "alice")
    stepped_up = app.token_from(page.url)
    assert app.call("POST", "/transfers", stepped_up, move).status_code == 201
    first, second = _claims(token), _claims(stepped_up)

    page.goto(f"{sandbox.issuer}/sandbox/timeline")
    assert [r[1:] for r in _rows(page)] == [
        ["App", "Provider", f"GET /authorize client_id=bank-cli acr_values={LOA1}"],
        ["Provider", "App", f"asks the user for pwd (level {LOA1}, because login_required)"],
        ["Provider", "App", "redirect with an authorization code"],
        ["App", "Provider", "POST /token grant_type=authorization_code"],
        ["Provider", "App", f"tokens: acr={LOA1} amr=pwd auth_time={first['auth_time']}"],
        ["App", "API", "GET /accounts"],
        ["API", "App", "200"],
        ["App", "API", "POST /transfers"],
        [
            "API",
            "App",
            f"401 challenge: error=insufficient_user_authentication acr_values={LOA2} max_age=3600",
        ],
        ["App", "Provider", f"GET /authorize client_id=bank-cli acr_values={LOA2} max_age=3600"],
        ["Provider", "App", f"asks the user for otp (level {LOA2}, because step_up)"],
        ["Provider", "App", "redirect with an authorization code"],
        ["App", "Provider", "POST /token grant_type=authorization_code"],
        [
            "Provider",
            "App",
            f"tokens: acr={LOA2} amr=pwd,otp,mfa auth_time={second['auth_time']}",
        ],
        ["App", "API", "POST /transfers (retry with the new token)"],
        ["API", "App", "201"],
    ]
    assert (second["acr"], second["amr"]) == (LOA2, ["pwd", "otp", "mfa"])
    # What a learner looks for stands out: the challenge, what was asked, the tokens.
    kinds = page.eval_on_selector_all("#timeline tbody tr", "rows => rows.map(r => r.dataset.kind)")
    assert [k for k in kinds if k] == [
        "authorize",
        "asked",
        "tokens",
        "challenge",
        "authorize",
        "asked",
        "tokens",
        "retry",
    ]
    both_widths(page, screenshot, "timeline")
    page.set_viewport_size(PHONE)
    assert _fits(page, "#timeline-box"), "the timeline scrolls sideways on a phone"
    page.set_viewport_size(DESKTOP)

    # The Mermaid export, for slides: the same steps as a sequence diagram.
    page.click("a:has-text('timeline.mmd')")
    diagram = page.inner_text("body").splitlines()
    assert diagram[:4] == [
        "sequenceDiagram",
        "    participant App as Client app",
        "    participant API",
        "    participant Provider",
    ]
    assert diagram[12:15] == [
        "    API-->>App: 401 challenge: error=insufficient_user_authentication "
        f"acr_values={LOA2} max_age=3600",
        f"    App->>Provider: GET /authorize client_id=bank-cli acr_values={LOA2} max_age=3600",
        f"    Provider-->>App: asks the user for otp (level {LOA2}, because step_up)",
    ]
    assert diagram[-2:] == [
        "    App->>API: POST /transfers (retry with the new token)",
        "    API-->>App: 201",
    ]


def _fits(page: Page, selector: str) -> bool:
    """The element's content fits its box: it does not scroll sideways."""
    return bool(page.eval_on_selector(selector, "e => e.scrollWidth <= e.clientWidth"))


def test_the_timeline_shows_new_steps_without_a_reload(
    page: Page, sandbox: Sandbox, app: App
) -> None:
    assert requests.delete(f"{sandbox.issuer}/sandbox/timeline", timeout=10).status_code == 200
    page.goto(f"{sandbox.issuer}/sandbox/timeline")
    assert page.is_visible("#timeline-empty")
    assert not page.is_visible("#timeline")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    token = sandbox.mint_token("alice")
    assert app.call("GET", "/accounts", token).status_code == 200
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(2, timeout=10_000)
    assert [r[1:] for r in _rows(page)] == [["App", "API", "GET /accounts"], ["API", "App", "200"]]
    assert not page.is_visible("#timeline-empty")

    assert app.call("PUT", "/profile/email", token, {"email": "a@b.example"}).status_code == 401
    expect(rows).to_have_count(4, timeout=10_000)
    assert page.locator("#timeline tbody tr").nth(3).get_attribute("data-kind") == "challenge"
    assert page.evaluate("window.sameDocument") is True


def test_a_persona_signs_in_with_one_click_and_the_playground_asks_nothing(
    page: Page, sandbox: Sandbox, screenshot: Screenshot
) -> None:
    page.goto(f"{sandbox.issuer}/sandbox")
    assert page.inner_text("#signed-in") == "Nobody is signed in at the provider in this browser."
    # bob has no one-time code: no level-2 button, and the reason instead.
    assert page.locator(f'[data-persona="bob {LOA1}"]').count() == 1
    assert page.locator(f'[data-persona="bob {LOA2}"]').count() == 0
    assert page.inner_text(f'[data-refusal="bob {LOA2}"]').startswith(
        f"bob has no one-time code set up, so the sandbox cannot sign bob in at {LOA2}"
    )
    both_widths(page, screenshot, "sandbox")

    alice = page.locator("form.persona", has=page.locator('input[value="alice"]'))
    alice.locator("input[name=then]").check()
    alice.locator(f'[data-persona="alice {LOA2}"]').click()
    # On to the playground, asking for that level for alice.
    assert page.url.startswith(f"{sandbox.issuer}/sandbox/try?")
    assert page.input_value("#acr_values") == LOA2
    assert page.input_value("#login_hint") == "alice"
    page.click("button:has-text('Start sign-in')")
    # No login page: the persona's session meets the level.
    assert page.url.startswith(f"{sandbox.issuer}/sandbox/callback?")
    assert page.inner_text("#result") == "Signed in as alice"
    result = page.locator("section[aria-labelledby=result] table").first
    assert result.locator("tr").nth(0).locator("td code").inner_text() == LOA2
    assert result.locator("tr").nth(1).locator("td code").inner_text() == "pwd, otp, mfa"
    both_widths(page, screenshot, "playground-result")

    page.goto(f"{sandbox.issuer}/sandbox")
    assert page.inner_text("#signed-in").startswith(
        f"This browser is signed in as alice at {LOA2} (pwd, otp)."
    )
    both_widths(page, screenshot, "signed-in")
    page.goto(f"{sandbox.issuer}/sandbox/timeline")
    persona = page.locator("#timeline tbody tr[data-kind=persona]")
    assert (
        persona.locator("td.what")
        .inner_text()
        .startswith(f"persona sign-in: alice at acr={LOA2} amr=pwd,otp,mfa auth_time=")
    )


def test_a_persona_refused_a_level_says_why(page: Page, sandbox: Sandbox) -> None:
    """A post made without the page's button (bob has none at level 2): 409 and the reason."""
    page.goto(f"{sandbox.issuer}/sandbox")
    bob = page.locator("form.persona", has=page.locator('input[value="bob"]'))
    bob.evaluate(
        """(form, acr) => {
            const b = document.createElement("button");
            b.name = "acr"; b.value = acr; b.id = "forged"; b.textContent = "forged";
            form.append(b);
        }""",
        LOA2,
    )
    with page.expect_navigation() as navigation:
        page.click("#forged")
    response = navigation.value
    assert response is not None
    assert response.status == 409
    assert page.inner_text("h1") == "This persona cannot sign in"
    page.goto(f"{sandbox.issuer}/sandbox")
    assert page.inner_text("#signed-in") == "Nobody is signed in at the provider in this browser."
