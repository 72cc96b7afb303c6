"""End to end over real sockets: every challenge dialect against the stack's own provider.

Four servers on 127.0.0.1, ports picked by the OS: the provider; the demo bank API (its
``[api] audience`` is its own origin, as a deployment would have it, so a token for the resource
its RFC 9728 metadata names is a token it accepts); and, written here, two resource servers of
other makes —

- an **MCP server** mimic: ``POST /mcp`` answers a request without a token ``401`` with
  ``resource_metadata`` (how an MCP client finds the authorization server), and a token without
  the tool's scope ``403 insufficient_scope`` with ``scope`` and ``resource_metadata``; it accepts
  only tokens whose ``aud`` is its own origin (RFC 8707, as the MCP authorization spec asks);
- an **Entra** mimic: ``GET /me`` answers a token below the level it wants ``401`` with
  ``error="insufficient_claims"`` and a base64 ``claims`` request, as Microsoft Entra ID does.

The clocks of the provider, the APIs and the SDK are one injected clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import requests
from flask import Flask, Response, jsonify, request

from client_sdk import (
    AuthorizationError,
    AuthorizationRequested,
    ClaimsNotSatisfied,
    Event,
    FactorsRequested,
    HeadlessAuthenticator,
    InvalidClaimsChallenge,
    IssuerNotListed,
    ProviderExchange,
    ResourceMetadataError,
    ScopeNotGranted,
    StepUpAuth,
    StepUpHTTPXAuth,
    TokensIssued,
)
from provider import create_app as create_provider
from provider.clock import Clock
from resource_api import JwtAccessTokenValidator
from resource_api import create_app as create_api
from resource_api.errors import InvalidToken
from resource_api.validation import http_fetch
from stepup.cli import sandbox_config
from stepup.config import RouteConfig

from .test_e2e_step_up import Counted, _serve

pytestmark = pytest.mark.e2e

ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
LOA2 = "urn:stepup:loa:2"
WELL_KNOWN = "/.well-known/oauth-protected-resource"
# What the Entra mimic asks for: an essential acr in the ID token (which this provider honours,
# OIDC Core §5.5.1.1) and, as Entra's own challenges do, an access_token member it ignores.
ENTRA_CLAIMS = {
    "access_token": {"acrs": {"essential": True, "value": "c1"}},
    "id_token": {"acr": {"essential": True, "values": [LOA2]}},
}


@dataclass
class Mimic:
    """What a mimic does, changed by the tests."""

    origin: str = ""
    authorization_servers: list[str] = field(default_factory=list)
    resource: str | None = None  # the metadata's resource; default: the origin
    required: list[str] = field(default_factory=lambda: ["mcp:tools"])
    stubborn: bool = False  # challenge even a token that meets the requirement
    claims: str | None = None  # the Entra mimic's claims value; default: ENTRA_CLAIMS encoded
    with_token: list[bool] = field(default_factory=list)  # per request: did it carry a token?

    @property
    def metadata_url(self) -> str:
        return self.origin + WELL_KNOWN


def _bearer(validator: JwtAccessTokenValidator, mimic: Mimic) -> dict[str, Any] | Response:
    header = request.headers.get("Authorization", "")
    mimic.with_token.append("Authorization" in request.headers)
    if not header.startswith("Bearer "):
        return _challenge(401, f'Bearer resource_metadata="{mimic.metadata_url}"')
    try:
        return dict(validator.validate(header.removeprefix("Bearer ")))
    except InvalidToken:
        return _challenge(
            401, f'Bearer error="invalid_token", resource_metadata="{mimic.metadata_url}"'
        )


def _challenge(status: int, value: str) -> Response:
    response = jsonify(error="challenge")
    response.status_code = status
    response.headers["WWW-Authenticate"] = value
    return response


def mcp_app(mimic: Mimic, validator: JwtAccessTokenValidator) -> Flask:
    app = Flask("mcp-mimic")

    @app.get(WELL_KNOWN)
    def metadata() -> Any:
        return {
            "resource": mimic.resource or mimic.origin,
            "authorization_servers": mimic.authorization_servers,
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
        }

    @app.post("/mcp")
    def mcp() -> Any:
        claims = _bearer(validator, mimic)
        if isinstance(claims, Response):
            return claims
        granted = str(claims.get("scope", "")).split()
        if mimic.stubborn or any(s not in granted for s in mimic.required):
            return _challenge(
                403,
                f'Bearer error="insufficient_scope", scope="{" ".join(mimic.required)}", '
                f'resource_metadata="{mimic.metadata_url}", '
                'error_description="Additional scope required"',
            )
        return {"jsonrpc": "2.0", "id": 1, "result": {"tools": ["transfer"], "sub": claims["sub"]}}

    return app


def entra_app(mimic: Mimic, validator: JwtAccessTokenValidator, issuer: str) -> Flask:
    app = Flask("entra-mimic")

    @app.get("/me")
    def me() -> Any:
        header = request.headers.get("Authorization", "")
        try:
            claims = validator.validate(header.removeprefix("Bearer "))
        except InvalidToken:
            return _challenge(401, 'Bearer error="invalid_token"')
        if mimic.stubborn or claims.get("acr") != LOA2:
            value = mimic.claims or base64.b64encode(json.dumps(ENTRA_CLAIMS).encode()).decode()
            return _challenge(
                401,
                f'Bearer realm="", authorization_uri="{issuer}/authorize", '
                f'error="insufficient_claims", claims="{value}"',
            )
        return {"displayName": "Alice", "acr": claims["acr"]}

    return app


@dataclass
class Stack:
    issuer: str
    bank: str
    clock: Clock
    mcp: Mimic
    entra: Mimic
    hits: dict[str, Counted]

    def count(self, server: str, method: str, path: str) -> int:
        return self.hits[server].hits[(method, path)]


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    running: list[Any] = []

    def start(*, bank_routes: tuple[RouteConfig, ...] = ()) -> Stack:
        hits = {name: Counted() for name in ("provider", "bank", "mcp", "entra")}
        servers = {name: _serve(app) for name, app in hits.items()}
        running.extend(servers.values())
        origin = {name: f"http://127.0.0.1:{s.server_port}" for name, (s, _) in servers.items()}
        issuer = origin["provider"]
        base = sandbox_config(issuer)
        bank_cli = replace(
            base.clients[0], scope=base.clients[0].scope + " mcp:tools accounts:read"
        )
        config = replace(
            base,
            clients=(bank_cli, *base.clients[1:]),
            # The bank's audience is its own origin: the resource its metadata names.
            api=replace(base.api, audience=origin["bank"], routes=base.api.routes + bank_routes),
            # RFC 8707: the provider issues tokens for the MCP server too.
            provider=replace(base.provider, resources=(origin["mcp"],)),
        )
        clock = Clock()
        hits["provider"].app = create_provider(
            config, database_url=f"sqlite:///{tmp_path}/provider.db", clock=clock
        )
        hits["bank"].app = create_api(
            config, database_url=f"sqlite:///{tmp_path}/bank.db", clock=clock
        )
        mcp = Mimic(origin["mcp"], [issuer])
        entra = Mimic(origin["entra"], [issuer])
        fetch = http_fetch(timeout=5.0)
        hits["mcp"].app = mcp_app(
            mcp, JwtAccessTokenValidator(issuer, origin["mcp"], fetch=fetch, clock=clock)
        )
        # The Entra mimic takes tokens for the provider's default audience (no resource asked).
        entra_validator = JwtAccessTokenValidator(issuer, origin["bank"], fetch=fetch, clock=clock)
        hits["entra"].app = entra_app(entra, entra_validator, issuer)
        return Stack(issuer, origin["bank"], clock, mcp, entra, hits)

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join()
        server.server_close()


def alice(stack: Stack, events: list[Event], issuer: str | None = None, **kw: Any) -> StepUpAuth:
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    return StepUpAuth(
        issuer, "bank-cli", authenticator=authenticator, hooks=[events.append],
        clock=stack.clock, **kw,
    )  # fmt: skip


def authorization_params(events: list[Event]) -> list[dict[str, str]]:
    return [dict(e.params) for e in events if isinstance(e, AuthorizationRequested)]


def grants(events: list[Event]) -> list[str]:
    return [e.grant for e in events if isinstance(e, TokensIssued)]


def factors(events: list[Event]) -> list[tuple[str, ...]]:
    return [e.factors for e in events if isinstance(e, FactorsRequested)]


RPC = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "transfer"}}


# --- the MCP server: issuer from resource_metadata, scope step-up ---------------------------


def test_mcp_server_issuer_discovered_then_scope_step_up_by_a_new_authorization(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    events: list[Event] = []
    auth = alice(stack, events)  # no issuer: the MCP server's metadata names it
    response = requests.post(stack.mcp.origin + "/mcp", json=RPC, auth=auth)

    assert response.status_code == 200, response.text
    assert response.json()["result"]["tools"] == ["transfer"]
    assert auth.client.issuer == stack.issuer
    # Without a token (401 + resource_metadata), with the first token (403 insufficient_scope),
    # with the new one (200).
    assert [h.status_code for h in response.history] == [401, 403]
    assert stack.mcp.with_token == [False, True, True]
    assert stack.count("mcp", "GET", WELL_KNOWN) == 1  # read once, then remembered
    metadata = [
        e for e in events if isinstance(e, ProviderExchange) and e.purpose == "resource_metadata"
    ]
    assert [(e.url, e.status) for e in metadata] == [(stack.mcp.metadata_url, 200)]
    # Both authorizations name the MCP server (RFC 8707); the second asks for the union of the
    # scopes. Never a refresh: a refresh token cannot widen scope.
    first, second = authorization_params(events)
    assert (first["scope"], first["resource"]) == ("openid", stack.mcp.origin)
    assert (second["scope"], second["resource"]) == ("openid mcp:tools", stack.mcp.origin)
    assert grants(events) == ["authorization_code", "authorization_code"]
    issued = [e for e in events if isinstance(e, TokensIssued)]
    assert [e.access_token_claims["aud"] for e in issued] == [stack.mcp.origin] * 2
    assert issued[1].scope == "openid mcp:tools"
    assert factors(events) == [("pwd",)]  # the provider's session answered the second one

    # The next call to the tool goes with the scoped token at once.
    events.clear()
    again = requests.post(stack.mcp.origin + "/mcp", json=RPC, auth=auth)
    assert again.status_code == 200
    assert again.history == []
    assert authorization_params(events) == []


def test_mcp_server_through_httpx_sends_the_first_request_without_a_token(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    events: list[Event] = []
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    auth = StepUpHTTPXAuth(
        client_id="bank-cli", authenticator=authenticator, hooks=[events.append],
        clock=stack.clock,
    )  # fmt: skip
    with httpx.Client(auth=auth) as client:
        response = client.post(stack.mcp.origin + "/mcp", json=RPC)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401, 403]
    assert stack.mcp.with_token == [False, True, True]


def test_mcp_server_through_async_httpx_discovers_and_steps_up(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    auth = StepUpHTTPXAuth(client_id="bank-cli", authenticator=authenticator, clock=stack.clock)

    async def main() -> tuple[int, list[int]]:
        async with httpx.AsyncClient(auth=auth) as client:
            response = await client.post(stack.mcp.origin + "/mcp", json=RPC)
            return response.status_code, [r.status_code for r in response.history]

    assert anyio.run(main) == (200, [401, 403])
    assert stack.mcp.with_token == [False, True, True]
    assert auth.client.issuer == stack.issuer


def test_mcp_scope_challenge_again_after_the_new_token_is_a_typed_error_not_a_loop(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.mcp.stubborn = True  # answers insufficient_scope whatever the token has
    events: list[Event] = []
    auth = alice(stack, events)
    with pytest.raises(ScopeNotGranted) as caught:
        requests.post(stack.mcp.origin + "/mcp", json=RPC, auth=auth)
    assert caught.value.missing == ("mcp:tools",)
    assert [c.error for c in caught.value.challenges] == ["insufficient_scope"] * 2
    assert stack.count("mcp", "POST", "/mcp") == 3  # bare, first token, new token: no more
    assert len(authorization_params(events)) == 2


def test_a_scope_the_provider_does_not_grant_is_refused_before_the_retry(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.mcp.required = ["mcp:tools", "mcp:admin"]  # mcp:admin is not registered for bank-cli
    events: list[Event] = []
    auth = alice(stack, events)
    with pytest.raises(ScopeNotGranted, match="did not grant mcp:admin") as caught:
        requests.post(stack.mcp.origin + "/mcp", json=RPC, auth=auth)
    assert caught.value.missing == ("mcp:admin",)
    assert authorization_params(events)[1]["scope"] == "openid mcp:tools mcp:admin"
    assert stack.count("mcp", "POST", "/mcp") == 2  # the token lacking it was not sent


def test_metadata_that_lists_another_issuer_is_refused(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.mcp.authorization_servers = ["https://login.other.example"]
    events: list[Event] = []
    auth = alice(stack, events, issuer=stack.issuer, resource=stack.mcp.origin)
    with pytest.raises(IssuerNotListed) as caught:
        requests.post(stack.mcp.origin + "/mcp", json=RPC, auth=auth)
    assert caught.value.issuer == stack.issuer
    assert caught.value.listed == ("https://login.other.example",)
    assert caught.value.url == stack.mcp.metadata_url
    # The first login happened (the call needed a token); no second authorization was started.
    assert len(authorization_params(events)) == 1
    assert stack.count("mcp", "POST", "/mcp") == 1


def test_metadata_for_another_resource_is_not_used(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.mcp.resource = "https://mcp.elsewhere.example"  # RFC 9728 §3.3: must not be used
    events: list[Event] = []
    with pytest.raises(ResourceMetadataError, match=r"RFC 9728 §3\.3"):
        requests.post(stack.mcp.origin + "/mcp", json=RPC, auth=alice(stack, events))
    assert authorization_params(events) == []
    assert stack.count("provider", "GET", "/.well-known/openid-configuration") == 0


def test_an_unknown_resource_is_invalid_target_from_the_provider(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    events: list[Event] = []
    auth = alice(stack, events, issuer=stack.issuer, resource="https://unknown.example/api")
    with pytest.raises(AuthorizationError) as caught:
        requests.post(stack.mcp.origin + "/mcp", json=RPC, auth=auth)
    assert caught.value.error == "invalid_target"
    assert caught.value.error_description == (
        "The resource parameter names a resource this provider does not know."
    )
    assert stack.count("mcp", "POST", "/mcp") == 0


# --- the stack's own API: discovery, RFC 8707 audience, scope and RFC 9470 step-ups ----------


def test_the_bank_api_names_its_issuer_and_its_resource_is_the_token_audience(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(bank_routes=(RouteConfig("GET", "/accounts", scope=("accounts:read",)),))
    events: list[Event] = []
    auth = alice(stack, events)
    session = requests.Session()
    accounts = session.get(stack.bank + "/accounts", auth=auth)
    assert accounts.status_code == 200, accounts.text
    # 401 (no token: resource_metadata), 403 insufficient_scope from the bank's own route.
    assert [h.status_code for h in accounts.history] == [401, 403]
    assert accounts.history[1].headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", error_description="this request needs the scope '
        'accounts:read", scope="accounts:read", '
        f'resource_metadata="{stack.bank}{WELL_KNOWN}"'
    )
    params = authorization_params(events)
    assert [(p["scope"], p["resource"]) for p in params] == [
        ("openid", stack.bank),
        ("openid accounts:read", stack.bank),
    ]

    ids = [a["id"] for a in accounts.json()["accounts"]]
    body = {"from_account": ids[0], "to_account": ids[1], "amount": "5.00"}
    events.clear()
    transfer = session.post(stack.bank + "/transfers", json=body, auth=auth)
    assert transfer.status_code == 201, transfer.text
    assert [h.status_code for h in transfer.history] == [401]
    (step_up,) = authorization_params(events)
    assert (step_up["acr_values"], step_up["resource"]) == (LOA2, stack.bank)
    assert factors(events) == [("otp",)]
    issued = [e for e in events if isinstance(e, TokensIssued)]
    assert issued[0].access_token_claims["aud"] == stack.bank
    assert issued[0].id_token_claims["acr"] == LOA2


# --- Entra: insufficient_claims ------------------------------------------------------------


def test_entra_claims_challenge_is_answered_with_the_decoded_claims(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    events: list[Event] = []
    auth = alice(stack, events, issuer=stack.issuer)
    response = requests.get(stack.entra.origin + "/me", auth=auth)
    assert response.status_code == 200, response.text
    assert response.json()["acr"] == LOA2
    assert [h.status_code for h in response.history] == [401]
    first, second = authorization_params(events)
    assert "claims" not in first
    # The claims parameter is the challenge's JSON, decoded (and canonical): the provider read its
    # essential acr and asked for the one-time code.
    assert json.loads(second["claims"]) == ENTRA_CLAIMS
    assert "resource" not in second
    assert factors(events) == [("pwd",), ("otp",)]
    assert grants(events) == ["authorization_code", "authorization_code"]
    assert stack.count("entra", "GET", "/me") == 2


def test_entra_claims_challenge_again_is_claims_not_satisfied(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.entra.stubborn = True
    events: list[Event] = []
    with pytest.raises(ClaimsNotSatisfied) as caught:
        requests.get(stack.entra.origin + "/me", auth=alice(stack, events, issuer=stack.issuer))
    assert [c.claims for c in caught.value.challenges] == [ENTRA_CLAIMS, ENTRA_CLAIMS]
    assert stack.count("entra", "GET", "/me") == 2
    assert len(authorization_params(events)) == 2


def test_a_malformed_claims_challenge_is_a_typed_error_without_a_new_authorization(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.entra.claims = base64.b64encode(b'["not", "an object"]').decode()
    events: list[Event] = []
    with pytest.raises(InvalidClaimsChallenge, match="not a JSON object"):
        requests.get(stack.entra.origin + "/me", auth=alice(stack, events, issuer=stack.issuer))
    assert len(authorization_params(events)) == 1  # the first login only
    assert stack.count("entra", "GET", "/me") == 1
