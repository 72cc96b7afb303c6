"""HeadlessAuthenticator against a tiny Flask login on 127.0.0.1 (DESIGN contract 4 pages)."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask, redirect, request, session
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from client_sdk import (
    AuthenticatorError,
    FactorsRequested,
    HeadlessAuthenticator,
    LoginFailed,
    LoginRequest,
    WaitingForNextCode,
)
from client_sdk.authenticators.forms import parse_page
from client_sdk.authenticators.totp import decode_secret, totp
from client_sdk.hooks import Event
from client_sdk.protocol import PendingAuthorization, Requirement

REDIRECT_URI = "http://127.0.0.1:8765/callback"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_000


@dataclass
class Posts:
    """What the fake provider saw, and its clock (which ``sleep`` below moves)."""

    forms: list[dict[str, list[str]]] = field(default_factory=list)
    now: float = NOW
    last_step: int | None = None  # the TOTP step last accepted: an equal or older one is a replay
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def page(title: str, inputs: str, alert: str | None = None, error: str | None = None) -> str:
    code = f' data-error="{error}"' if error else ""
    alert_html = f'<div role="alert"{code}><p>{html.escape(alert)}</p></div>' if alert else ""
    return f"""<!doctype html><html><head><title>Sign in</title>
<style>.x{{}}</style></head><body><p class="banner">Sandbox: test users only</p>
<h1>{title}</h1><p id="why">A transfer needs level 2.</p>{alert_html}
<form method="post" action="/login" aria-describedby="why">
  <input type="hidden" name="csrf_token" value="tok-123">
  {inputs}
  <button type="submit" name="action" value="cancel">Cancel</button>
  <button type="submit" name="action" value="continue">Continue</button>
