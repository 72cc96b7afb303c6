"""RFC 9449 §7 through ``stepup gateway`` and ``stepup sideband`` (nginx, Envoy, Traefik and JSON
dialects), over real sockets: a DPoP proof's ``htu`` is the URL the client used — the gateway's
own origin, or the one the gateway in front names (``X-Forwarded-Proto``/``-Host``, ``Host``) — and
every challenge to a DPoP request, step-up included, is on the ``DPoP`` scheme with ``algs``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from client_sdk import parse_www_authenticate
from client_sdk.dpop import DPOP_ALGORITHMS, DPoPKey
from resource_api.gateway import Enforcer, GatewayApp, SidebandApp

from ..resource_api.support import LOA1, LOA2, Clock, FakeIssuer
from .support import Echo, echo_upstream, serving_asgi

pytestmark = pytest.mark.e2e

EXTERNAL = "https://api.example"


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture
def echo() -> Iterator[Echo]:
    with echo_upstream() as upstream:
        yield upstream


@pytest.fixture
def gateway(enforcer: Enforcer, echo: Echo) -> Iterator[str]:
    with serving_asgi(GatewayApp(enforcer, echo.url, timeout=2, max_body=4096)) as url:
        yield url


@pytest.fixture
def sideband(enforcer: Enforcer) -> Iterator[str]:
    with serving_asgi(SidebandApp(enforcer, max_body=4096)) as url:
        yield url


def dpop(token: str, proof: str | None) -> dict[str, str]:
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return headers


def dpop_params(response: Any, header: str = "WWW-Authenticate") -> dict[str, str]:
    [challenge] = parse_www_authenticate(response.headers[header])
    assert challenge.scheme == "dpop"
    assert challenge.params["algs"] == " ".join(DPOP_ALGORITHMS)
    return dict(challenge.params)


# --- the gateway ---------------------------------------------------------------------------------


def test_the_gateway_forwards_a_bound_token_with_a_proof_for_its_own_url(
    gateway: str, echo: Echo, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    proof = key.proof("GET", f"{gateway}/accounts", now=clock(), access_token=token)
    response = requests.get(f"{gateway}/accounts?page=1", headers=dpop(token, proof), timeout=10)
    assert response.status_code == 200
    [got] = echo.received
    assert got.header("X-Stepup-Subject") == ["alice"]
    # The same proof again is a replay.
    again = requests.get(f"{gateway}/accounts", headers=dpop(token, proof), timeout=10)
    assert (again.status_code, dpop_params(again)["error"]) == (401, "invalid_dpop_proof")
    assert len(echo.received) == 1


def test_the_gateway_steps_up_a_dpop_token_on_the_dpop_scheme(
    gateway: str, echo: Echo, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt}, acr=LOA1, amr=["pwd"])
    proof = key.proof("POST", f"{gateway}/transfers", now=clock(), access_token=token)
    response = requests.post(f"{gateway}/transfers", json={"amount": "1"}, timeout=10,
                             headers=dpop(token, proof))  # fmt: skip
    assert response.status_code == 401
    params = dpop_params(response)
    assert (params["error"], params["acr_values"], params["max_age"]) == (
        "insufficient_user_authentication", LOA2, "3600")  # fmt: skip
    assert params["resource_metadata"] == f"{gateway}/.well-known/oauth-protected-resource"
    assert echo.received == []


@pytest.mark.parametrize("case", ["as bearer", "no proof", "proof for another host"])
def test_the_gateway_refuses_a_bound_token_without_a_good_proof(
    gateway: str, echo: Echo, issuer: FakeIssuer, clock: Clock, key: DPoPKey, case: str
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    if case == "as bearer":
        headers, error = {"Authorization": f"Bearer {token}"}, "invalid_token"
    elif case == "no proof":
        headers, error = dpop(token, None), "invalid_dpop_proof"
    else:
        other = key.proof("GET", f"{EXTERNAL}/accounts", now=clock(), access_token=token)
        headers, error = dpop(token, other), "invalid_dpop_proof"
    response = requests.get(f"{gateway}/accounts", headers=headers, timeout=10)
    assert (response.status_code, response.json()["error"]) == (401, error)
    assert dpop_params(response)["error"] == error
    assert echo.received == []


def test_the_gateway_metadata_lists_the_dpop_algorithms(gateway: str) -> None:
    doc = requests.get(f"{gateway}/.well-known/oauth-protected-resource", timeout=10).json()
    assert doc["dpop_signing_alg_values_supported"] == list(DPOP_ALGORITHMS)


# --- the sideband: the URL comes from the gateway in front ---------------------------------------


def nginx(url: str, method: str, uri: str, headers: dict[str, str]) -> Any:
    sent = {"X-Original-Method": method, "X-Original-URI": uri, "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "api.example", "Host": "sideband.internal", **headers}  # fmt: skip
    return requests.get(f"{url}/sideband/nginx", headers=sent, timeout=10)


def test_nginx_dialect_checks_htu_against_the_forwarded_origin(
    sideband: str, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    good = key.proof("PUT", f"{EXTERNAL}/profile/email", now=clock(), access_token=token)
    allowed = nginx(sideband, "PUT", "/profile/email?x=1", dpop(token, good))
    assert allowed.status_code == 200
    assert allowed.headers["X-Stepup-Subject"] == "alice"
    internal = key.proof("PUT", f"{sideband}/profile/email", now=clock(), access_token=token)
    refused = nginx(sideband, "PUT", "/profile/email", dpop(token, internal))
    assert refused.status_code == 401  # nginx passes the challenge of a 401 on
    assert dpop_params(refused)["error"] == "invalid_dpop_proof"
    assert refused.headers["X-Stepup-Status"] == "401"


def test_nginx_dialect_step_up_challenge_is_on_the_dpop_scheme(
    sideband: str, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt}, acr=LOA1, amr=["pwd"])
    proof = key.proof("PUT", f"{EXTERNAL}/profile/email", now=clock(), access_token=token)
    response = nginx(sideband, "PUT", "/profile/email", dpop(token, proof))
    params = dpop_params(response)
    assert (response.status_code, params["error"], params["max_age"]) == (
        401, "insufficient_user_authentication", "120")  # fmt: skip
    assert params["resource_metadata"] == f"{EXTERNAL}/.well-known/oauth-protected-resource"


def test_traefik_dialect_reads_the_forwarded_uri(
    sideband: str, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    proof = key.proof("GET", f"{EXTERNAL}/accounts", now=clock(), access_token=token)
    headers = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/accounts",
               "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example",
               **dpop(token, proof)}  # fmt: skip
    response = requests.get(f"{sideband}/sideband/traefik", headers=headers, timeout=10)
    assert response.status_code == 200


def test_envoy_dialect_reads_the_host_and_the_path_after_the_prefix(
    sideband: str, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    proof = key.proof("GET", "http://api.example/accounts", now=clock(), access_token=token)
    headers = {"Host": "api.example", **dpop(token, proof)}
    response = requests.get(f"{sideband}/sideband/envoy/accounts", headers=headers, timeout=10)
    assert response.status_code == 200


def test_the_json_sideband_takes_the_url_it_is_given(
    sideband: str, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    proof = key.proof("GET", f"{EXTERNAL}/accounts", now=clock(), access_token=token)
    body = {"method": "GET", "url": f"{EXTERNAL}/accounts?x=1", "headers": dpop(token, proof)}
    answer = requests.post(f"{sideband}/sideband/request", json=body, timeout=10).json()
    assert answer["decision"] == "allow"
    replayed = requests.post(f"{sideband}/sideband/request", json=body, timeout=10).json()
    assert replayed["decision"] == "refuse"
    assert json.loads(replayed["response"]["body"])["error"] == "invalid_dpop_proof"
