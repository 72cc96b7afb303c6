"""Sandbox mode: any client with a loopback redirect URI (``sandbox_loopback_clients``), and error
pages that say what was received and what is registered — in sandbox mode only."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from provider import create_app
from provider.sandbox_clients import is_loopback_uri
from stepup.config import ConfigError, StepupConfig, parse_config

from .flow import LOA2, Browser, Client, claims, parse_page

MY_APP = "http://localhost:3000/callback"


def app_with(config: StepupConfig, url: str, **settings: bool) -> Flask:
    provider = replace(config.provider, **settings)
    return create_app(replace(config, provider=provider), database_url=url)


def error_of(response: TestResponse) -> tuple[str, str]:
    """(the page's alert, the whole page) of an error page that must not redirect."""
    assert (response.status_code, response.location) == (400, None)
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    return " ".join(parse_page(html).alerts), html


# --- any loopback client --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [MY_APP, "http://127.0.0.1:51234/oauth/done", "http://[::1]:8080/cb", "http://localhost/cb"],
)
def test_an_unregistered_app_with_a_loopback_redirect_logs_in_and_steps_up(
    app: Flask, redirect_uri: str
) -> None:
    browser = Browser(app)
    mine = Client(browser, client_id="my-app", redirect_uri=redirect_uri)
    tokens = mine.tokens(acr_values=LOA2)
    assert browser.pages == ["password", "otp"]
    idt = claims(app, tokens["id_token"])
    assert (idt["aud"], idt["acr"], idt["amr"]) == ("my-app", LOA2, ["pwd", "otp", "mfa"])
    assert claims(app, tokens["access_token"])["client_id"] == "my-app"
    assert "refresh_token" in tokens  # offline_access, like a registered public client


def test_it_is_a_public_client_pkce_required(app: Flask) -> None:
    mine = Client(Browser(app), client_id="my-app", redirect_uri=MY_APP)
    response = mine.authorize(code_challenge=None, code_challenge_method=None)
    assert response.status_code == 302
    assert response.location.startswith(MY_APP + "?error=invalid_request")


