"""The sandbox playground: a browser-only way to see a login and a step-up, sandbox mode only.

``GET /sandbox/try`` is a form (filled in from its query string); posting it starts the
authorization request; the callback shows both tokens decoded."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import unescape
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from provider import create_app
from stepup.config import StepupConfig

from .conftest import T0_EPOCH
from .flow import LOA2, Browser, parse_page, query_of, redirect_status
from .test_login_pages import Elements

LOA3 = "urn:stepup:loa:3"


@pytest.fixture
def browser(sqlite_app: Flask) -> Browser:
    return Browser(sqlite_app)


def post_form(browser: Browser, csrf: bool = True, **fields: str) -> TestResponse:
    page = browser.get("/sandbox/try")
    form = parse_page(page.get_data(as_text=True)).forms[0]
    data = form.hidden() if csrf else {}
    data.update(fields)
    return browser.http.post(form.action, data=data)


def run(browser: Browser, **fields: str) -> str:
    """Post the form, sign in through every page, follow the callback; the result page."""
    response = browser.login_through(post_form(browser, **fields))
    assert response.status_code == redirect_status(response)
    callback = urlsplit(response.location)
    assert callback.path == "/sandbox/callback"
    page = browser.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def pre_blocks(html: str) -> dict[str, str]:
    """The <pre> blocks by their aria-label, unescaped."""
    return {
        label: unescape(body)
        for label, body in re.findall(r'<pre aria-label="([^"]+)">(.*?)</pre>', html, re.S)
    }


# --- the form ------------------------------------------------------------------------------------


def test_the_form_has_every_step_up_parameter(browser: Browser) -> None:
    page = browser.get("/sandbox/try")
    assert page.status_code == 200
    form = parse_page(page.get_data(as_text=True)).forms[0]
    assert (form.action, form.method) == ("/sandbox/try", "post")
    assert form.hidden()["csrf_token"]
    fields = {i["name"]: i.get("type") for i in form.inputs}
    assert fields == {
        "csrf_token": "hidden",
        "acr_values": "text",
        "essential": "checkbox",
        "max_age": "text",
        "login_hint": "text",
        "authorization_details": "text",
    }
    html = page.get_data(as_text=True)
    assert '<select id="prompt" name="prompt">' in html
    assert re.findall(r'<option value="([^"]*)"', html.split('name="prompt"')[1])[:3] == [
        "",
        "login",
        "none",
    ]
    assert '<a href="/sandbox">sandbox users</a>' in html


def test_the_query_string_fills_the_form_in(browser: Browser) -> None:
    page = browser.get(
        "/sandbox/try",
        query_string={"acr_values": LOA2, "max_age": "60", "prompt": "login", "essential": "on"},
    )
    html = page.get_data(as_text=True)
    elements = Elements(html)
    assert elements.by_id("acr_values")[1]["value"] == LOA2
    assert elements.by_id("max_age")[1]["value"] == "60"
    assert "checked" in elements.by_id("essential")[1]
    assert '<option value="login" selected>' in html


def test_posting_the_form_starts_the_authorization_request(browser: Browser) -> None:
    response = post_form(
        browser,
        acr_values=f"  {LOA2}   {LOA3} ",
        max_age="60",
        prompt="login",
        login_hint="bob",
        essential="on",
    )
    assert response.status_code == 303
    assert urlsplit(response.location).path == "/authorize"
    params = query_of(response.location)
    assert {k: params[k] for k in ("acr_values", "max_age", "prompt", "login_hint")} == {
        "acr_values": f"{LOA2} {LOA3}",
        "max_age": "60",
        "prompt": "login",
        "login_hint": "bob",
    }
    assert json.loads(params["claims"]) == {
        "id_token": {"acr": {"essential": True, "values": [LOA2, LOA3]}}
    }
    assert params["client_id"] == "sandbox-playground"
    assert params["code_challenge_method"] == "S256"
    assert {"state", "nonce", "code_challenge"} <= set(params)


def test_empty_fields_are_not_sent(browser: Browser) -> None:
    params = query_of(post_form(browser, acr_values="", max_age="", prompt="").location)
    assert not {"acr_values", "max_age", "prompt", "login_hint", "claims"} & set(params)


def test_the_form_needs_its_csrf_token(browser: Browser) -> None:
    response = post_form(browser, csrf=False, acr_values=LOA2)
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"max_age": "sixty"}, "max_age", "max_age is a whole number of seconds (0 or more), "),
        ({"max_age": "-1"}, "max_age", "max_age is a whole number of seconds (0 or more), "),
        ({"max_age": "²"}, "max_age", "max_age is a whole number of seconds (0 or more), "),
        ({"essential": "on"}, "essential", "An essential acr needs at least one value in "),
        ({"prompt": "consent"}, "prompt", "Choose one of the listed prompt values."),
    ],
)
def test_a_wrong_field_is_marked_and_described(
    browser: Browser, fields: dict[str, str], field: str, message: str
) -> None:
    response = post_form(browser, **fields)
    assert response.status_code == 400
    elements = Elements(response.get_data(as_text=True))
    attrs = elements.by_id(field)[1]
    assert attrs["aria-invalid"] == "true"
    assert f"{field}-error" in attrs["aria-describedby"].split()
    assert message in response.get_data(as_text=True)
    assert elements.by_id(f"{field}-error")[0] == "p"
    assert elements.aria("acr_values") == {"aria-describedby": "acr_values-hint"}


# --- the result -----------------------------------------------------------------------------------


def test_playground_shows_a_step_up_that_asked_only_for_the_otp(browser: Browser) -> None:
    first = run(browser)
    assert '<h2 id="result">Signed in as alice</h2>' in first
    assert "<code>urn:stepup:loa:1</code>" in first
    assert "<code>pwd</code>" in first
    second = run(browser, acr_values=LOA2)
    assert browser.pages == ["password", "otp"]
    assert f"<code>{LOA2}</code>" in second
    assert "<code>pwd, otp, mfa</code>" in second
    assert f"Request: <code>acr_values={LOA2}</code>" in second
    # The form is filled in with the request just made, ready for the next one.
    assert Elements(second).by_id("acr_values")[1]["value"] == LOA2


def test_both_tokens_are_shown_decoded_with_readable_times(browser: Browser) -> None:
    html = run(browser, acr_values=LOA2)
    blocks = pre_blocks(html)
    assert set(blocks) == {
        "ID token header",
        "ID token claims",
        "Access token header",
        "Access token claims",
    }
    id_header = json.loads(blocks["ID token header"])
    assert (id_header["alg"], id_header["typ"]) == ("RS256", "JWT")
    assert json.loads(blocks["Access token header"])["typ"] == "at+jwt"
    id_claims = json.loads(blocks["ID token claims"])
    assert (id_claims["acr"], id_claims["amr"]) == (LOA2, ["pwd", "otp", "mfa"])
    assert id_claims["auth_time"] == T0_EPOCH
    access = json.loads(blocks["Access token claims"])
    assert (access["acr"], access["client_id"]) == (LOA2, "sandbox-playground")
    assert blocks["ID token claims"].startswith('{\n  "')  # pretty-printed
    # Times as people read them, next to the numbers.
    assert (
        '<tr><th scope="row"><code>auth_time</code></th><td>2026-11-21 12:00:00 UTC (now)</td></tr>'
        in html
    )
    assert (
        '<tr><th scope="row"><code>exp</code></th><td>2026-11-21 12:10:00 UTC (in 600 s)</td></tr>'
        in html
    )


PAYMENT = '[{"type": "payment", "amount": "1500", "currency": "EUR", "payee": "acc_bob"}]'


def test_playground_approves_a_payment_and_shows_it_in_the_access_token(browser: Browser) -> None:
    """RFC 9396 from the playground: the pages show the payment, the access token carries it
    (normalised), the ID token does not."""
    response = post_form(browser, acr_values=LOA2, authorization_details=PAYMENT)
    assert query_of(response.location)["authorization_details"] == PAYMENT
    page = browser.get(browser.get(response.location).location)
    assert "<li data-detail>Pay 1500.00 EUR to acc_bob</li>" in page.get_data(as_text=True)
    blocks = pre_blocks(run(browser, acr_values=LOA2, authorization_details=PAYMENT))
    access = json.loads(blocks["Access token claims"])
    assert access["authorization_details"] == [
        {"amount": "1500.00", "currency": "EUR", "payee": "acc_bob", "type": "payment"}
    ]
    assert "authorization_details" not in json.loads(blocks["ID token claims"])


def test_playground_shows_invalid_authorization_details(browser: Browser) -> None:
    response = post_form(browser, authorization_details='[{"type": "wire"}]')
    response = browser.get(response.location)
    callback = urlsplit(response.location)
    page = browser.get(f"{callback.path}?{callback.query}").get_data(as_text=True)
    assert "The provider answered <code>invalid_authorization_details</code>" in page


def test_playground_shows_the_providers_error(browser: Browser) -> None:
    response = post_form(browser, prompt="none")
    response = browser.get(response.location)
    callback = urlsplit(response.location)
    page = browser.get(f"{callback.path}?{callback.query}").get_data(as_text=True)
    assert "The provider answered <code>login_required</code>" in page
    assert "Request: <code>prompt=none</code>" in page


def test_an_essential_level_that_does_not_exist_is_refused(browser: Browser) -> None:
    response = post_form(browser, acr_values=LOA3, essential="on")
    response = browser.get(response.location)
    assert response.status_code == 302
    callback = urlsplit(response.location)
    page = browser.get(f"{callback.path}?{callback.query}").get_data(as_text=True)
    assert "The provider answered <code>unmet_authentication_requirements</code>" in page


def test_playground_rejects_a_callback_with_a_foreign_state(browser: Browser) -> None:
    post_form(browser)
    assert browser.get("/sandbox/callback?code=x&state=forged").status_code == 400


def test_playground_is_absent_outside_sandbox_mode(
    config: StepupConfig, sqlite_url: str, frozen: object
) -> None:
    app = create_app(
        replace(
            config, provider=replace(config.provider, sandbox=False, sandbox_loopback_clients=False)
        ),
        database_url=sqlite_url,
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
        replace(
            config, provider=replace(config.provider, sandbox=False, sandbox_loopback_clients=False)
        ),
        database_url=sqlite_url,
    )
    response = app.test_client().get(
        "/authorize?client_id=sandbox-playground&redirect_uri=http://127.0.0.1:9000/sandbox/callback"
    )
    assert response.status_code == 400
    assert "Unknown application" in response.get_data(as_text=True)
