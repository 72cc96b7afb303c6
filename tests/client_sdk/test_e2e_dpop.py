"""End to end over real sockets: DPoP (RFC 9449) between the SDK, the stack's own provider and its
demo bank API.

The provider asks every token request for a nonce (``dpop_require_nonce``, on by default, §8);
the bank checks proofs (§7), and in some tests asks for nonces too (§9). The SDK signs every proof
with one key per client, so the stepped-up token is bound to the same key as the first one: the
tests decode the tokens and compare their ``cnf.jkt``. A token sent as Bearer and a proof sent
twice are refused. One clock for the provider, the bank and the SDK.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import requests

from client_sdk import (
    ApiRequestSent,
    AuthorizationRequested,
    DPoPKey,
    Event,
    FactorsRequested,
    HeadlessAuthenticator,
    ProviderError,
    ProviderExchange,
    StepUpAuth,
    StepUpHTTPXAuth,
    TokensIssued,
    parse_www_authenticate,
)
from client_sdk.dpop import access_token_hash
from client_sdk.dpop_check import Nonces
from provider import create_app as create_provider
from provider.clock import Clock
from resource_api import create_app as create_api
from resource_api.dpop import DPoPVerifier

from .test_e2e_step_up import MAX_AGE, Counted, _config, _serve

pytestmark = pytest.mark.e2e

ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
LOA2 = "urn:stepup:loa:2"


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    dpop: str | None


@dataclass
class Recorded(Counted):
    """Counts requests, and keeps the credentials each one came with."""

    seen: list[Seen] = field(default_factory=list)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        self.seen.append(
            Seen(
                environ["REQUEST_METHOD"],
                environ["PATH_INFO"],
                environ.get("HTTP_AUTHORIZATION"),
                environ.get("HTTP_DPOP"),
            )
        )
        return super().__call__(environ, start_response)


@dataclass
class Stack:
    issuer: str
    api: str
    clock: Clock
    provider: Recorded
    bank: Recorded


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    running: list[Any] = []

    def start(*, api_nonces: bool = False, bound_clients: bool = False) -> Stack:
        provider, bank = Recorded(), Recorded()
        servers = [_serve(provider), _serve(bank)]
        running.extend(servers)
        issuer = f"http://127.0.0.1:{servers[0][0].server_port}"
        api = f"http://127.0.0.1:{servers[1][0].server_port}"
        config = _config(issuer, LOA2)
        if bound_clients:
            config = replace(
                config,
                clients=tuple(replace(c, dpop_bound_access_tokens=True) for c in config.clients),
            )
        clock = Clock()
        provider.app = create_provider(
            config, database_url=f"sqlite:///{tmp_path}/provider.db", clock=clock
        )
        nonces = Nonces(b"the bank's DPoP nonce secret", period=300) if api_nonces else None
        bank.app = create_api(
            config,
            database_url=f"sqlite:///{tmp_path}/bank.db",
            clock=clock,
            dpop=DPoPVerifier(nonces=nonces, clock=clock),
        )
        return Stack(issuer, api, clock, provider, bank)

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


def decode(jwt: str) -> dict[str, Any]:
    """A JWT's payload (the tests read what the provider put in its tokens and proofs)."""
    payload = jwt.split(".")[1]
    value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(value, dict)
    return value


def issued_tokens(events: list[Event]) -> list[dict[str, Any]]:
    return [e.access_token_claims for e in events if isinstance(e, TokensIssued)]


def token_exchanges(events: list[Event]) -> list[int]:
    return [
        e.status
        for e in events
        if isinstance(e, ProviderExchange) and e.purpose in ("token", "refresh")
    ]


def reasons(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, ApiRequestSent)]


def transfer(stack: Stack, session: requests.Session, auth: StepUpAuth) -> requests.Response:
    accounts = session.get(stack.api + "/accounts", auth=auth).json()["accounts"]
    body = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": "10.00"}
    return session.post(stack.api + "/transfers", json=body, auth=auth)


