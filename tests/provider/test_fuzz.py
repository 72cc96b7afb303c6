"""Fuzzing every provider endpoint: no 5xx, no traceback, no redirect off the registered URIs.

DESIGN.md "Bad input": no input yields a ``500``; an error goes back as the spec names it, and a
redirect only ever goes to a registered redirect URI (RFC 6749 §4.1.2.1, RFC 9700 §4.1.3). Each test
draws whole requests — parameters of the endpoint (often a valid request with a few values
changed), arbitrary Unicode and control characters, repeated parameters, odd methods, bodies in
the wrong encoding — and checks every response with :func:`tests.fuzz.check`. Real codes, tokens,
sessions and CSRF tokens are in the pools, so the fuzz reaches past the first validation step.
The budgets are for CI (see ``tests/fuzz.py`` for the deeper profile).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from provider.factors import totp
from provider.models import Client as ClientRow

from ..fuzz import check, fuzz_settings, hostile_text, requests, run
from .flow import (
    ALICE_SECRET,
    CLI_REDIRECT,
    LOA1,
    LOA2,
    WEB_REDIRECT,
    Browser,
    Client,
    parse_page,
    query_of,
)

WEB_SECRET = "bank-web-secret-for-the-local-sandbox"
JOB_SECRET = "reports-job-secret-for-the-local-sandbox"
CLIENT_IDS = ["bank-cli", "bank-web", "reports-job", "sandbox-playground", "nobody", "BANK-CLI"]
REDIRECTS = [
    CLI_REDIRECT, WEB_REDIRECT, "http://127.0.0.1:51234/callback", "http://[::1]:8765/callback",
    "HTTP://127.0.0.1:8765/callback", CLI_REDIRECT + "?", CLI_REDIRECT + "#",
    CLI_REDIRECT + "\n", " " + CLI_REDIRECT, "http://127.0.0.1:8765@evil.example/callback",
    "https://evil.example/callback", "http://127.0.0.1:0/callback",
]  # fmt: skip


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


AUTHORIZATIONS = st.sampled_from([
    None, basic("bank-web", WEB_SECRET), basic("reports-job", JOB_SECRET), basic("bank-web", "x"),
    basic("bank-cli", ""), "Basic", "Basic !!!", "Bearer x", basic("\u00e9\x00", '"\\'),
])  # fmt: skip


class Issued:
    """A provider with real artefacts of a finished sign-in, to put in the fuzzers' pools."""

    def __init__(self, browser: Browser, cli: Client, web_tokens: dict[str, Any],
                 cli_tokens: dict[str, Any], code: str, registered: list[str]) -> None:  # fmt: skip
        self.browser, self.cli, self.code, self.registered = browser, cli, code, registered
        self.web_tokens, self.cli_tokens = web_tokens, cli_tokens

    def __repr__(self) -> str:
        return "Issued(...)"  # the tokens would fill a failure report


@pytest.fixture
def issued(sqlite_app: Flask) -> Issued:
    browser = Browser(sqlite_app)
    web = Client(browser, "bank-web", WEB_REDIRECT, secret=WEB_SECRET)
    web_tokens = web.tokens(scope="openid profile email offline_access")
    cli = Client(browser)
    cli_tokens = cli.tokens()
    code = cli.sign_in()["code"]  # not exchanged: a live code for the token fuzzer
    with browser.op.db.session() as s:
        rows = list(s.scalars(select(ClientRow)))
    registered = [u for r in rows for u in (*r.redirect_uris, *r.post_logout_redirect_uris)]
    assert CLI_REDIRECT in registered
    assert "http://127.0.0.1:8000/" in registered
    return Issued(browser, cli, web_tokens, cli_tokens, code, registered)


# --- /authorize ----------------------------------------------------------------------------------