</form></body></html>"""


PASSWORD_INPUTS = (
    '<input name="username" autocomplete="username">'
    '<input name="password" type="password" autocomplete="current-password">'
)
OTP_INPUTS = (
    '<label for="code">6-digit code</label><input id="code" name="code" inputmode="numeric" '
    'autocomplete="one-time-code">'
)


def make_app(posts: Posts) -> Flask:
    app = Flask(__name__)
    app.secret_key = "test"

    def finish() -> Response:
        query = urlencode({"code": "c-1", "state": session["state"], "iss": request.host_url[:-1]})
        return redirect(f"{session['redirect_uri']}?{query}")

    @app.get("/authorize")
    def authorize() -> Response:
        session["state"] = request.args["state"]
        session["redirect_uri"] = request.args["redirect_uri"]
        session["loa2"] = request.args.get("acr_values") == "urn:stepup:loa:2"
        if request.args.get("loop"):
            return redirect("/authorize?" + request.query_string.decode())
        if request.args.get("away"):
            return redirect("https://elsewhere.example/login")
        return redirect("/login")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        step = "otp" if session.get("pwd") else "pwd"
        if request.method == "POST":
            posts.forms.append({k: request.form.getlist(k) for k in request.form})
            if request.form.get("csrf_token") != "tok-123":
                return "bad csrf", 400
            if request.form.get("action") != "continue":
                return "cancelled", 400
            if step == "pwd":
                if request.form.get("password") != "wonderland":
                    return page("Sign in", PASSWORD_INPUTS, "Wrong username or password.")
                session["pwd"] = True
                return redirect("/login") if session["loa2"] else finish()
            step = int(posts.now // 30)
            if request.form.get("code") != totp(decode_secret(SECRET), posts.now):
                return page("Enter your one-time code", OTP_INPUTS, "That code is not valid.")
            if posts.last_step is not None and step <= posts.last_step:
                return Response(
                    page("Enter your one-time code", OTP_INPUTS, "Already used.", "replayed"),
                    status=401,
                )
            posts.last_step = step
            return finish()
        if step == "otp":
            return page("Enter your one-time code: a transfer needs level 2", OTP_INPUTS)
        return page("Sign in", PASSWORD_INPUTS)

    return app


@pytest.fixture
def posts() -> Posts:
    return Posts()


@pytest.fixture
def issuer(posts: Posts) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, make_app(posts))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def login_request(
    issuer: str, events: list[Event], requirement: Requirement | None = None, **query: str
) -> LoginRequest:
    requirement = requirement or Requirement()

    def build(redirect_uri: str) -> tuple[str, PendingAuthorization]:
        pending = PendingAuthorization(
            issuer, "bank-cli", redirect_uri, "openid", "s-1", "n-1", "v", requirement
        )
        params = {"state": "s-1", "redirect_uri": redirect_uri, **query}
        if requirement.acr_values:
            params["acr_values"] = " ".join(requirement.acr_values)
        return f"{issuer}/authorize?{urlencode(params)}", pending

    return LoginRequest(
        issuer=issuer,
        requirement=requirement,
        redirect_uri=REDIRECT_URI,
        build=build,
        emit=events.append,
    )


LOA2 = Requirement(("urn:stepup:loa:2",))


def factors(events: list[Event]) -> list[tuple[str, ...]]:
    return [e.factors for e in events if isinstance(e, FactorsRequested)]


def test_login_then_step_up_asks_only_for_the_otp(issuer: str, posts: Posts) -> None:
    authenticator = HeadlessAuthenticator(
        "alice", "wonderland", totp_secret=SECRET, clock=lambda: NOW
    )
    events: list[Event] = []
    callback = authenticator.authenticate(login_request(issuer, events))
    parts = urlsplit(callback)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI
    assert parse_qs(parts.query) == {"code": ["c-1"], "state": ["s-1"], "iss": [issuer]}
    assert factors(events) == [("pwd",)]
    assert posts.forms[0] == {
        "csrf_token": ["tok-123"],
        "username": ["alice"],
        "password": ["wonderland"],
        "action": ["continue"],
    }

    events.clear()
    callback = authenticator.authenticate(login_request(issuer, events, LOA2))
    assert parse_qs(urlsplit(callback).query)["code"] == ["c-1"]
    assert factors(events) == [("otp",)]
    otp_event = next(e for e in events if isinstance(e, FactorsRequested))
    # The prompt: heading, the description the input points at, its label. Not the banner.
    assert otp_event.page_text == (
        "Enter your one-time code: a transfer needs level 2\n"
        "A transfer needs level 2.\n"
        "6-digit code"
    )
    assert posts.forms[1] == {
        "csrf_token": ["tok-123"],
        "code": [totp(decode_secret(SECRET), NOW)],
        "action": ["continue"],
    }


def test_wrong_password_raises_login_failed_with_the_alert(issuer: str, posts: Posts) -> None:
    authenticator = HeadlessAuthenticator("alice", "wrong")
    with pytest.raises(LoginFailed) as caught:
        authenticator.authenticate(login_request(issuer, []))
    assert caught.value.alert == "Wrong username or password."
    assert str(caught.value) == "the provider refused the login: Wrong username or password."
    assert len(posts.forms) == 1  # no second attempt


def test_wrong_code_raises_login_failed(issuer: str) -> None:
    authenticator = HeadlessAuthenticator("alice", "wonderland", totp=lambda: "000000")
    with pytest.raises(LoginFailed) as caught:
        authenticator.authenticate(login_request(issuer, [], LOA2))
    assert caught.value.alert == "That code is not valid."


# --- one-time codes are single use: wait for the next step instead of replaying -------------------

STEP = NOW // 30


def code_at(step: int) -> str:
    return totp(decode_secret(SECRET), step * 30)


def alice_at(posts: Posts, **kwargs: object) -> HeadlessAuthenticator:
    return HeadlessAuthenticator(
        "alice", "wonderland", SECRET, clock=lambda: posts.now, sleep=posts.sleep, **kwargs
    )


def sent_codes(posts: Posts) -> list[str]:
    return [f["code"][0] for f in posts.forms if "code" in f]


def test_a_code_another_run_used_is_followed_by_the_next_steps_code(
    issuer: str, posts: Posts
) -> None:
    posts.last_step = STEP  # an earlier run of the same script used this step's code
    events: list[Event] = []
    callback = alice_at(posts).authenticate(login_request(issuer, events, LOA2))
    assert parse_qs(urlsplit(callback).query)["code"] == ["c-1"]
    assert posts.slept == [10.0]  # NOW is 20 s into its step: 10 s to the next one
    assert sent_codes(posts) == [code_at(STEP), code_at(STEP + 1)]
    assert posts.last_step == STEP + 1
    url = f"{issuer}/login"
    assert [e for e in events if isinstance(e, WaitingForNextCode)] == [
        WaitingForNextCode(10.0, "replayed", url)
    ]
    # The page asked twice; the second time it said why.
    assert [e.page_text for e in events if isinstance(e, FactorsRequested)][1:] == [
        "Enter your one-time code: a transfer needs level 2\nA transfer needs level 2.\n"
        "6-digit code",
        "Enter your one-time code\nA transfer needs level 2.\n6-digit code\nAlready used.",
    ]


def test_the_same_authenticator_never_sends_one_steps_code_twice(issuer: str, posts: Posts) -> None:
    authenticator = alice_at(posts)
    events: list[Event] = []
    authenticator.authenticate(login_request(issuer, events, LOA2))
    authenticator.authenticate(login_request(issuer, events, LOA2))  # only the OTP is asked
    # It waited before sending instead of being refused: no code was sent twice.
    assert posts.slept == [10.0]
    assert sent_codes(posts) == [code_at(STEP), code_at(STEP + 1)]
    waits = [e for e in events if isinstance(e, WaitingForNextCode)]
    assert [(w.seconds, w.reason) for w in waits] == [(10.0, "used")]


def test_replays_are_retried_twice_then_fail_with_the_providers_code(
    issuer: str, posts: Posts
) -> None:
    posts.last_step = STEP + 100  # a provider that calls every code a replay
    with pytest.raises(LoginFailed) as caught:
        alice_at(posts).authenticate(login_request(issuer, [], LOA2))
    assert caught.value.error == "replayed"
    assert caught.value.alert == "Already used."
    assert sent_codes(posts) == [code_at(STEP), code_at(STEP + 1), code_at(STEP + 2)]
    assert posts.slept == [10.0, 30.0]


def test_a_clock_that_sleep_does_not_move_is_a_clear_error(issuer: str, posts: Posts) -> None:
    posts.last_step = STEP
    slept: list[float] = []
    authenticator = HeadlessAuthenticator(
        "alice", "wonderland", SECRET, clock=lambda: NOW, sleep=slept.append
    )
    with pytest.raises(AuthenticatorError, match="needs a sleep= that advances it"):
        authenticator.authenticate(login_request(issuer, [], LOA2))
    assert slept == [10.0, 10.0, 10.0]


def test_otp_asked_without_a_secret_is_a_clear_error(issuer: str) -> None:
    authenticator = HeadlessAuthenticator("bob", "wonderland")
    with pytest.raises(AuthenticatorError, match="no totp_secret or totp callback"):
        authenticator.authenticate(login_request(issuer, [], LOA2))


def test_pages_are_capped(issuer: str) -> None:
    authenticator = HeadlessAuthenticator("alice", "wonderland", max_pages=4)
    with pytest.raises(AuthenticatorError, match="after 4 pages"):
        authenticator.authenticate(login_request(issuer, [], loop="1"))


def test_redirects_outside_the_provider_are_not_followed(issuer: str) -> None:
    authenticator = HeadlessAuthenticator("alice", "wonderland")
    with pytest.raises(AuthenticatorError, match="neither the provider nor the redirect URI"):
        authenticator.authenticate(login_request(issuer, [], away="1"))


def test_secret_and_callback_are_exclusive() -> None:
    from client_sdk import ConfigurationError

    with pytest.raises(ConfigurationError, match="not both"):
        HeadlessAuthenticator("a", "b", totp_secret=SECRET, totp=lambda: "1")


def test_repr_never_shows_the_password() -> None:
    assert repr(HeadlessAuthenticator("alice", "wonderland")) == (
        "HeadlessAuthenticator(username='alice')"
    )


# --- the page reader and TOTP ---------------------------------------------------------------------


def test_page_reader_finds_fields_buttons_alert_and_text() -> None:
    parsed = parse_page(page("Sign in", PASSWORD_INPUTS, "Locked & loaded"))
    form = parsed.forms[0]
    assert (form.method, form.action) == ("post", "/login")
    assert [(f.name, f.type, f.autocomplete) for f in form.fields] == [
        ("csrf_token", "hidden", ()),
        ("username", "text", ("username",)),
        ("password", "password", ("current-password",)),
    ]
    assert [(b.name, b.value) for b in form.buttons] == [
        ("action", "cancel"),
        ("action", "continue"),
    ]
    assert parsed.alert == "Locked & loaded"
    assert parsed.text == (
        "Sandbox: test users only Sign in A transfer needs level 2. Locked & loaded Cancel Continue"
    )
    # No labels on these inputs: the heading, what the form is described by, the alert.
    assert parsed.prompt(form, ("username", "current-password")) == (
        "Sign in\nA transfer needs level 2.\nLocked & loaded"
    )


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1234567890, "89005924"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_appendix_b_sha1_vectors(now: int, code: str) -> None:
    assert totp(b"12345678901234567890", now, digits=8) == code


def test_base32_secret_is_read_as_apps_show_it() -> None:
    assert decode_secret("jbsw y3dp ehpk 3pxp") == b"Hello!\xde\xad\xbe\xef"


def test_bad_base32_secret_is_a_configuration_error() -> None:
    from client_sdk import ConfigurationError

    with pytest.raises(ConfigurationError, match="base32"):
        decode_secret("not base32!")


def test_prompt_reads_wrapping_labels_and_leaves_out_the_rest_of_the_page() -> None:
    # An enrolment-like page: the secret is on the page, never in the prompt.
    parsed = parse_page(
        """<header>Stepup</header><h1>Set up one-time codes</h1>
        <p id="r">A transfer needs <b>level 2</b>.</p><p id="l">Level: urn:stepup:loa:2</p>
        <ol><li>Enter this key: <code>JBSWY3DPEHPK3PXP</code></li></ol>
        <p role="alert" data-error="expired">That code has expired.</p>
        <form method="post"><label>Code from the app
          <input name="code" autocomplete="one-time-code" aria-describedby="r l missing r">
        </label><button name="action" value="continue">Go</button></form>"""
    )
    assert parsed.alert_codes == ["expired"]
    prompt = parsed.prompt(parsed.forms[0], ("one-time-code",))
    assert prompt == (
        "Set up one-time codes\nCode from the app\nA transfer needs level 2.\n"
        "Level: urn:stepup:loa:2\nThat code has expired."
    )
    assert "JBSWY3DPEHPK3PXP" in parsed.text
    assert "JBSWY3DPEHPK3PXP" not in prompt
