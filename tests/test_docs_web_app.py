"""The web-app example of docs/sdk.md, as printed, driven through the real provider's pages.

The example is a Flask app whose ``python web_app.py`` serves forever, so the docs' test only
writes it out; this test imports that text as a module (everything but the ``__main__`` guard runs
as written) and plays the user: the first login, a transfer that needs a step-up, the callback,
the transfer again. The provider and the demo API run on real sockets; the web app is driven with
Flask's test client at the address its registered redirect URI names. It also checks the promise
the page makes: the browser's cookie holds an opaque session id only, and the PKCE verifier never
reaches the browser.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from client_sdk.authenticators.forms import parse_page
from provider.clock import Clock
from provider.factors import totp
from stepup.cli import build_sandbox, sandbox_config

from .servers import Slot, serving
from .test_docs import ROOT, blocks

pytestmark = pytest.mark.e2e

WEB = "http://127.0.0.1:8000"  # the app's own address: its callback is registered there
ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def example_text() -> str:
    (text,) = [b.commands[0] for b in blocks(ROOT / "docs" / "sdk.md") if b.file == "web_app.py"]
    return text


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[str, str]]:
    provider_slot, api_slot = Slot(), Slot()
    with serving(provider_slot) as issuer, serving(api_slot) as api:
        provider_app, api_app = build_sandbox(
            sandbox_config(issuer), f"sqlite:///{tmp_path}/stepup.db", Clock()
        )
        provider_slot.app, api_slot.app = provider_app, api_app
        yield issuer, api


@pytest.fixture
def web_app(
    sandbox: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    issuer, api = sandbox
    monkeypatch.setenv("STEPUP_ISSUER", issuer)
    monkeypatch.setenv("STEPUP_API_URL", api)
    path = tmp_path / "web_app.py"
    path.write_text(example_text())
    spec = importlib.util.spec_from_file_location("docs_web_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_web_app"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["docs_web_app"]


def sign_in(browser: requests.Session, url: str, typed: dict[str, str]) -> str:
    """Follow the provider's pages from ``url``, typing ``typed`` (by autocomplete token), until
    it redirects to the web app; return that callback URL."""
    response = browser.get(url, allow_redirects=False, timeout=30)
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(WEB):
                return location
            response = browser.get(location, allow_redirects=False, timeout=30)
            continue
        assert response.status_code == 200, response.text[:300]
        form = parse_page(response.text).forms[0]
        data = []
        for field in form.fields:
            token = next((t for t in typed if field.has_token(t)), None)
            data.append((field.name, typed[token] if token else field.value))
        data.append(("action", "continue"))
        action = urljoin(response.url, form.action or response.url)
        response = browser.post(action, data=data, allow_redirects=False, timeout=30)
    raise AssertionError("the provider never sent the browser back to the web app")


def cookies_set(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_the_web_app_example_logs_in_steps_up_and_keeps_secrets_on_the_server(
    web_app: ModuleType,
) -> None:
    web: FlaskClient = web_app.app.test_client()
    browser = requests.Session()  # the user's browser at the provider
    seen: list[TestResponse] = []

    def get(path: str) -> TestResponse:
        seen.append(web.get(path, base_url=WEB))
        return seen[-1]

    # First visit: no token yet, so the app sends the browser to the provider to sign in.
    first = get("/")
    assert first.status_code == 302
    assert first.location.startswith(web_app.ISSUER + "/authorize?")
    (cookie,) = cookies_set(first)
    assert re.fullmatch(r"sid=[A-Za-z0-9_-]{43}; HttpOnly; Path=/; SameSite=Lax", cookie)
    sid = cookie.split(";")[0].removeprefix("sid=")
    pending = web_app.sessions._sessions[sid]["pending"]  # server-side, as the page says
    callback = sign_in(
        browser, first.location, {"username": "alice", "current-password": "wonderland"}
    )
    assert urlsplit(callback).path == "/callback"
    back = get(callback.removeprefix(WEB))
    assert (back.status_code, back.location) == (302, "/"), back.get_data(as_text=True)

    # The accounts page, then a transfer: the API challenges, the app sends the user to step up.
    page = get("/")
    assert page.status_code == 200
    form = parse_page(page.get_data(as_text=True)).forms[0]
    transfer = {f.name: f.value for f in form.fields}
    assert set(transfer) == {"from_account", "to_account", "amount"}
    seen.append(web.post("/transfers", data=transfer, base_url=WEB))
    step_up = seen[-1]
    assert step_up.status_code == 302
    assert "acr_values=urn%3Astepup%3Aloa%3A2" in step_up.location
    stepped = web_app.sessions._sessions[sid]["pending"]
    assert stepped["acr_values"] == ["urn:stepup:loa:2"]
    code = totp.code_at(ALICE_SECRET, int(time.time()))
    callback = sign_in(browser, step_up.location, {"one-time-code": code})
    back = get(callback.removeprefix(WEB))
    assert (back.status_code, back.location) == (302, "/")

    # The user submits again: the stepped-up token is used, and the API says 201.
    seen.append(web.post("/transfers", data=transfer, base_url=WEB))
    assert seen[-1].status_code == 200
    assert seen[-1].get_data(as_text=True) == "Transfer: 201"

    # Nothing the app sent the browser holds a PKCE verifier, and its one cookie is the same
    # opaque id from start to end.
    for response in seen:
        sent: list[Any] = [response.get_data(as_text=True), *response.headers.values()]
        for verifier in (pending["code_verifier"], stepped["code_verifier"]):
            assert not any(verifier in str(part) for part in sent)
    assert {c for r in seen for c in cookies_set(r)} == {cookie}