def test_a_secret_nobody_registered_is_refused(app: Flask) -> None:
    mine = Client(Browser(app), client_id="my-app", redirect_uri=MY_APP, secret="anything")
    callback = Client(Browser(app), client_id="my-app", redirect_uri=MY_APP)
    code = callback.sign_in()["code"]
    response = mine.exchange(code)
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("uri", "loopback"),
    [
        ("http://localhost:3000/callback", True),
        ("http://127.0.0.1", True),
        ("http://[::1]:9/x?y=1", True),
        ("http://127.0.0.1:65535/", True),
        ("https://localhost:3000/cb", False),
        ("HTTP://127.0.0.1/cb", False),
        ("http://127.0.0.1:80@evil.example/", False),
        ("http://localhost.evil.example/cb", False),
        ("http://127.0.0.1:0/cb", False),
        ("http://127.0.0.1:65536/cb", False),
        ("http://127.0.0.1:08080/cb", False),
        ("http://127.0.0.1:/cb", False),
        ("http://127.0.0.1/cb x", False),
        ("http://127.0.0.1/cb\t", False),
        ("http://127.0.0.2/cb", False),
    ],
)
def test_what_counts_as_a_loopback_redirect_uri(uri: str, loopback: bool) -> None:
    assert is_loopback_uri(uri) is loopback


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:5173", True),
        ("http://127.0.0.1:9999", True),
        ("http://[::1]:3000", True),
        ("https://localhost:5173", False),
        ("http://localhost.evil.example", False),
        ("https://evil.example", False),
        ("null", False),
    ],
)
def test_a_single_page_app_on_any_loopback_origin_may_call_the_token_endpoint(
    app: Flask, origin: str, allowed: bool
) -> None:
    response = app.test_client().options(
        "/token", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    if allowed:
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == origin
    else:
        assert "Access-Control-Allow-Origin" not in response.headers


# --- error pages in sandbox mode: what was received, what is registered -------------------------


def test_a_registered_client_keeps_its_registered_uris_and_the_page_says_which(app: Flask) -> None:
    alert, html = error_of(Client(Browser(app), redirect_uri=MY_APP).authorize())
    assert alert == (
        "The redirect_uri is missing or is not one registered for this application, so the "
        "provider will not send you there."
    )
    assert (
        "<p>redirect_uri http://localhost:3000/callback is not registered for client bank-cli; "
        "registered: http://127.0.0.1:8765/callback (any port).</p>"
    ) in html
    assert "<dt>registered for bank-cli</dt>" in html
    assert "<dd><code>http://127.0.0.1:8765/callback (any port)</code></dd>" in html


def test_an_unregistered_client_with_another_redirect_uri_is_told_what_is_accepted(
    app: Flask,
) -> None:
    hostile = 'https://app.example/cb?<script>alert("x")</script>'
    _, html = error_of(Client(Browser(app), client_id="my-app", redirect_uri=hostile).authorize())
    shown = "https://app.example/cb?&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert f"<dd><code>{shown}</code></dd>" in html
    assert "<script>" not in html.split("<body>")[1].split("</main>")[0]
    for form in ("http://127.0.0.1:PORT/…", "http://[::1]:PORT/…", "http://localhost:PORT/…"):
        assert f"<dd><code>{form}</code></dd>" in html
    assert "client my-app is not registered" in html


def test_without_the_switch_an_unknown_client_sees_the_registered_ones(
    config: StepupConfig, sqlite_url: str, frozen: object
) -> None:
    app = app_with(config, sqlite_url, sandbox_loopback_clients=False)
    alert, html = error_of(Client(Browser(app), client_id="my-app").authorize())
    assert alert == "The client_id is not registered here."
    assert (
        "<p>client_id my-app is not registered; registered: back-office, bank-cli, "
        "bank-payments, bank-web, reports-job, "
        "sandbox-playground.</p>"
    ) in html
    assert "set [provider] sandbox_loopback_clients = true" in html


def test_a_long_value_is_shown_shortened(app: Flask) -> None:
    _, html = error_of(
        Client(Browser(app), redirect_uri="http://x.example/" + "a" * 5000).authorize()
    )
    assert "http://x.example/" + "a" * 182 + "…" in html
    assert "a" * 183 not in html


# --- outside sandbox mode: neither the values nor the registrations -------------------------------


@pytest.mark.parametrize(
    ("client_id", "redirect_uri", "title"),
    [
        ("my-app", MY_APP, "Unknown application"),
        ("bank-cli", MY_APP, "Unregistered redirect URI"),
    ],
)
def test_outside_sandbox_mode_the_page_shows_neither(
    config: StepupConfig,
    sqlite_url: str,
    frozen: object,
    client_id: str,
    redirect_uri: str,
    title: str,
) -> None:
    # The built-in config's sandbox_loopback_clients = true stays: outside sandbox mode it does
    # nothing, so my-app is unknown here.
    app = app_with(config, sqlite_url, sandbox=False)
    assert app.extensions["stepup_provider"].config.provider.sandbox_loopback_clients is True
    response = Client(Browser(app), client_id=client_id, redirect_uri=redirect_uri).authorize()
    _, html = error_of(response)
    assert f"<h1>{title}</h1>" in html
    for private in ("localhost:3000", "127.0.0.1:8765", "bank-web", "sandbox-details"):
        assert private not in html
    preflight = app.test_client().options(
        "/token",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_the_switch_is_refused_outside_sandbox_mode() -> None:
    base = {
        "issuer": "http://127.0.0.1:9000",
        "acr_levels": [{"value": "urn:stepup:loa:1", "factors": ["pwd"]}],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config({**base, "provider": {"sandbox_loopback_clients": True}}, source="t.toml")
    assert str(caught.value) == (
        "t.toml: provider.sandbox_loopback_clients: only in sandbox mode; it needs sandbox = true"
    )
