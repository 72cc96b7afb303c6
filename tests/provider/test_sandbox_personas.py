"""Personas on ``/sandbox``: one click signs a seeded user in at a chosen level.

What they must do: leave the provider session the login pages would have left (every factor of
the level verified now), so the next authorization request is answered without a page and its
tokens carry that ``acr``, ``amr`` and ``auth_time``; behave exactly like such a session afterwards
(``max_age``, ``prompt=login``, a higher level, the elevation lifetime still ask); refuse a level
the user lacks a factor for, with the reason; take a form post with its CSRF token only; appear on
the timeline; and not exist outside sandbox mode.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from provider import create_app, store
from provider.acr import AcrLevel
from provider.sandbox_personas import options, refusal, session_factors
from provider.views.interaction import SESSION_COOKIE
from stepup.config import StepupConfig

from .conftest import T0_EPOCH
from .flow import CLI_REDIRECT, LOA1, LOA2, Browser, Client, claims, parse_page, query_of

PERSONAS = "/sandbox/personas"


def persona(
    browser: Browser, username: str, acr: str, *, then: str | None = None, csrf: bool = True
) -> TestResponse:
    """Click ``acr``'s button in ``username``'s persona form on /sandbox."""
    forms = parse_page(browser.get("/sandbox").get_data(as_text=True)).forms
    form = next(f for f in forms if f.action == PERSONAS and f.hidden()["username"] == username)
    assert form.method == "post"
    data = {**form.hidden(), "acr": acr}
    if not csrf:
        data.pop("csrf_token")
    if then is not None:
        data["then"] = then
    return browser.http.post(PERSONAS, data=data)


def session_cookie(response: TestResponse) -> str:
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(SESSION_COOKIE)]
    return cookie


def test_a_persona_at_level_two_makes_the_next_sign_in_silent(app: Flask) -> None:
    browser = Browser(app)
    clicked = persona(browser, "alice", LOA2)
    assert clicked.status_code == 303
    assert clicked.location == "/sandbox#personas"
    cookie = session_cookie(clicked)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie

    cli = Client(browser)
    answer = cli.authorize(acr_values=LOA2)
    assert answer.status_code == 302  # a code at once: no login page
    assert answer.location.startswith(CLI_REDIRECT)
    assert browser.pages == []
    tokens = cli.exchange(query_of(answer.location)["code"]).get_json()
    for token in (tokens["id_token"], tokens["access_token"]):
        got = claims(app, token)
        assert (got["acr"], got["amr"], got["auth_time"]) == (LOA2, ["pwd", "otp", "mfa"], T0_EPOCH)


def test_a_persona_at_level_one_steps_up_with_the_code_only(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    assert persona(browser, "alice", LOA1).status_code == 303
    cli = Client(browser)
    callback = query_of(browser.login_through(cli.authorize(acr_values=LOA2)).location)
    assert browser.pages == ["otp"]  # the password counts: the persona verified it
    got = claims(sqlite_app, cli.exchange(callback["code"]).get_json()["access_token"])
    assert (got["acr"], got["amr"]) == (LOA2, ["pwd", "otp", "mfa"])


def test_an_alias_names_its_level(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    assert persona(browser, "alice", "urn:okta:loa:2fa:any").status_code == 303
    cli = Client(browser)
    answer = cli.authorize(acr_values=LOA2)
    assert answer.status_code == 302
    got = claims(sqlite_app, cli.exchange(query_of(answer.location)["code"]).get_json()["id_token"])
    assert got["acr"] == LOA2


@pytest.mark.parametrize(
    ("extra", "ticks", "pages"),
    [
        ({"prompt": "login"}, 0, ["password", "otp"]),
        ({"max_age": "0"}, 0, ["password", "otp"]),
        ({"max_age": "60"}, 61, ["password", "otp"]),
        ({"max_age": "60"}, 60, []),
        ({}, 901, ["otp"]),  # the loa:2 elevation lasts 900 s; the password keeps loa:1
    ],
)
def test_a_persona_session_then_behaves_like_a_real_one(
    sqlite_app: Flask,
    frozen: FrozenDateTimeFactory,
    extra: dict[str, str],
    ticks: int,
    pages: list[str],
) -> None:
    browser = Browser(sqlite_app)
    assert persona(browser, "alice", LOA2).status_code == 303
    frozen.tick(ticks)
    cli = Client(browser)
    callback = query_of(browser.login_through(cli.authorize(acr_values=LOA2, **extra)).location)
    assert browser.pages == pages
    got = claims(sqlite_app, cli.exchange(callback["code"]).get_json()["id_token"])
    assert got["acr"] == LOA2
    assert got["auth_time"] == (T0_EPOCH if not pages else T0_EPOCH + ticks + (ticks == 0))


def test_a_user_without_a_code_is_refused_the_level_with_the_reason(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    html = browser.get("/sandbox").get_data(as_text=True)
    assert f'data-persona="bob {LOA1}"' in html
    assert f'data-persona="bob {LOA2}"' not in html  # no button that cannot work
    reason = (
        f"bob has no one-time code set up, so the sandbox cannot sign bob in at {LOA2} "
        "(password + one-time code): a persona never pretends a factor the user does not have. "
        "Sign in as bob in the playground, asking for this level: the login pages offer to set "
        "up a one-time code on the way (a QR code for an authenticator app). Then this button "
        "works."
    )
    assert f'<p class="hint" data-refusal="bob {LOA2}">{reason}</p>' in html

    refused = persona(browser, "bob", LOA2)  # a post made by hand anyway
    assert refused.status_code == 409
    assert reason in refused.get_data(as_text=True)
    assert SESSION_COOKIE not in refused.headers.get("Set-Cookie", "")
    assert Client(browser).authorize().status_code == 303  # nobody signed in: the login page


def test_without_enrolment_the_reason_says_where_a_code_comes_from(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    strict = replace(config, provider=replace(config.provider, allow_totp_enrolment=False))
    browser = Browser(create_app(strict, database_url=sqlite_url))
    refused = persona(browser, "bob", LOA2)
    assert refused.status_code == 409
    assert (
        "The login pages do not offer to set one up either (allow_totp_enrolment = false): give "
        "the user a totp_secret in the configuration."
    ) in refused.get_data(as_text=True)


def test_a_persona_replaces_the_browser_session(app: Flask) -> None:
    browser = Browser(app)
    first = session_cookie(persona(browser, "alice", LOA2)).split(";")[0].split("=", 1)[1]
    assert persona(browser, "bob", LOA1).status_code == 303
    op = browser.op
    with op.db.session() as s:
        assert store.load_session(s, first, op.clock.now()) is None  # alice's session ended
    cli = Client(browser)
    answer = cli.authorize(acr_values=LOA1)
    assert answer.status_code == 302
    got = claims(app, cli.exchange(query_of(answer.location)["code"]).get_json()["id_token"])
    assert (got["acr"], got["amr"], got["preferred_username"]) == (LOA1, ["pwd"], "bob")


def test_the_page_says_who_is_signed_in(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    before = browser.get("/sandbox").get_data(as_text=True)
    assert '<p id="signed-in">Nobody is signed in at the provider in this browser.</p>' in before
    persona(browser, "alice", LOA2)
    after = browser.get("/sandbox").get_data(as_text=True)
    assert (
        '<p class="notice" id="signed-in">This browser is signed in as <strong>alice</strong> at '
        f"<code>{LOA2}</code> (pwd, otp)."
    ) in after
    assert (
        '<a href="/sandbox/try?acr_values=urn%3Astepup%3Aloa%3A2&amp;login_hint=alice">'
        "Try it in the playground</a>"
    ) in after


def test_the_playground_points_to_the_personas(sqlite_app: Flask) -> None:
    html = sqlite_app.test_client().get("/sandbox/try").get_data(as_text=True)
    assert '<a href="/sandbox#personas">persona</a>' in html


def test_then_try_continues_to_the_playground_which_issues_without_a_page(
    sqlite_app: Flask,
) -> None:
    browser = Browser(sqlite_app)
    clicked = persona(browser, "alice", LOA2, then="try")
    assert clicked.status_code == 303
    assert clicked.location == "/sandbox/try?acr_values=urn%3Astepup%3Aloa%3A2&login_hint=alice"
    page = browser.get(clicked.location)
    form = next(f for f in parse_page(page.get_data(as_text=True)).forms if "try" in f.action)
    data = {**form.hidden(), "acr_values": LOA2, "login_hint": "alice", "prompt": ""}
    authorize = browser.http.post(form.action, data=data)
    assert authorize.status_code == 303
    answer = browser.get(authorize.location)
    assert answer.status_code == 302  # no login page
    callback = urlsplit(answer.location)
    assert callback.path == "/sandbox/callback"
    result = browser.get(f"{callback.path}?{callback.query}").get_data(as_text=True)
    assert "Signed in as alice" in result
    assert f"<code>{LOA2}</code>" in result


def test_the_timeline_shows_the_persona_sign_in(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    persona(browser, "alice", LOA2)
    Client(browser).authorize(acr_values=LOA2)
    http = sqlite_app.test_client()
    steps = http.get("/sandbox/timeline", headers={"Accept": "application/json"}).get_json()
    text = (
        f"persona sign-in: alice at acr={LOA2} amr=pwd,otp,mfa auth_time={T0_EPOCH} "
        "(no login page for requests up to this level)"
    )
    assert steps["steps"][0] == {
        "at": T0_EPOCH,
        "from": "Sandbox",
        "to": "Provider",
        "text": text,
        "details": {
            "username": "alice",
            "acr": LOA2,
            "amr": ["pwd", "otp", "mfa"],
            "auth_time": T0_EPOCH,
        },
        "kind": "persona",
    }
    assert [s["text"] for s in steps["steps"][1:]] == [
        f"GET /authorize client_id=bank-cli acr_values={LOA2}",
        "redirect with an authorization code",
    ]
    mermaid = http.get("/sandbox/timeline.mmd").get_data(as_text=True).splitlines()
    assert mermaid[4] == f"    Note over Provider: {text}"


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"acr": "urn:nowhere"}, 400, "The acr &#39;urn:nowhere&#39; is not a level here"),
        ({"acr": ""}, 400, "The acr &#39;&#39; is not a level here"),
        ({"username": "mallory"}, 400, "There is no user &#39;mallory&#39; in this sandbox."),
        ({"username": ""}, 400, "There is no user &#39;&#39; in this sandbox."),
        ({"then": "https://evil.example/"}, 400, "then is empty or try (the playground)."),
    ],
)
def test_bad_input_is_refused(
    sqlite_app: Flask, change: dict[str, str], status: int, says: str
) -> None:
    browser = Browser(sqlite_app)
    form = next(
        f
        for f in parse_page(browser.get("/sandbox").get_data(as_text=True)).forms
        if f.action == PERSONAS
    )
    answer = browser.http.post(PERSONAS, data={**form.hidden(), "acr": LOA1, **change})
    assert answer.status_code == status
    assert says in answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers or SESSION_COOKIE not in answer.headers["Set-Cookie"]


def test_a_post_without_its_csrf_token_signs_nobody_in(sqlite_app: Flask) -> None:
    browser = Browser(sqlite_app)
    answer = persona(browser, "alice", LOA2, csrf=False)
    assert answer.status_code == 400
    assert "This form has expired" in answer.get_data(as_text=True)
    assert Client(browser).authorize().status_code == 303  # the login page: no session


def test_a_get_changes_nothing(sqlite_app: Flask) -> None:
    answer = sqlite_app.test_client().get(PERSONAS, query_string={"username": "alice", "acr": LOA2})
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_personas_do_not_exist_outside_the_sandbox(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    plain = replace(
        config, provider=replace(config.provider, sandbox=False, sandbox_loopback_clients=False)
    )
    browser = Browser(create_app(plain, database_url=sqlite_url))
    login_page = browser.get(
        browser.get("/authorize", query_string=Client(browser).authorize_params()).location
    )
    token = parse_page(login_page.get_data(as_text=True)).forms[0].hidden()["csrf_token"]
    answer = browser.http.post(
        PERSONAS, data={"csrf_token": token, "username": "alice", "acr": LOA2}
    )
    assert answer.status_code == 404
    assert SESSION_COOKIE not in answer.headers.get("Set-Cookie", "")


# --- the pure part: provider/sandbox_personas.py ------------------------------------------------


def _level(value: str, *factors: str, rank: int = 0) -> AcrLevel:
    return AcrLevel(value, factors, (), None, "", rank)


def test_options_name_what_each_level_lacks_for_any_factor() -> None:
    levels = [
        _level("l1", "pwd"),
        _level("l2", "pwd", "otp", rank=1),
        _level("phr", "passkey", rank=2),
    ]
    got = [(o.level.value, o.missing, o.available) for o in options(levels, {"pwd"})]
    assert got == [("l1", (), True), ("l2", ("otp",), False), ("phr", ("passkey",), False)]
    assert options(levels, {"pwd", "otp", "passkey"})[2].available
    assert options(levels, {"pwd"})[1].factors_text == "password + one-time code"


def test_a_level_without_a_one_time_code_says_how_to_get_one() -> None:
    (option,) = options([_level("l2", "pwd", "otp")], {"pwd"})
    assert refusal("bob", option, enrolment=True) == (
        "bob has no one-time code set up, so the sandbox cannot sign bob in at l2 (password + "
        "one-time code): a persona never pretends a factor the user does not have. Sign in as "
        "bob in the playground, asking for this level: the login pages offer to set up a "
        "one-time code on the way (a QR code for an authenticator app). Then this button works."
    )


def test_another_factor_is_named_and_sent_to_the_login_pages() -> None:
    (option,) = options([_level("phr", "passkey", "otp", rank=2)], {"pwd"})
    assert refusal("carol", option, enrolment=True) == (
        "carol has no passkey and one-time code set up, so the sandbox cannot sign carol in at "
        "phr (passkey + one-time code): a persona never pretends a factor the user does not "
        "have. Set it up for carol through the provider's login pages first (in the playground, "
        "asking for this level); then this button works."
    )
    (unknown,) = options([_level("hw", "hwk")], {"pwd"})
    assert refusal("dan", unknown, enrolment=False).startswith(
        "dan has no hwk set up, so the sandbox cannot sign dan in at hw (hwk)"
    )


def test_the_session_holds_every_factor_of_the_level_at_now() -> None:
    assert session_factors(_level("l2", "pwd", "otp"), 1700000000) == {
        "pwd": 1700000000,
        "otp": 1700000000,
    }