def authorize_pools(i: Issued) -> dict[str, list[str]]:
    return {
        "response_type": ["code", "token", "code id_token", "none", "CODE"],
        "client_id": CLIENT_IDS,
        "redirect_uri": REDIRECTS,
        "scope": ["openid", "openid profile email offline_access", "accounts:read", "profile"],
        "state": ["s"],
        "nonce": ["n"],
        "code_challenge": [i.cli.challenge, "short"],
        "code_challenge_method": ["S256", "plain", "s256"],
        "prompt": ["none", "login", "consent", "select_account", "none login", "create"],
        "max_age": ["0", "300", "-1", "\u0661\u0662", "\u00b2", "99999999999"],
        "acr_values": [LOA1, LOA2, f"{LOA2} {LOA1}", "urn:unknown", "phr", "mfa"],
        "claims": [
            '{"id_token":{"acr":{"essential":true,"values":["urn:stepup:loa:2"]}}}',
            '{"id_token":{"acr":{"essential":true,"values":["urn:nope"]}}}',
            '{"id_token":{"acr":{"essential":true}}}', '{"id_token":[]}', "[]", "{", "null",
            '{"userinfo":{"email":null}}',
        ],
        "login_hint": ["alice", "bob", "ALICE", "nobody", ""],
        "id_token_hint": [i.cli_tokens["id_token"], i.web_tokens["id_token"], "a.b.c"],
        "request": ["eyJhbGciOiJub25lIn0.e30."], "request_uri": ["https://evil.example/r"],
        "response_mode": ["query", "fragment", "form_post"], "display": ["page", "popup"],
        "ui_locales": ["en fr"], "resource": ["https://bank.example/api"],
    }  # fmt: skip


