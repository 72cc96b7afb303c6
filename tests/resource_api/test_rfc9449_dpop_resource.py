"""RFC 9449 §7 at the resource API (the Flask library, through the demo bank): DPoP-bound tokens
with proofs, every refusal on the ``DPoP`` scheme with ``algs``, step-up challenges on it
(RFC 9470 §3 with ``resource_metadata``, RFC 9728 §5.1), nonces (§9) and replay (§11.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from client_sdk.challenges import parse_www_authenticate
from client_sdk.dpop import DPOP_ALGORITHMS, DPoPKey
from client_sdk.dpop_check import Nonces
from resource_api import JwtAccessTokenValidator, create_app
from resource_api.dpop import DPoPVerifier, ReplayCache

from .support import LOA1, LOA2, Clock, FakeIssuer, sandbox_config

BASE = "http://bank.test"
METADATA = BASE + "/.well-known/oauth-protected-resource"
ALGS = " ".join(DPOP_ALGORITHMS)


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


def call(
    client: FlaskClient,
    method: str,
    path: str,
    token: str,
    *,
    scheme: str = "DPoP",
    proofs: list[str] | None = None,
    **kw: Any,
) -> TestResponse:
    headers = [("Authorization", f"{scheme} {token}"), *(("DPoP", p) for p in proofs or [])]
    return client.open(BASE + path, method=method, headers=headers, **kw)


def proof(key: DPoPKey, clock: Clock, method: str, path: str, token: str, **kw: Any) -> str:
    return key.proof(method, BASE + path, now=clock(), access_token=token, **kw)


def dpop_challenge(response: TestResponse) -> dict[str, str]:
    """The one challenge of the response, which must be on the DPoP scheme with ``algs``."""
    [challenge] = parse_www_authenticate(response.headers.getlist("WWW-Authenticate"))
    assert challenge.scheme == "dpop", challenge
    assert challenge.params["algs"] == ALGS
    assert challenge.params["resource_metadata"] == METADATA
    return dict(challenge.params)


def test_a_bound_token_with_its_proof_is_served(
    client: FlaskClient, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    response = call(client, "GET", "/accounts", token,
                    proofs=[proof(key, clock, "GET", "/accounts", token)])  # fmt: skip
    assert response.status_code == 200, response.json
    # The query is no part of htu (§4.2): the same proof shape for /accounts?x=1.
    response = call(client, "GET", "/accounts?x=1", token,
                    proofs=[proof(key, clock, "GET", "/accounts?y=2", token)])  # fmt: skip
    assert response.status_code == 200, response.json


def test_a_bound_token_sent_as_bearer_is_refused_on_the_dpop_scheme(
    client: FlaskClient, issuer: FakeIssuer, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    response = call(client, "GET", "/accounts", token, scheme="Bearer")
    assert (response.status_code, response.json["error"]) == (401, "invalid_token")  # type: ignore[index]
    assert dpop_challenge(response)["error"] == "invalid_token"


def test_a_bearer_token_sent_as_dpop_is_refused(
    client: FlaskClient, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint()
    response = call(client, "GET", "/accounts", token,
                    proofs=[proof(key, clock, "GET", "/accounts", token)])  # fmt: skip
    assert (response.status_code, response.json["error"]) == (401, "invalid_token")  # type: ignore[index]
    assert "not DPoP-bound" in dpop_challenge(response)["error_description"]


def test_an_expired_dpop_token_is_invalid_token_on_the_dpop_scheme(
    client: FlaskClient, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt}, exp=int(clock()) - 100)
    response = call(client, "GET", "/accounts", token,
                    proofs=[proof(key, clock, "GET", "/accounts", token)])  # fmt: skip
    assert dpop_challenge(response)["error"] == "invalid_token"


BAD_PROOFS: dict[str, Any] = {
    "no proof": lambda key, clock, token: [],
    "two proofs": lambda key, clock, token: [proof(key, clock, "GET", "/accounts", token)] * 2,
    "wrong htm": lambda key, clock, token: [proof(key, clock, "POST", "/accounts", token)],
    "wrong htu": lambda key, clock, token: [proof(key, clock, "GET", "/transfers", token)],
    "other origin": lambda key, clock, token: [
        key.proof("GET", "https://bank.test/accounts", now=clock(), access_token=token)],
    "stale iat": lambda key, clock, token: [
        key.proof("GET", BASE + "/accounts", now=clock() - 91, access_token=token)],
    "future iat": lambda key, clock, token: [
        key.proof("GET", BASE + "/accounts", now=clock() + 31, access_token=token)],
    "wrong ath": lambda key, clock, token: [proof(key, clock, "GET", "/accounts", token + "x")],
    "jkt mismatch": lambda key, clock, token: [
        proof(DPoPKey.generate(), clock, "GET", "/accounts", token)],
    "not a jwt": lambda key, clock, token: ["nope"],
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_PROOFS))
def test_a_bad_proof_is_invalid_dpop_proof(
    client: FlaskClient, issuer: FakeIssuer, clock: Clock, key: DPoPKey, case: str
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    response = call(client, "GET", "/accounts", token, proofs=BAD_PROOFS[case](key, clock, token))
    assert (response.status_code, response.json["error"]) == (401, "invalid_dpop_proof")  # type: ignore[index]
    assert dpop_challenge(response)["error"] == "invalid_dpop_proof"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_replayed_proof_is_refused(
    client: FlaskClient, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt})
    once = proof(key, clock, "GET", "/accounts", token)
    assert call(client, "GET", "/accounts", token, proofs=[once]).status_code == 200
    again = call(client, "GET", "/accounts", token, proofs=[once])
    assert (again.status_code, again.json["error"]) == (401, "invalid_dpop_proof")  # type: ignore[index]
    assert "used before" in again.json["error_description"]  # type: ignore[index]


def test_step_up_challenges_a_dpop_token_on_the_dpop_scheme(
    client: FlaskClient, issuer: FakeIssuer, clock: Clock, key: DPoPKey
) -> None:
    """RFC 9470 §3 defines insufficient_user_authentication for the DPoP scheme too; the
    challenge carries acr_values, max_age and resource_metadata (DESIGN contract 12)."""
    token = issuer.mint(cnf={"jkt": key.jkt}, acr=LOA1, amr=["pwd"])
    body = {"from_account": "x", "to_account": "y", "amount": "1.00"}
    response = call(client, "POST", "/transfers", token, json=body,
                    proofs=[proof(key, clock, "POST", "/transfers", token)])  # fmt: skip
    assert response.status_code == 401
    params = dpop_challenge(response)
    assert params["error"] == "insufficient_user_authentication"
    assert (params["acr_values"], params["max_age"]) == (LOA2, "3600")


def test_a_bound_token_sent_as_bearer_to_a_step_up_route_is_not_stepped_up(
    client: FlaskClient, issuer: FakeIssuer, key: DPoPKey
) -> None:
    token = issuer.mint(cnf={"jkt": key.jkt}, acr=LOA1, amr=["pwd"])
    response = call(client, "POST", "/transfers", token, scheme="Bearer", json={})
    assert dpop_challenge(response)["error"] == "invalid_token"


def test_a_bearer_token_keeps_its_bearer_challenges(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    token = issuer.mint(acr=LOA1, amr=["pwd"])
    response = call(client, "POST", "/transfers", token, scheme="Bearer", json={})
    [challenge] = parse_www_authenticate(response.headers.getlist("WWW-Authenticate"))
    assert challenge.scheme == "bearer"
    assert "algs" not in challenge.params


def test_the_metadata_document_lists_the_dpop_algorithms(client: FlaskClient) -> None:
    doc = client.get(METADATA).json
    assert doc is not None
    assert doc["dpop_signing_alg_values_supported"] == list(DPOP_ALGORITHMS)


# --- nonces (§9) and public_url ------------------------------------------------------------------


@pytest.fixture
def nonces() -> Nonces:
    return Nonces(b"resource-server-nonce-secret", period=300)


@pytest.fixture
def strict_bank(
    validator: JwtAccessTokenValidator, clock: Clock, tmp_path: Path, nonces: Nonces
) -> Flask:
    verifier = DPoPVerifier(nonces=nonces, clock=clock)
    return create_app(sandbox_config(), database_url=f"sqlite:///{tmp_path}/bank.db",
                      token_validator=validator, clock=clock, dpop=verifier)  # fmt: skip


def test_a_server_with_nonces_asks_for_one_with_use_dpop_nonce(
    strict_bank: Flask, issuer: FakeIssuer, clock: Clock, key: DPoPKey, nonces: Nonces
) -> None:
    client = strict_bank.test_client()
    token = issuer.mint(cnf={"jkt": key.jkt})
    first = call(client, "GET", "/accounts", token,
                 proofs=[proof(key, clock, "GET", "/accounts", token)])  # fmt: skip
    assert (first.status_code, first.json["error"]) == (401, "use_dpop_nonce")  # type: ignore[index]
    assert dpop_challenge(first)["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    assert nonce == nonces.current(clock())
    second = call(client, "GET", "/accounts", token,
                  proofs=[proof(key, clock, "GET", "/accounts", token, nonce=nonce)])  # fmt: skip
    assert second.status_code == 200, second.json
    clock.advance(600)  # two windows on: the nonce is stale, the answer carries the new one
    token = issuer.mint(cnf={"jkt": key.jkt})
    stale = call(client, "GET", "/accounts", token,
                 proofs=[proof(key, clock, "GET", "/accounts", token, nonce=nonce)])  # fmt: skip
    assert stale.json["error"] == "use_dpop_nonce"  # type: ignore[index]
    assert stale.headers["DPoP-Nonce"] == nonces.current(clock()) != nonce


def test_public_url_is_the_origin_proofs_are_for(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer, key: DPoPKey
) -> None:
    from resource_api import StepUp

    app = Flask(__name__)
    StepUp(app, validator=validator, clock=clock, public_url="https://api.example/")

    @app.get("/things")
    def things() -> dict[str, str]:
        return {"ok": "yes"}

    client = app.test_client()
    token = issuer.mint(cnf={"jkt": key.jkt})
    external = key.proof("GET", "https://api.example/things", now=clock(), access_token=token)
    ok = client.get("/things", headers={"Authorization": f"DPoP {token}", "DPoP": external})
    assert ok.status_code == 200, ok.json
    internal = key.proof("GET", "http://localhost/things", now=clock(), access_token=token)
    refused = client.get("/things", headers={"Authorization": f"DPoP {token}", "DPoP": internal})
    assert refused.json["error"] == "invalid_dpop_proof"  # type: ignore[index]


# --- the replay cache ----------------------------------------------------------------------------


def test_the_replay_cache_forgets_expired_entries_and_stays_bounded() -> None:
    cache = ReplayCache(max_entries=3)
    assert cache.remember("a", 100, 0) is True
    assert cache.remember("a", 100, 50) is False
    assert cache.remember("a", 200, 101) is True  # expired: a new proof may reuse the key
    for k in "bcd":
        assert cache.remember(k, 1000, 150) is True
    assert len(cache) == 3
    assert cache.remember("a", 1000, 150) is True  # the oldest went first
