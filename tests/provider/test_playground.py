"""The sandbox playground: a browser-only way to see a login and a step-up, sandbox mode only."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from flask import Flask

from provider import create_app
from stepup.config import StepupConfig

from .flow import LOA2, Browser


def _run(browser: Browser, query: str) -> str:
    response = browser.login_through(browser.get(f"/sandbox/try?{query}"))
    assert response.status_code == 302
    callback = urlsplit(response.location)
    assert callback.path == "/sandbox/callback"
    page = browser.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_playground_shows_a_step_up_that_asked_only_for_the_otp(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    first = _run(browser, "")
    assert "<code>urn:stepup:loa:1</code>" in first
    assert "<code>pwd</code>" in first
    second = _run(browser, f"acr_values={LOA2}")
    assert browser.pages == ["password", "otp"]
    assert f"<code>{LOA2}</code>" in second
    assert "<code>pwd, otp, mfa</code>" in second


def test_playground_shows_the_providers_error(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    response = browser.get("/sandbox/try?prompt=none")
    response = browser.get(response.location)
    callback = urlsplit(response.location)
    page = browser.get(f"{callback.path}?{callback.query}").get_data(as_text=True)
    assert "<code>login_required</code>" in page


def test_playground_rejects_a_callback_with_a_foreign_state(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    browser.get("/sandbox/try")
    assert browser.get("/sandbox/callback?code=x&state=forged").status_code == 400


def test_playground_is_absent_outside_sandbox_mode(
    config: StepupConfig, sqlite_url: str, frozen: object
) -> None:
    app = create_app(
        replace(config, provider=replace(config.provider, sandbox=False)), database_url=sqlite_url
    )
    client = app.test_client()
    assert client.get("/sandbox/try").status_code == 404
    assert client.get("/sandbox").status_code == 404
    # The playground client is not registered either.
    assert client.get("/authorize?client_id=sandbox-playground").status_code == 400


def test_a_client_removed_from_the_file_is_removed_at_the_next_start(
    config: StepupConfig, sqlite_url: str, frozen: object
) -> None:
    create_app(config, database_url=sqlite_url)  # sandbox mode: the playground client exists
    app = create_app(
        replace(config, provider=replace(config.provider, sandbox=False)), database_url=sqlite_url
    )
    response = app.test_client().get(
        "/authorize?client_id=sandbox-playground&redirect_uri=http://127.0.0.1:9000/sandbox/callback"
    )
    assert response.status_code == 400
    assert "Unknown application" in response.get_data(as_text=True)
