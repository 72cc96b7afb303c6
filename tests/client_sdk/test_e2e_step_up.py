"""End to end over real sockets on 127.0.0.1: the real provider, the real demo API, the SDK.

Time is injected: the provider, the API and the SDK share one :class:`provider.clock.Clock`, and
``clock.advance`` moves all three past ``max_age`` without waiting.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from client_sdk import (
    ApiResponseReceived,
    AuthorizationRequested,
    Event,
    FactorsRequested,
    HeadlessAuthenticator,
    LevelNotReached,
    StepUpAuth,
    StepUpHTTPXAuth,
    TokensIssued,
    UnmetAuthenticationRequirements,
)
from provider import create_app as create_provider
from provider.clock import Clock
from resource_api import create_app as create_api
from stepup.cli import sandbox_config
from stepup.config import RouteConfig, StepupConfig
from stepup.inprocess import Sandbox

pytestmark = pytest.mark.e2e

ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
MAX_AGE = 300
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Counted:
    """A WSGI middleware that counts requests by (method, path)."""

    app: WSGIApp | None = None
    hits: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        self.hits[(environ["REQUEST_METHOD"], environ["PATH_INFO"])] += 1
        assert self.app is not None
        return self.app(environ, start_response)


@dataclass
class Stack:
    issuer: str
    api: str
    clock: Clock
    provider_hits: Counted
    api_hits: Counted


def _serve(app: Counted) -> tuple[BaseWSGIServer, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def _config(issuer: str, transfer_acr: str) -> StepupConfig:
    config = sandbox_config(issuer)
    routes = tuple(
        replace(r, acr_values=(transfer_acr,), max_age=MAX_AGE) if r.path == "/transfers" else r
        for r in config.api.routes
    )
    if not any(r.path == "/transfers" for r in routes):
        routes += (RouteConfig("POST", "/transfers", (transfer_acr,), MAX_AGE),)
    return replace(config, api=replace(config.api, routes=routes))


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[[str], Stack]]:
    running: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(transfer_acr: str = "urn:stepup:loa:2") -> Stack:
        provider_hits, api_hits = Counted(), Counted()
        op_server, op_thread = _serve(provider_hits)
        api_server, api_thread = _serve(api_hits)
        running.extend([(op_server, op_thread), (api_server, api_thread)])
        issuer = f"http://127.0.0.1:{op_server.server_port}"
        config = _config(issuer, transfer_acr)
        clock = Clock()
        provider_hits.app = create_provider(
            config, database_url=f"sqlite:///{tmp_path}/provider.db", clock=clock
        )
        api_hits.app = create_api(config, database_url=f"sqlite:///{tmp_path}/bank.db", clock=clock)
        return Stack(
            issuer, f"http://127.0.0.1:{api_server.server_port}", clock, provider_hits, api_hits
        )

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join()
        server.server_close()


def alice(stack: Stack, events: list[Event], **kwargs: Any) -> StepUpAuth:
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    return StepUpAuth(
        stack.issuer, "bank-cli", authenticator=authenticator, hooks=[events.append],
        clock=stack.clock, **kwargs,
    )  # fmt: skip


def transfer_body(session: requests.Session, stack: Stack, auth: StepUpAuth) -> dict[str, Any]:
    accounts = session.get(stack.api + "/accounts", auth=auth).json()["accounts"]
    ids = [a["id"] for a in accounts]
    return {"from_account": ids[0], "to_account": ids[1], "amount": "10.00"}


def factors(events: list[Event]) -> list[tuple[str, ...]]:
    return [e.factors for e in events if isinstance(e, FactorsRequested)]


def authorizations(stack: Stack) -> int:
    return stack.provider_hits.hits[("GET", "/authorize")]


def test_basic_call_then_one_step_up_asking_only_the_otp_then_reuse_then_max_age(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    events: list[Event] = []
    auth = alice(stack, events)
    session = requests.Session()

    # A basic call: one login, password only.
    response = session.get(stack.api + "/accounts", auth=auth)
    assert response.status_code == 200
    assert factors(events) == [("pwd",)]
    body = transfer_body(session, stack, auth)
    assert authorizations(stack) == 1

    # A transfer: exactly one step-up, in which only the OTP is asked.
    events.clear()
    response = session.post(stack.api + "/transfers", json=body, auth=auth)
    assert response.status_code == 201
    assert response.json()["authorized_with"]["acr"] == "urn:stepup:loa:2"
    assert [h.status_code for h in response.history] == [401]
    assert factors(events) == [("otp",)]
    # What the provider's page asks, as the user sees it: heading, why, level, label.
    prompts = [e.page_text for e in events if isinstance(e, FactorsRequested)]
    assert prompts == [
        "Enter your one-time code\n"
        "This action needs a stronger sign-in (password and one-time code). "
        "Enter a one-time code.\n"
        "Requested level: password and one-time code urn:stepup:loa:2\n"
        "6-digit code from your authenticator app"
    ]
    assert authorizations(stack) == 2
    issued = [e for e in events if isinstance(e, TokensIssued)]
    assert issued[0].id_token_claims["acr"] == "urn:stepup:loa:2"
    assert sorted(issued[0].id_token_claims["amr"]) == ["mfa", "otp", "pwd"]
    assert stack.api_hits.hits[("POST", "/transfers")] == 2

    # A second transfer: no step-up, one request.
    events.clear()
    response = session.post(stack.api + "/transfers", json=body, auth=auth)
    assert response.status_code == 201
    assert response.history == []
    assert factors(events) == []
    assert authorizations(stack) == 2
    assert stack.api_hits.hits[("POST", "/transfers")] == 3

    # After max_age: a step-up again.
    # (Clear of the one-second boundary: the provider counts whole seconds, the API fractions.)
    stack.clock.advance(MAX_AGE + 5)
    events.clear()
    response = session.post(stack.api + "/transfers", json=body, auth=auth)
    assert response.status_code == 201
    assert [h.status_code for h in response.history] == [401]
    assert authorizations(stack) == 3
    # max_age is exceeded: the provider asks for every factor of the level again.
    assert factors(events) == [("pwd",), ("otp",)]
    assert stack.api_hits.hits[("POST", "/transfers")] == 5


def test_httpx_transfer_steps_up_once(stepup_sandbox: Sandbox) -> None:
    # Through the pytest plugin's fixture, as a user's own suite would.
    events: list[Event] = []
    user = stepup_sandbox.user("alice")
    authenticator = HeadlessAuthenticator(
        user.username, user.password, user.totp_secret, clock=stepup_sandbox.clock
    )
    auth = StepUpHTTPXAuth(
        stepup_sandbox.issuer, "bank-cli", authenticator=authenticator, hooks=[events.append],
        clock=stepup_sandbox.clock,
    )  # fmt: skip
    with httpx.Client(auth=auth) as client:
        accounts = client.get(stepup_sandbox.api_url + "/accounts").json()["accounts"]
        body = {
            "from_account": accounts[0]["id"],
            "to_account": accounts[1]["id"],
            "amount": "1.00",
        }
        response = client.post(stepup_sandbox.api_url + "/transfers", json=body)
    assert response.status_code == 201
    assert factors(events) == [("pwd",), ("otp",)]
    assert len([e for e in events if isinstance(e, AuthorizationRequested)]) == 2
    transfers = [
        e.status for e in events if isinstance(e, ApiResponseReceived) and e.method == "POST"
    ]
    assert transfers == [401, 201]


def test_a_provider_that_cannot_meet_the_level_fails_clearly_and_boundedly(
    make_stack: Callable[..., Stack],
) -> None:
    # The API asks for a level the provider does not have: acr_values is voluntary (OIDC), so the
    # provider authenticates at what it can, and the SDK's ID token check refuses the result.
    stack = make_stack("urn:example:loa:9")
    events: list[Event] = []
    auth = alice(stack, events)
    session = requests.Session()
    body = transfer_body(session, stack, auth)
    with pytest.raises(LevelNotReached, match="not at one of \\['urn:example:loa:9'\\]"):
        session.post(stack.api + "/transfers", json=body, auth=auth)
    assert stack.api_hits.hits[("POST", "/transfers")] == 1
    assert authorizations(stack) == 2

    # With essential acr, the provider itself says it cannot: a typed error, still bounded.
    auth = alice(stack, events, essential_acr=True)
    with pytest.raises(UnmetAuthenticationRequirements) as caught:
        session.post(stack.api + "/transfers", json=body, auth=auth)
    assert caught.value.error == "unmet_authentication_requirements"
    assert stack.api_hits.hits[("POST", "/transfers")] == 2
    assert authorizations(stack) == 4