def test_dpop_bound_tokens_proofs_on_every_call_and_the_step_up_keeps_the_key(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    key = DPoPKey.generate()
    events: list[Event] = []
    auth = alice(stack, events, dpop=key)
    session = requests.Session()

    response = session.get(stack.api + "/accounts", auth=auth)
    assert response.status_code == 200
    # §10: the authorization request names the key; §8: the first token request has no nonce,
    # is answered 400 use_dpop_nonce, and is sent once more with it.
    first_params = [e.params for e in events if isinstance(e, AuthorizationRequested)]
    assert [p["dpop_jkt"] for p in first_params] == [key.jkt]
    assert token_exchanges(events) == [400, 200]
    token_posts = [s for s in stack.provider.seen if s.path == "/token"]
    assert [decode(s.dpop or "").get("nonce") is None for s in token_posts] == [True, False]
    (first,) = issued_tokens(events)
    assert first["cnf"] == {"jkt": key.jkt}  # §6.1
    assert first["acr"] == "urn:stepup:loa:1"

    # The step-up: a DPoP challenge, a new authorization with the same dpop_jkt, a token bound
    # to the same key; the remembered nonce makes the token request go through at once.
    events.clear()
    response = transfer(stack, session, auth)
    assert response.status_code == 201
    assert [h.status_code for h in response.history] == [401]
    challenge = parse_www_authenticate(response.history[0].headers["WWW-Authenticate"])[0]
    assert (challenge.scheme, challenge.params["error"]) == (
        "dpop",
        "insufficient_user_authentication",
    )
    assert [e.params["dpop_jkt"] for e in events if isinstance(e, AuthorizationRequested)] == [
        key.jkt
    ]
    assert token_exchanges(events) == [200]
    (stepped,) = issued_tokens(events)
    assert stepped["acr"] == LOA2
    assert stepped["cnf"] == {"jkt": key.jkt} == first["cnf"]
    assert stepped["jti"] != first["jti"]
    assert [e.factors for e in events if isinstance(e, FactorsRequested)] == [("otp",)]

    # Every API request carried its token on the DPoP scheme and a proof of its own, for that
    # token, that method and that URL (§4.2, §7.1).
    api_calls = [s for s in stack.bank.seen if s.path in ("/accounts", "/transfers")]
    assert len(api_calls) == 4  # GET /accounts twice, POST /transfers before and after
    jtis = set()
    for seen in api_calls:
        assert seen.authorization is not None
        scheme, _, token = seen.authorization.partition(" ")
        assert scheme == "DPoP"
        assert seen.dpop is not None
        proof = decode(seen.dpop)
        assert proof["htm"] == seen.method
        assert proof["htu"] == stack.api + seen.path
        assert proof["ath"] == access_token_hash(token)
        assert decode(token)["cnf"] == {"jkt": key.jkt}
        jtis.add(proof["jti"])
    assert len(jtis) == 4
    assert auth.dpop_key is key


def test_api_nonces_a_nonce_retry_leaves_the_step_up_its_one_retry(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(api_nonces=True)
    events: list[Event] = []
    auth = alice(stack, events, dpop=True)
    session = requests.Session()

    response = session.get(stack.api + "/accounts", auth=auth)
    assert response.status_code == 200
    # §9: the API asked for a nonce (401 use_dpop_nonce + DPoP-Nonce); the SDK sent it once.
    (asked,) = response.history
    assert asked.status_code == 401
    assert parse_www_authenticate(asked.headers["WWW-Authenticate"])[0].params["error"] == (
        "use_dpop_nonce"
    )
    nonce = asked.headers["DPoP-Nonce"]
    assert reasons(events) == ["initial", "dpop_nonce"]
    assert decode(stack.bank.seen[-1].dpop or "")["nonce"] == nonce

    # The nonce is remembered: the transfer's step-up is the only retry it needs.
    accounts = response.json()["accounts"]
    body = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": "1.00"}
    events.clear()
    response = session.post(stack.api + "/transfers", json=body, auth=auth)
    assert response.status_code == 201
    assert [h.status_code for h in response.history] == [401]
    assert reasons(events) == ["initial", "after_step_up"]

    # Past both the nonce's window and max_age: the nonce retry comes first and the step-up
    # still gets its retry.
    stack.clock.advance(MAX_AGE * 2 + 5)
    events.clear()
    response = session.post(stack.api + "/transfers", json=body, auth=auth)
    assert response.status_code == 201
    errors = [
        parse_www_authenticate(h.headers["WWW-Authenticate"])[0].params["error"]
        for h in response.history
    ]
    assert errors == ["use_dpop_nonce", "insufficient_user_authentication"]
    assert reasons(events)[-3:] == ["initial", "dpop_nonce", "after_step_up"]
    keys = {claims["cnf"]["jkt"] for claims in issued_tokens(events)}
    assert auth.dpop_key is not None
    assert keys == {auth.dpop_key.jkt}


def test_httpx_with_nonces_at_the_provider_and_the_api_and_a_step_up(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(api_nonces=True)
    events: list[Event] = []
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    auth = StepUpHTTPXAuth(
        stack.issuer, "bank-cli", authenticator=authenticator, hooks=[events.append],
        clock=stack.clock, dpop=True,
    )  # fmt: skip
    with httpx.Client(auth=auth) as client:
        accounts = client.get(stack.api + "/accounts").json()["accounts"]
        body = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": "2"}
        response = client.post(stack.api + "/transfers", json=body)
    assert response.status_code == 201
    assert [r.status_code for r in response.history] == [401]
    assert reasons(events) == ["initial", "dpop_nonce", "initial", "after_step_up"]
    assert token_exchanges(events) == [400, 200, 200]
    first, stepped = issued_tokens(events)
    assert first["cnf"] == stepped["cnf"]
    assert stepped["acr"] == LOA2


def test_async_httpx_with_api_nonces_steps_up_with_the_same_key(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(api_nonces=True)
    events: list[Event] = []
    authenticator = HeadlessAuthenticator("alice", "wonderland", ALICE_SECRET, clock=stack.clock)
    auth = StepUpHTTPXAuth(
        stack.issuer, "bank-cli", authenticator=authenticator, hooks=[events.append],
        clock=stack.clock, dpop=True,
    )  # fmt: skip

    async def main() -> list[int]:
        async with httpx.AsyncClient(auth=auth) as client:
            accounts = (await client.get(stack.api + "/accounts")).json()["accounts"]
            body = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": 3}
            response = await client.post(stack.api + "/transfers", json=body)
            return [*(r.status_code for r in response.history), response.status_code]

    assert anyio.run(main) == [401, 201]
    assert reasons(events) == ["initial", "dpop_nonce", "initial", "after_step_up"]
    assert len({claims["cnf"]["jkt"] for claims in issued_tokens(events)}) == 1


def test_refresh_sends_a_proof_and_keeps_the_binding_across_a_rotated_provider_nonce(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    events: list[Event] = []
    # A public client: its refresh token is bound to the key too (§5).
    auth = alice(stack, events, dpop=True, scope="openid offline_access")
    session = requests.Session()
    assert session.get(stack.api + "/accounts", auth=auth).status_code == 200
    # The access token (600 s) has expired and the provider's nonce window (300 s) has moved on.
    stack.clock.advance(700)
    events.clear()
    assert session.get(stack.api + "/accounts", auth=auth).status_code == 200
    assert [e.grant for e in events if isinstance(e, TokensIssued)] == ["refresh_token"]
    assert token_exchanges(events) == [400, 200]  # the stale nonce, then the current one
    (refreshed,) = issued_tokens(events)
    assert auth.dpop_key is not None
    assert refreshed["cnf"] == {"jkt": auth.dpop_key.jkt}


def test_the_bound_token_sent_as_bearer_is_refused(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    auth = alice(stack, [], dpop=True)
    token = auth.login().access_token
    response = requests.get(stack.api + "/accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    (challenge,) = parse_www_authenticate(response.headers["WWW-Authenticate"])
    # RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused, on the DPoP
    # scheme, as invalid_token.
    assert (challenge.scheme, challenge.params["error"]) == ("dpop", "invalid_token")
    assert response.json()["error"] == "invalid_token"


def test_a_replayed_proof_is_refused(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    auth = alice(stack, [], dpop=True)
    assert requests.get(stack.api + "/accounts", auth=auth).status_code == 200
    sent = stack.bank.seen[-1]
    assert sent.authorization is not None
    assert sent.dpop is not None
    replay = requests.get(
        stack.api + "/accounts",
        headers={"Authorization": sent.authorization, "DPoP": sent.dpop},
    )
    assert replay.status_code == 401
    (challenge,) = parse_www_authenticate(replay.headers["WWW-Authenticate"])
    # §11.1: "the server MUST ensure that the jti value is only used once".
    assert (challenge.scheme, challenge.params["error"]) == ("dpop", "invalid_dpop_proof")


def test_a_client_registered_for_dpop_only_refuses_the_sdk_without_it(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(bound_clients=True)
    with pytest.raises(ProviderError) as caught:
        requests.get(stack.api + "/accounts", auth=alice(stack, []))
    assert (caught.value.status_code, caught.value.error) == (400, "invalid_dpop_proof")
    # With DPoP on, the same client gets its token.
    assert requests.get(stack.api + "/accounts", auth=alice(stack, [], dpop=True)).ok


def test_parallel_calls_through_one_auth_object_each_sign_their_own_proof(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(api_nonces=True)
    auth = alice(stack, [], dpop=True)
    auth.login()

    def call(_: int) -> int:
        return requests.get(stack.api + "/accounts", auth=auth).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(16)))
    # Each is served (after at most one nonce resend): no proof was refused as a replay.
    assert statuses == [200] * 16
    proofs = [s.dpop for s in stack.bank.seen if s.path == "/accounts"]
    assert 16 <= len(proofs) <= 32
    assert len({decode(p or "")["jti"] for p in proofs}) == len(proofs)
