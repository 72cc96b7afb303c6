"""The SDK's side of DPoP (RFC 9449), without sockets: the step-up core's nonce retries (§9), the
token endpoint's (§8), the token type (§5), ``dpop_jkt`` (§10), and the headers of each send.

The end-to-end flows against the stack's own provider and API are in ``test_e2e_dpop.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from client_sdk.authenticators.base import LoginRequest
from client_sdk.dpop import DPoPKey, access_token_hash, htu_of
from client_sdk.dpop_check import ProofChecker
from client_sdk.dpop_client import (
    DPoPSigner,
    provider_nonce_request,
    resource_nonce_request,
    valid_nonce,
)
from client_sdk.errors import (
    ConfigurationError,
    DPoPNonceRejected,
    ProviderError,
    StepUpFailed,
    TokenTypeMismatch,
)
from client_sdk.flow import (
    ApiReply,
    DPoPNonce,
    Driver,
    GetToken,
    Route,
    Send,
    StepUp,
    set_authorization,
    step_up_flow,
)
from client_sdk.oidc import OIDCClient
from client_sdk.protocol import (
    HttpRequest,
    HttpResponse,
    Requirement,
    authorization_params,
    new_authorization,
    parse_token_response,
)
from client_sdk.tokens import TokenSet

from .sdk_fakes import ISSUER, discovery_document

URL = "https://api.example/transfers"
ROUTE = Route.of("POST", URL)
BOUND = TokenSet("at-1", token_type="DPoP", claims={"acr": "urn:stepup:loa:1"})
STEPPED = TokenSet("at-2", token_type="DPoP", claims={"acr": "urn:stepup:loa:2"})
NONCE_PLEASE = 'DPoP algs="ES256", error="use_dpop_nonce", error_description="nonce"'
STEP_UP = 'DPoP algs="ES256", error="insufficient_user_authentication", acr_values="urn:x:2"'


def nonce_reply(nonce: str = "n-1") -> ApiReply:
    return ApiReply(401, (NONCE_PLEASE,), nonce)


# --- the step-up core: §9 nonce retries -------------------------------------------------------


def test_use_dpop_nonce_is_answered_by_one_resend_with_the_same_token() -> None:
    flow = step_up_flow(ROUTE)
    assert next(flow) == GetToken(ROUTE)
    assert flow.send(BOUND) == Send(BOUND, 1, "initial")
    # The nonce is remembered before the resend, so the resend's proof carries it.
    assert flow.send(nonce_reply("n-1")) == DPoPNonce(ROUTE, "n-1")
    assert flow.send(None) == Send(BOUND, 2, "dpop_nonce")
    with pytest.raises(StopIteration):
        flow.send(ApiReply(200))


def test_a_second_use_dpop_nonce_in_a_row_is_a_typed_error_not_a_loop() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(BOUND)
    flow.send(nonce_reply("n-1"))
    flow.send(None)
    assert flow.send(nonce_reply("n-2")) == DPoPNonce(ROUTE, "n-2")
    with pytest.raises(DPoPNonceRejected) as caught:
        flow.send(None)
    assert (caught.value.url, caught.value.status_code) == (URL, 401)


def test_a_nonce_retry_does_not_consume_the_step_up_and_the_new_token_may_have_one_too() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(BOUND)
    flow.send(nonce_reply("n-1"))
    assert flow.send(None) == Send(BOUND, 2, "dpop_nonce")
    action = flow.send(ApiReply(401, (STEP_UP,)))
    assert isinstance(action, StepUp)
    assert action.requirement == Requirement(("urn:x:2",))
    assert flow.send(STEPPED) == Send(STEPPED, 3, "after_step_up")
    # The nonce rotated meanwhile: one more resend, for the stepped-up token.
    assert flow.send(nonce_reply("n-2")) == DPoPNonce(ROUTE, "n-2")
    assert flow.send(None) == Send(STEPPED, 4, "dpop_nonce")
    with pytest.raises(StopIteration):
        flow.send(ApiReply(201))


def test_the_one_retry_rule_holds_across_nonce_retries() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(BOUND)
    assert isinstance(flow.send(ApiReply(401, (STEP_UP,))), StepUp)
    flow.send(STEPPED)
    flow.send(nonce_reply("n-1"))
    assert flow.send(None) == Send(STEPPED, 3, "dpop_nonce")
    # Challenged again after the nonce retry: the step-up was spent, so a typed error.
    with pytest.raises(StepUpFailed) as caught:
        flow.send(ApiReply(401, (STEP_UP,)))
    assert not isinstance(caught.value, DPoPNonceRejected)
    assert len(caught.value.challenges) == 2


def test_a_nonce_on_a_success_is_remembered_without_a_resend() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(BOUND)
    assert flow.send(ApiReply(200, (), "n-9")) == DPoPNonce(ROUTE, "n-9")
    with pytest.raises(StopIteration):
        flow.send(None)


@pytest.mark.parametrize(
    ("token", "reply"),
    [
        # A Bearer token: a use_dpop_nonce is not this client's business.
        (TokenSet("at-b"), nonce_reply()),
        # Without a DPoP-Nonce header there is no nonce to send.
        (BOUND, ApiReply(401, (NONCE_PLEASE,))),
        # A DPoP-Nonce that is not one by the §8.1 grammar.
        (BOUND, ApiReply(401, (NONCE_PLEASE,), 'bad "nonce"')),
        # use_dpop_nonce on the Bearer scheme, or with another status.
        (BOUND, ApiReply(401, ('Bearer error="use_dpop_nonce"',), "n-1")),
        (BOUND, ApiReply(400, (NONCE_PLEASE,), "n-1")),
    ],
)
def test_what_is_not_a_nonce_request_ends_the_flow(token: TokenSet, reply: ApiReply) -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(token)
    try:
        action = flow.send(reply)
    except StopIteration:
        return
    # Only the remembering of a valid nonce may come, never a resend.
    assert isinstance(action, DPoPNonce)
    with pytest.raises(StopIteration):
        flow.send(None)


# --- the headers of a send ---------------------------------------------------------------------


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_signer_puts_each_servers_latest_nonce_in_a_new_proof(key: DPoPKey) -> None:
    clock = Clock()
    signer = DPoPSigner(key, clock)
    checker = ProofChecker()
    signer.remember("https://API.example:443/x", "n-1")
    signer.remember("https://api.example/y", "n-2")  # the same server: the latest wins
    signer.remember("https://other.example/", "n-3")
    signer.remember("https://api.example/", 'not "a" nonce')  # ignored
    first = checker.check(
        signer.proof("POST", URL, access_token="at-1"), method="POST", url=URL, now=clock.now
    )
    second = checker.check(
        signer.proof("POST", URL, access_token="at-1"), method="POST", url=URL, now=clock.now
    )
    assert (first.nonce, first.jkt, first.htu) == ("n-2", key.jkt, htu_of(URL))
    assert first.jti != second.jti  # §4.2: a new proof per request
    assert signer.nonce_for("https://elsewhere.example/") is None


def test_send_headers_are_the_dpop_scheme_and_the_proof_and_a_bearer_send_drops_it() -> None:
    headers = {"Authorization": "x", "DPoP": "old"}
    set_authorization(headers, Send(BOUND, 1, "initial"), "proof-1")
    assert headers == {"Authorization": "DPoP at-1", "DPoP": "proof-1"}
    set_authorization(headers, Send(TokenSet("at-b"), 2, "after_step_up"))
    assert headers == {"Authorization": "Bearer at-b"}


def _discovery_only(request: HttpRequest) -> HttpResponse:
    if request.url.endswith("/.well-known/openid-configuration"):
        return HttpResponse(200, {}, json.dumps(discovery_document()).encode())
    return HttpResponse(500, {}, b"")


def _client(key: DPoPKey | bool, transport: Any = None) -> OIDCClient:
    return OIDCClient(
        ISSUER,
        "bank-cli",
        authenticator=None,  # type: ignore[arg-type]
        transport=transport or _discovery_only,
        clock=Clock(),
        dpop=key,
    )


def test_the_driver_signs_a_proof_with_ath_for_each_send_of_a_bound_token(key: DPoPKey) -> None:
    client = _client(key)

    class Source:
        def token_for(self, route: Route) -> TokenSet:
            return BOUND

        def remember_dpop_nonce(self, route: Route, nonce: str) -> None:
            client.remember_dpop_nonce(route, nonce)

    driver = Driver(Source(), "POST", URL)  # type: ignore[arg-type]
    send = driver.start()
    first = client.dpop_proof("POST", URL, send.token)
    resend = driver.feed(nonce_reply("n-7"))
    assert resend is not None
    assert resend.reason == "dpop_nonce"
    second = client.dpop_proof("POST", URL, resend.token)
    assert first is not None
    assert second is not None
    checker = ProofChecker()
    now = client.now()
    one = checker.check(first, method="POST", url=URL, now=now, access_token="at-1")
    two = checker.check(second, method="POST", url=URL, now=now, access_token="at-1")
    assert (one.nonce, two.nonce) == (None, "n-7")
    assert json.loads(_payload(second))["ath"] == access_token_hash("at-1")
    assert client.dpop_proof("POST", URL, TokenSet("at-b")) is None
    assert client.dpop_proof("POST", URL, None) is None


def test_a_bound_token_without_a_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        _client(False).dpop_proof("GET", URL, BOUND)


def test_dpop_true_makes_one_key_for_the_life_of_the_client() -> None:
    client = _client(True)
    # Made with the discovery document (the provider's algorithms, §5.1), then kept.
    assert client.dpop_key is None
    client.metadata()
    key = client.dpop_key
    assert key is not None
    assert key.alg == "ES256"
    assert client.dpop_proof("GET", URL, BOUND) is not None
    assert client.dpop_key is key
    assert _client(False).dpop_key is None


def _payload(jws: str) -> bytes:
    body = jws.split(".")[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


# --- the authorization request: §10 dpop_jkt ---------------------------------------------------


def test_the_authorization_request_carries_dpop_jkt(key: DPoPKey) -> None:
    pending = new_authorization(
        issuer=ISSUER, client_id="c", redirect_uri="http://127.0.0.1/cb", scope="openid",
        requirement=Requirement(), now=0, dpop_jkt=key.jkt,
    )  # fmt: skip
    assert authorization_params(pending)["dpop_jkt"] == key.jkt
    assert type(pending).from_dict(pending.to_dict()) == pending
    plain = new_authorization(
        issuer=ISSUER, client_id="c", redirect_uri="http://127.0.0.1/cb", scope="openid",
        requirement=Requirement(), now=0,
    )  # fmt: skip
    assert "dpop_jkt" not in authorization_params(plain)


def test_the_client_builds_its_authorization_requests_with_its_keys_thumbprint(
    key: DPoPKey,
) -> None:
    client = _client(key, _Provider([]))
    seen: list[str] = []

    class Authenticator:
        def authenticate(self, login: LoginRequest) -> str:
            seen.append(login.authorization_url("http://127.0.0.1:8765/callback"))
            raise ProviderError("stop here")

    client.authenticator = Authenticator()
    with pytest.raises(ProviderError):
        client.login()
    assert f"dpop_jkt={key.jkt}" in seen[0]


# --- the token endpoint: §5 token_type, §8 nonces ---------------------------------------------


def _token_body(token_type: str) -> HttpResponse:
    body = {"access_token": "at", "token_type": token_type, "expires_in": 60}
    return HttpResponse(200, {}, json.dumps(body).encode())


@pytest.mark.parametrize(("asked", "given"), [("DPoP", "Bearer"), ("Bearer", "DPoP")])
def test_a_token_type_other_than_the_one_asked_for_is_refused(asked: str, given: str) -> None:
    with pytest.raises(TokenTypeMismatch) as caught:
        parse_token_response(_token_body(given), token_type=asked)
    assert (caught.value.expected, caught.value.received) == (asked, given)


@pytest.mark.parametrize("given", ["DPoP", "dpop", "DPOP"])
def test_the_dpop_token_type_is_read_without_regard_to_case(given: str) -> None:
    assert parse_token_response(_token_body(given), token_type="DPoP").token_type == "DPoP"


def _nonce_answer(nonce: str | None, error: str = "use_dpop_nonce") -> HttpResponse:
    headers = {"content-type": "application/json"}
    if nonce is not None:
        headers["dpop-nonce"] = nonce
    return HttpResponse(400, headers, json.dumps({"error": error}).encode())


def test_provider_nonce_requests_are_400_use_dpop_nonce_with_a_valid_header() -> None:
    assert provider_nonce_request(_nonce_answer("n-1")) == "n-1"
    assert provider_nonce_request(_nonce_answer(None)) is None
    assert provider_nonce_request(_nonce_answer("n-1", "invalid_dpop_proof")) is None
    assert provider_nonce_request(_nonce_answer("bad nonce")) is None  # a space: not NQCHAR
    assert resource_nonce_request(401, [NONCE_PLEASE], "n-1") == "n-1"
    assert resource_nonce_request(401, ["DPoP error="], "n-1") is None  # malformed challenge
    assert valid_nonce("x" * 1025) is None


class _Provider:
    """A transport: the discovery document, then the scripted token endpoint answers."""

    def __init__(self, answers: list[HttpResponse]) -> None:
        self.answers: Iterator[HttpResponse] = iter(answers)
        self.proofs: list[str | None] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/.well-known/openid-configuration"):
            return HttpResponse(200, {}, json.dumps(discovery_document()).encode())
        self.proofs.append(request.headers.get("DPoP"))
        return next(self.answers)


def _refresh(client: OIDCClient, rejected: str = "old") -> TokenSet | None:
    return client.refresh(TokenSet(rejected, token_type="DPoP", refresh_token="rt"))


def test_the_token_endpoint_nonce_is_sent_once_then_remembered(key: DPoPKey) -> None:
    provider = _Provider([_nonce_answer("n-1"), _token_body("DPoP"), _token_body("DPoP")])
    client = _client(key, provider)
    first = _refresh(client)
    assert first is not None
    assert first.is_dpop
    assert first.authorization() == "DPoP at"
    _refresh(client, rejected="at")
    checker = ProofChecker()
    token_url = f"{ISSUER}/token"
    nonces = [
        checker.check(p or "", method="POST", url=token_url, now=client.now()).nonce
        for p in provider.proofs
    ]
    # Without a nonce, then with the one asked for, then with the remembered one at once.
    assert nonces == [None, "n-1", "n-1"]


def test_the_token_endpoint_asking_twice_is_dpop_nonce_rejected(key: DPoPKey) -> None:
    provider = _Provider([_nonce_answer("n-1"), _nonce_answer("n-2"), _token_body("DPoP")])
    with pytest.raises(DPoPNonceRejected) as caught:
        _refresh(_client(key, provider))
    assert (caught.value.url, caught.value.status_code) == (f"{ISSUER}/token", 400)
    assert len(provider.proofs) == 2  # never a third try


def test_a_bearer_token_to_a_dpop_client_is_refused_even_on_refresh(key: DPoPKey) -> None:
    provider = _Provider([_token_body("Bearer")])
    with pytest.raises(TokenTypeMismatch):
        _refresh(_client(key, provider))