@fuzz_settings(300)
@given(data=st.data())
def test_fuzzed_authorization_requests(
    issued: Issued, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    http = issued.browser.http
    request = data.draw(requests(issued.cli.authorize_params(), authorize_pools(issued)))
    response = run(caplog, lambda: http.open("/authorize", **request))
    check(response, caplog, issued.registered, request)
    if response.status_code == 303 and response.location.startswith("/interaction/"):
        # The saved request meets the policy on the interaction page.
        page = run(caplog, lambda: http.get(response.location))
        check(page, caplog, issued.registered, (request, "page"))
    if response.status_code == 302:
        q = query_of(response.location)
        assert q.get("iss") == "http://127.0.0.1:9000", (request, q)


# --- /token, every grant -------------------------------------------------------------------------

GRANT_TYPES = [
    "authorization_code", "refresh_token", "client_credentials", "password", "implicit",
    "urn:ietf:params:oauth:grant-type:device_code", "urn:openid:params:grant-type:ciba",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange",
]  # fmt: skip


def token_pools(i: Issued) -> dict[str, list[str]]:
    return {
        "grant_type": GRANT_TYPES,
        "code": [i.code, "x"],
        "redirect_uri": REDIRECTS,
        "code_verifier": [i.cli.verifier, "v" * 43, "v" * 129],
        "client_id": CLIENT_IDS,
        "client_secret": [WEB_SECRET, JOB_SECRET, "wrong"],
        "refresh_token": [i.web_tokens["refresh_token"], i.cli_tokens.get("refresh_token", "r")],
        "scope": ["openid", "accounts:read", "openid offline_access", "admin"],
        "client_assertion_type": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
        "client_assertion": ["a.b.c"],
        "username": ["alice"], "password": ["wonderland"], "device_code": ["d"],
        "auth_req_id": ["r"], "assertion": ["a.b.c"], "subject_token": ["t"],
    }  # fmt: skip


@fuzz_settings(300)
@given(data=st.data(), grant=st.sampled_from(GRANT_TYPES), authorization=AUTHORIZATIONS)
def test_fuzzed_token_requests(
    issued: Issued,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
    grant: str,
    authorization: str | None,
) -> None:
    base = {"grant_type": grant, "client_id": "bank-cli", "code": issued.code,
            "redirect_uri": CLI_REDIRECT, "code_verifier": issued.cli.verifier,
            "refresh_token": issued.cli_tokens.get("refresh_token", "r")}  # fmt: skip
    request = data.draw(requests(base, token_pools(issued), methods=("POST",)))
    if authorization is not None:
        request["headers"] = {"Authorization": authorization}
    response = run(caplog, lambda: issued.browser.http.open("/token", **request))
    check(response, caplog, issued.registered, request)
    if request["method"] not in ("HEAD", "OPTIONS"):
        assert response.mimetype == "application/json", (request, response.status_code)
    assert response.status_code in (200, 400, 401, 405, 413), (request, response.status_code)


# --- /introspect and /revoke ---------------------------------------------------------------------


@fuzz_settings(150)
@given(
    data=st.data(), path=st.sampled_from(["/introspect", "/revoke"]), authorization=AUTHORIZATIONS
)
def test_fuzzed_introspection_and_revocation(
    issued: Issued,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
    path: str,
    authorization: str | None,
) -> None:
    tokens = [issued.web_tokens[k] for k in ("access_token", "refresh_token", "id_token")]
    pools = {
        "token": [*tokens, issued.cli_tokens["access_token"], "x"],
        "token_type_hint": ["access_token", "refresh_token", "id_token", "x"],
        "client_id": CLIENT_IDS,
        "client_secret": [WEB_SECRET, "wrong"],
    }
    base = {"token": tokens[0], "token_type_hint": "access_token"}
    request = data.draw(requests(base, pools, methods=("POST",)))
    if authorization is not None:
        request["headers"] = {"Authorization": authorization}
    response = run(caplog, lambda: issued.browser.http.open(path, **request))
    check(response, caplog, issued.registered, request)
    if request["method"] not in ("HEAD", "OPTIONS"):
        assert response.mimetype == "application/json", (request, response.status_code)


# --- /userinfo -----------------------------------------------------------------------------------


@fuzz_settings(150)
@given(data=st.data())
def test_fuzzed_userinfo_requests(
    issued: Issued, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    access = issued.web_tokens["access_token"]
    header = data.draw(st.one_of(
        st.none(),
        st.sampled_from([f"Bearer {access}", f"bearer {access}", f"Bearer  {access} ", "Bearer",
                         f"Bearer {issued.web_tokens['id_token']}", basic("bank-web", WEB_SECRET),
                         f"DPoP {access}"]),
        hostile_text.map(lambda t: f"Bearer {t}"),
        hostile_text,
    ))  # fmt: skip
    request = data.draw(requests({}, {"access_token": [access, "x"], "scope": ["openid"]}))
    if header is not None:
        request["headers"] = {"Authorization": header}
    try:
        response = run(caplog, lambda: issued.browser.http.open("/userinfo", **request))
    except ValueError as exc:  # werkzeug refuses to *send* a header with CR/LF: not our input
        assert "newline" in str(exc) or "control" in str(exc).lower(), exc  # noqa: PT017
        return
    check(response, caplog, issued.registered, request)
    if response.status_code == 401 and header and header.lower().startswith("bearer"):
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), request


# --- the login forms and logout ------------------------------------------------------------------


@dataclass
class Stage:
    browser: Browser
    action: str
    csrf: str


PASSWORDS = {"alice": "wonderland", "bob": "builder"}


def stage_at(app: Flask, frozen: FrozenDateTimeFactory, username: str | None, kind: str) -> Stage:
    """A browser at an interaction's page of ``kind``: the password page, or (after ``username``
    typed the password) the OTP or enrolment page."""
    browser = Browser(app)
    response = browser.get(Client(browser).authorize(acr_values=LOA2).location)
    if username is not None:
        typed = {"username": username, "current-password": PASSWORDS[username]}
        submitted = browser.submit(response, typed)
        if submitted.status_code == 429:  # the fuzz's wrong passwords locked the account
            frozen.tick(24 * 3600)  # past the lock (and past this interaction): start again
            return stage_at(app, frozen, username, kind)
        assert submitted.status_code == 303, submitted.status_code
        response = browser.get(submitted.location)
    html = response.get_data(as_text=True)
    assert browser.page_kind(html) == kind
    form = parse_page(html).forms[0]
    return Stage(browser, form.action, form.hidden()["csrf_token"])


class Stages:
    """The three pages, each rebuilt once its interaction is over (finished or cancelled), so
    that later examples still meet a live form."""

    KINDS = ((None, "password"), ("alice", "otp"), ("bob", "enrol"))

    def __init__(self, app: Flask, frozen: FrozenDateTimeFactory) -> None:
        self.app = app
        self.frozen = frozen
        self.live: dict[int, Stage] = {}

    def __repr__(self) -> str:
        return "Stages(...)"

    def get(self, which: int) -> Stage:
        if which not in self.live:
            self.live[which] = stage_at(self.app, self.frozen, *self.KINDS[which])
        return self.live[which]

    def over(self, which: int) -> None:
        self.live.pop(which, None)


@pytest.fixture
def stages(issued: Issued, frozen: FrozenDateTimeFactory) -> Stages:
    return Stages(issued.browser.app, frozen)


@fuzz_settings(150)
@given(data=st.data(), which=st.integers(0, 2))
def test_fuzzed_login_forms(
    issued: Issued,
    stages: Stages,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
    which: int,
) -> None:
    stage = stages.get(which)
    interaction = stage.action.rsplit("/", 1)[0]
    now = stage.browser.op.clock.now()
    code = totp.code_at(ALICE_SECRET, now)
    path = data.draw(st.one_of(
        st.just(stage.action),
        st.sampled_from([f"{interaction}/{p}" for p in ("password", "otp", "enrol", "x")]),
        hostile_text.map(lambda t: f"/interaction/{t}/password"),
    ))  # fmt: skip
    pools = {
        "csrf_token": [stage.csrf, stage.csrf, "x"],
        "username": ["alice", "bob", "ALICE", " alice ", "nobody"],
        "password": ["wonderland", "builder", "wrong"],
        "code": [code, "".join(chr(0x0660 + int(d)) for d in code), "000000", f" {code} "],
        "action": ["continue", "cancel"],
    }
    base = {"csrf_token": stage.csrf, "action": "continue", "username": "alice",
            "password": "wrong", "code": "000000"}  # fmt: skip
    request = data.draw(
        requests(base, pools, methods=("POST",), fixed={"csrf_token": stage.csrf},
                 encodings=("form", "form", "form", "form", "query", "json", "bytes"))
    )  # fmt: skip
    try:
        response = run(caplog, lambda: stage.browser.http.open(path, **request))
    except ValueError as exc:  # a path werkzeug cannot even build a request for
        assert "url" in str(exc).lower() or "path" in str(exc).lower(), exc  # noqa: PT017
        return
    check(response, caplog, issued.registered, (path, request))
    text = response.get_data(as_text=True)
    if response.status_code == 302 or "has expired" in text or "Already finished" in text:
        stages.over(which)  # the interaction ended (a code or an error went to the client)


@fuzz_settings(150)
@given(data=st.data(), confirm=st.booleans())
def test_fuzzed_logout(
    issued: Issued, caplog: pytest.LogCaptureFixture, data: st.DataObject, confirm: bool
) -> None:
    http = issued.browser.http
    pools = {
        "client_id": CLIENT_IDS,
        "id_token_hint": [issued.web_tokens["id_token"], issued.cli_tokens["id_token"], "a.b.c"],
        "post_logout_redirect_uri": [
            "http://127.0.0.1:8000/", "http://127.0.0.1:8000", "HTTP://127.0.0.1:8000/",
            "http://127.0.0.1:8000/\n", "http://127.0.0.1:8000/?", "https://evil.example/",
            CLI_REDIRECT,
        ],
        "state": ["s"],
        "ui_locales": ["en"],
    }  # fmt: skip
    base = {"client_id": "bank-web", "post_logout_redirect_uri": "http://127.0.0.1:8000/",
            "state": "s", "id_token_hint": issued.web_tokens["id_token"]}  # fmt: skip
    request = data.draw(requests(base, pools))
    response = run(caplog, lambda: http.open("/logout", **request))
    check(response, caplog, issued.registered, request)
    if confirm:
        forms = parse_page(response.get_data(as_text=True)).forms
        csrf = forms[0].hidden().get("csrf_token", "") if forms else ""
        form = data.draw(requests({"csrf_token": csrf}, {"csrf_token": [csrf, "x"]},
                                  methods=("POST",)))  # fmt: skip
        response = run(caplog, lambda: http.open("/logout/confirm", **form))
        check(response, caplog, issued.registered, (request, form))
