"""``/sandbox/timeline`` at the provider alone: what it records of a login, the refused step, the
Mermaid export; and that nothing is recorded outside sandbox mode."""

from __future__ import annotations

import re
from dataclasses import replace

from flask import Flask
from freezegun.api import FrozenDateTimeFactory

from provider.app import SCRIPTED_PAGE_CSP
from provider.sandbox_timeline import Step, Timeline, api_exchange, mermaid
from stepup.cli import build_sandbox
from stepup.config import StepupConfig

from .conftest import T0_EPOCH
from .flow import LOA2, Browser, Client


def steps(app: Flask) -> list[str]:
    answer = app.test_client().get("/sandbox/timeline", headers={"Accept": "application/json"})
    assert answer.status_code == 200
    return [s["text"] for s in answer.get_json()["steps"]]


def test_a_login_with_a_wrong_code(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    cli = Client(browser)
    page = browser.login_through(cli.authorize(acr_values=LOA2, max_age="600"), max_pages=3)
    assert browser.pages == ["password"]  # and now the one-time code page
    browser.submit(page, {"one-time-code": "000000"})
    assert steps(sqlite_app) == [
        f"GET /authorize client_id=bank-cli acr_values={LOA2} max_age=600",
        f"asks the user for pwd + otp (level {LOA2}, because login_required)",
        f"asks the user for otp (level {LOA2}, because step_up)",
        f"refused, asks again for otp (level {LOA2}, because step_up)",
    ]
    answer = sqlite_app.test_client().get(
        "/sandbox/timeline", headers={"Accept": "application/json"}
    )
    assert {s["at"] for s in answer.get_json()["steps"]} == {T0_EPOCH}


def test_mermaid_keeps_each_message_on_its_line() -> None:
    text = mermaid([Step(0, "App", "API", "GET /a;b\n%%c#d")])
    assert text.splitlines()[-1] == "    App->>API: GET /a b %c d"


def test_a_quoted_and_a_token_challenge_parameter() -> None:
    _, answer = api_exchange(
        0,
        "GET",
        "/x",
        401,
        'Bearer error="insufficient_user_authentication", acr_values="a b", max_age=60',
        retry=False,
    )
    assert answer.details == {
        "status": 401,
        "error": "insufficient_user_authentication",
        "acr_values": "a b",
        "max_age": "60",
    }


def test_the_ring_is_bounded() -> None:
    ring = Timeline(size=3)
    ring.add(*(Step(i, "App", "API", str(i)) for i in range(5)))
    assert [s.text for s in ring.steps()] == ["2", "3", "4"]


def test_nothing_is_recorded_outside_the_sandbox(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    plain = replace(config, provider=replace(config.provider, sandbox=False))
    provider_app, api_app = build_sandbox(plain, sqlite_url)
    assert "sandbox_timeline" not in provider_app.extensions
    http = provider_app.test_client()
    assert http.get("/sandbox/timeline").status_code == 404
    assert http.get("/sandbox/timeline.mmd").status_code == 404
    assert "code" in Client(Browser(provider_app)).sign_in()
    assert api_app.test_client().get("/accounts").status_code == 401
    # Neither app has a recorder hooked after its requests.
    assert not any(
        f.__module__ == "provider.views.sandbox"
        for app in (provider_app, api_app)
        for f in app.after_request_funcs.get(None, [])
    )


def test_sandbox_apps_do_record(config: StepupConfig, sqlite_url: str) -> None:
    provider_app, api_app = build_sandbox(config, sqlite_url)
    assert api_app.test_client().get("/accounts").status_code == 401
    assert steps(provider_app)[-2:] == ["GET /accounts", "401"]  # RFC 6750 §3.1: no error


def test_the_page_refreshes_itself_with_a_same_origin_script(sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    page = http.get("/sandbox/timeline")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == SCRIPTED_PAGE_CSP
    html = page.get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/timeline.js">']
    # Without JavaScript: a reload every few seconds.
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    # Empty: the table is there for the script to fill, hidden, and the hint shows.
    assert '<div class="table-scroll" id="timeline-box" hidden>' in html
    assert '<p id="timeline-empty">Nothing yet.' in html
    script = http.get("/static/timeline.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert "innerHTML" not in script.get_data(as_text=True)  # steps become text, never markup


def test_each_step_says_its_kind(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    Client(browser).sign_in(acr_values=LOA2)
    cli = Client(browser)
    page = cli.authorize(acr_values=LOA2, prompt="none", login_hint="bob")  # another user
    assert "error=login_required" in page.location
    answer = sqlite_app.test_client().get(
        "/sandbox/timeline", headers={"Accept": "application/json"}
    )
    assert [(s["kind"], s["text"]) for s in answer.get_json()["steps"]] == [
        ("authorize", f"GET /authorize client_id=bank-cli acr_values={LOA2}"),
        ("asked", f"asks the user for pwd + otp (level {LOA2}, because login_required)"),
        ("asked", f"asks the user for otp (level {LOA2}, because step_up)"),
        ("", "redirect with an authorization code"),
        (
            "authorize",
            f"GET /authorize client_id=bank-cli acr_values={LOA2} prompt=none login_hint=bob",
        ),
        ("error", "redirect: error=login_required"),
    ]
    html = sqlite_app.test_client().get("/sandbox/timeline").get_data(as_text=True)
    assert (
        '<tr data-kind="error"><td class="when"><time datetime="2026-11-21T12:00:00Z">12:00:00'
        '</time></td><td class="from">Provider</td><td class="to">App</td>'
        '<td class="what">redirect: error=login_required</td></tr>'
    ) in html
