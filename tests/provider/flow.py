"""Drive the provider like a browser and a client would, through Flask's test client.

``Browser`` keeps cookies (the test client does), reads the login pages' forms the way the contract
says programs may (by ``autocomplete`` tokens, with the hidden ``csrf_token``), and ``Client`` is an
OIDC client: PKCE S256, state, nonce, code exchange.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from werkzeug.test import TestResponse

from provider.app import Provider
from provider.factors import totp

ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CLI_REDIRECT = "http://127.0.0.1:8765/callback"
WEB_REDIRECT = "http://127.0.0.1:8000/callback"
LOA1 = "urn:stepup:loa:1"
LOA2 = "urn:stepup:loa:2"


@dataclass
class Form:
    action: str
    method: str
    inputs: list[dict[str, str]] = field(default_factory=list)

    def by_autocomplete(self, token: str) -> dict[str, str] | None:
        return next((i for i in self.inputs if i.get("autocomplete") == token), None)

    def hidden(self) -> dict[str, str]:
        return {i["name"]: i.get("value", "") for i in self.inputs if i.get("type") == "hidden"}


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.alerts: list[str] = []
        self._in_alert = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs.append(a)
        if a.get("role") == "alert":
            self._in_alert += 1
            self.alerts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._in_alert:
            self._in_alert -= 1

    def handle_data(self, data: str) -> None:
        if self._in_alert:
            self.alerts[-1] += data


def parse_page(html: str) -> _FormParser:
    p = _FormParser()
    p.feed(html)
    return p


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """A user agent at the provider: follows its redirects, fills its forms."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.http: FlaskClient = app.test_client()
        self.pages: list[str] = []  # the kinds of page shown: "password", "otp", "enrol"

    @property
    def op(self) -> Provider:
        provider: Provider = self.app.extensions["stepup_provider"]
        return provider

    def get(self, url: str, **kw: Any) -> TestResponse:
        return self.http.get(url, **kw)

    def page_kind(self, html: str) -> str:
        form = parse_page(html).forms[0]
        if form.by_autocomplete("current-password"):
            return "password"
        if "/enrol" in form.action:
            return "enrol"
        if form.by_autocomplete("one-time-code"):
            return "otp"
        return "other"

    def submit(
        self,
        response: TestResponse,
        values: dict[str, str],
        action: str = "continue",
        csrf: bool = True,
    ) -> TestResponse:
        """Fill the page's form: ``values`` maps autocomplete tokens to what to type."""
        form = parse_page(response.get_data(as_text=True)).forms[0]
        data = form.hidden()
        if not csrf:
            data.pop("csrf_token", None)
        for token, value in values.items():
            field_ = form.by_autocomplete(token)
            assert field_ is not None, f"no input with autocomplete={token}"
            data[field_["name"]] = value
        data["action"] = action
        return self.http.post(form.action, data=data)

    def login_through(
        self,
        start: TestResponse,
        *,
        username: str = "alice",
        password: str = "wonderland",
        secret: str | None = ALICE_SECRET,
        max_pages: int = 6,
    ) -> TestResponse:
        """Follow redirects and fill every page until the provider redirects to the client."""
        response = start
        for _ in range(max_pages):
            if response.status_code in (302, 303) and response.location.startswith("/"):
                response = self.http.get(response.location)
                continue
            if response.status_code != 200:
                return response
            html = response.get_data(as_text=True)
            kind = self.page_kind(html)
            self.pages.append(kind)
            if kind == "password":
                response = self.submit(
                    response, {"username": username, "current-password": password}
                )
            elif kind == "otp":
                assert secret is not None
                response = self.submit(
                    response, {"one-time-code": totp.code_at(secret, self.op.clock.now())}
                )
            elif kind == "enrol":
                code_secret = _shown_secret(html)  # the secret is shown on the page
                response = self.submit(
                    response, {"one-time-code": totp.code_at(code_secret, self.op.clock.now())}
                )
            else:
                raise AssertionError(f"unexpected page: {html[:200]}")
        return response


def _shown_secret(html: str) -> str:
    start = html.index('<code class="secret">') + len('<code class="secret">')
    return html[start : html.index("</code>", start)]


def redirect_status(response: TestResponse) -> int:
    """The status of a redirect to the client: RFC 9700 §4.12 — 303 when it answers the posted
    last factor (the browser must not re-post the form to the client); 302 when ``/authorize``
    (a GET) finds the session enough already."""
    return 303 if response.request.method == "POST" else 302


class Client:
    """An OIDC relying party (public ``bank-cli`` or confidential ``bank-web``)."""

    def __init__(
        self,
        browser: Browser,
        client_id: str = "bank-cli",
        redirect_uri: str = CLI_REDIRECT,
        secret: str | None = None,
    ) -> None:
        self.browser = browser
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.secret = secret
        self.verifier, self.challenge = pkce_pair()
        self.state = secrets.token_urlsafe(8)
        self.nonce = secrets.token_urlsafe(8)

    def authorize_params(self, **extra: str) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile offline_access",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **extra: str) -> TestResponse:
        return self.browser.get("/authorize", query_string=self.authorize_params(**extra))

    def sign_in(self, **extra: Any) -> dict[str, str]:
        """Authorize, log in through the pages, and return the callback's query parameters."""
        login_kw = {k: extra.pop(k) for k in ("username", "password", "secret") if k in extra}
        response = self.browser.login_through(self.authorize(**extra), **login_kw)
        assert response.status_code == redirect_status(response), response.get_data(as_text=True)[
            :300
        ]
        assert response.location.startswith(self.redirect_uri)
        return query_of(response.location)

    def exchange(self, code: str, **overrides: str) -> TestResponse:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
        }
        data.update(overrides)
        return self.token_request(data)

    def token_request(self, data: dict[str, str]) -> TestResponse:
        if self.secret is None:
            data = {"client_id": self.client_id, **data}
            return self.browser.http.post("/token", data=data)
        return self.browser.http.post("/token", data=data, auth=(self.client_id, self.secret))

    def tokens(self, **extra: Any) -> dict[str, Any]:
        callback = self.sign_in(**extra)
        response = self.exchange(callback["code"])
        assert response.status_code == 200, response.json
        body: dict[str, Any] = response.json  # type: ignore[assignment]
        return body


def claims(app: Flask, token: str) -> dict[str, Any]:
    """Verify a token with the provider's published keys and return its claims."""
    provider: Provider = app.extensions["stepup_provider"]
    decoded = jwt.decode(token, provider.keys.current, algorithms=["RS256"])
    return dict(decoded.claims)


def header(token: str) -> dict[str, Any]:
    import json

    return dict(json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")))
