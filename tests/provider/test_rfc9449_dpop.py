"""RFC 9449 at the provider: DPoP proofs at the token endpoint (every grant), bound access tokens
(``cnf.jkt``, ``token_type`` ``DPoP``), public clients' bound refresh tokens, nonces, ``jti``
replay across processes (SQLite and PostgreSQL), ``dpop_jkt`` at the authorization endpoint,
``dpop_bound_access_tokens`` per client, and userinfo as a DPoP protected resource."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from werkzeug.test import TestResponse

from client_sdk.dpop import DPoPKey, jwk_thumbprint
from provider import create_app
from provider.app import Provider
from provider.models import Grant
from provider.settings import ClientConfig
from stepup.config import StepupConfig

from .flow import CLI_REDIRECT, WEB_REDIRECT, Browser, Client, claims
from .test_races import race

WEB = ("bank-web", "bank-web-secret-for-the-local-sandbox")
JOB = ("reports-job", "reports-job-secret-for-the-local-sandbox")


@pytest.fixture
def config(config: StepupConfig) -> StepupConfig:
    """The sandbox, plus a public client registered with ``dpop_bound_access_tokens``."""
    agent = ClientConfig("bank-agent", redirect_uris=(CLI_REDIRECT,), dpop_bound_access_tokens=True)
    return replace(config, clients=(*config.clients, agent))


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


def op_of(app: Flask) -> Provider:
    provider: Provider = app.extensions["stepup_provider"]
    return provider


def proof_for(app: Flask, key: DPoPKey, path: str = "/token", **kw: Any) -> str:
    method = kw.pop("method", "POST")
    return key.proof(method, op_of(app).issuer + path, now=time.time(), **kw)


def token_call(
    http: FlaskClient,
    data: dict[str, str],
    *,
    proofs: list[str] = (),  # type: ignore[assignment]
    auth: tuple[str, str] | None = None,
) -> TestResponse:
    headers = [("DPoP", p) for p in proofs]
    return http.post("/token", data=data, headers=headers, auth=auth)


def with_nonce(
    app: Flask, http: FlaskClient, data: dict[str, str], key: DPoPKey, **kw: Any
) -> TestResponse:
    """A token request the way a client does it: first proof without a nonce, then (after
    ``use_dpop_nonce``) with the one the provider gave."""
    first = token_call(http, data, proofs=[proof_for(app, key)], **kw)
    if first.status_code == 400 and first.json["error"] == "use_dpop_nonce":  # type: ignore[index]
        nonce = first.headers["DPoP-Nonce"]
        return token_call(http, data, proofs=[proof_for(app, key, nonce=nonce)], **kw)
    return first


def error_of(response: TestResponse) -> tuple[int, str]:
    return response.status_code, response.json["error"]  # type: ignore[index]


def code_data(client: Client, code: str) -> dict[str, str]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": client.verifier,
    }
    if client.secret is None:
        data["client_id"] = client.client_id
    return data


# --- the token endpoint -------------------------------------------------------------------------


def test_a_proof_without_a_nonce_is_asked_for_one_then_the_code_gives_a_bound_token(
    app: Flask, cli: Client, key: DPoPKey
) -> None:
    callback = cli.sign_in()
    data = code_data(cli, callback["code"])
    first = token_call(cli.browser.http, data, proofs=[proof_for(app, key)])
    # RFC 9449 §8: 400, use_dpop_nonce, the nonce in DPoP-Nonce; the code is not used up.
    assert error_of(first) == (400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    assert nonce == op_of(app).dpop.nonces.current(time.time())
    assert first.headers["Cache-Control"] == "no-store"
    second = token_call(cli.browser.http, data, proofs=[proof_for(app, key, nonce=nonce)])
    assert second.status_code == 200, second.json
    body: dict[str, Any] = second.json  # type: ignore[assignment]
    assert body["token_type"] == "DPoP"
    assert second.headers["DPoP-Nonce"] == nonce
    at = claims(app, body["access_token"])
    # RFC 9449 §6.1: cnf.jkt, the RFC 7638 thumbprint of the proof's key.
    assert at["cnf"] == {"jkt": key.jkt} == {"jkt": jwk_thumbprint(key.public_jwk)}
    with op_of(app).db.session() as s:
        grant = s.scalar(select(Grant).where(Grant.jti == at["jti"]))
        assert grant is not None
        assert grant.dpop_jkt == key.jkt


def test_a_public_clients_refresh_token_is_bound_to_its_key(
    app: Flask, cli: Client, key: DPoPKey
) -> None:
    http = cli.browser.http
    body = with_nonce(app, http, code_data(cli, cli.sign_in()["code"]), key).json
    assert body is not None
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
               "client_id": "bank-cli"}  # fmt: skip
    # §5: a refresh token bound to a key needs a proof with that key — not none, not another.
    assert error_of(token_call(http, refresh)) == (400, "invalid_dpop_proof")
    other = with_nonce(app, http, refresh, DPoPKey.generate())
    assert error_of(other) == (400, "invalid_dpop_proof")
    assert "another key" in other.json["error_description"]  # type: ignore[index]
    good = with_nonce(app, http, refresh, key)
    assert good.status_code == 200, good.json
    renewed: dict[str, Any] = good.json  # type: ignore[assignment]
    assert renewed["token_type"] == "DPoP"
    assert claims(app, renewed["access_token"])["cnf"] == {"jkt": key.jkt}
    # The refused attempts did not spend the refresh token: the good one rotated it.
    assert renewed["refresh_token"] != body["refresh_token"]


def test_a_confidential_clients_refresh_token_is_not_bound(app: Flask, key: DPoPKey) -> None:
    web = Client(Browser(app), "bank-web", WEB_REDIRECT, secret=WEB[1])
    http = web.browser.http
    body = with_nonce(app, http, code_data(web, web.sign_in()["code"]), key, auth=WEB).json
    assert body is not None
    assert body["token_type"] == "DPoP"
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    # §5: "Refresh tokens issued to confidential clients are not bound to the DPoP proof public
    # key"; a refresh without a proof gets a bearer token, with another key a token bound to it.
    plain = token_call(http, refresh, auth=WEB)
    assert plain.status_code == 200, plain.json
    assert plain.json["token_type"] == "Bearer"  # type: ignore[index]
    assert "cnf" not in claims(app, plain.json["access_token"])  # type: ignore[index]
    other = DPoPKey.generate()
    refresh["refresh_token"] = plain.json["refresh_token"]  # type: ignore[index]
    rebound = with_nonce(app, http, refresh, other, auth=WEB)
    assert rebound.status_code == 200, rebound.json
    assert claims(app, rebound.json["access_token"])["cnf"] == {"jkt": other.jkt}  # type: ignore[index]


def test_client_credentials_with_a_proof_is_bound_and_introspection_says_so(
    app: Flask, browser: Browser, key: DPoPKey
) -> None:
    response = with_nonce(app, browser.http, {"grant_type": "client_credentials"}, key, auth=JOB)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert body["token_type"] == "DPoP"
    info = browser.http.post("/introspect", data={"token": body["access_token"]}, auth=WEB).json
    assert info is not None
    # RFC 9449 §6.2: the introspection response carries cnf.jkt and token_type DPoP.
    assert (info["active"], info["token_type"], info["cnf"]) == (True, "DPoP", {"jkt": key.jkt})


def test_a_client_registered_with_dpop_bound_access_tokens_must_send_a_proof(
    app: Flask, browser: Browser, key: DPoPKey
) -> None:
    agent = Client(browser, "bank-agent", CLI_REDIRECT)
    data = code_data(agent, agent.sign_in()["code"])
    # RFC 9449 §5.2: "the authorization server MUST reject token requests from this client that
    # do not contain the DPoP header".
    refused = token_call(browser.http, data)
    assert error_of(refused) == (400, "invalid_dpop_proof")
    assert "dpop_bound_access_tokens" in refused.json["error_description"]  # type: ignore[index]
    # The refusal came before the code was used: with a proof, it still works.
    response = with_nonce(app, browser.http, data, key)
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "DPoP"  # type: ignore[index]


def test_a_client_without_the_switch_may_still_use_bearer_tokens(cli: Client) -> None:
    body = cli.tokens()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in claims(cli.browser.app, body["access_token"])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda app, key: proof_for(app, key, path="/userinfo"), "htu"),
        (lambda app, key: proof_for(app, key, method="GET"), "htm"),
        (lambda app, key: key.proof("POST", op_of(app).issuer + "/token", now=time.time() - 300),
         "too old"),
        (lambda app, key: "not.a.jwt", "not base64url JSON"),
    ],
)  # fmt: skip
def test_a_bad_proof_is_invalid_dpop_proof_with_what_is_wrong(
    app: Flask, browser: Browser, key: DPoPKey, make: Any, words: str
) -> None:
    response = token_call(
        browser.http, {"grant_type": "client_credentials"}, proofs=[make(app, key)], auth=JOB
    )
    assert error_of(response) == (400, "invalid_dpop_proof")
    assert words in response.json["error_description"]  # type: ignore[index]
    assert response.headers["DPoP-Nonce"] == op_of(app).dpop.nonces.current(time.time())


def test_two_dpop_headers_are_refused(app: Flask, browser: Browser, key: DPoPKey) -> None:
    nonce = op_of(app).dpop.nonces.current(time.time())
    proofs = [proof_for(app, key, nonce=nonce), proof_for(app, key, nonce=nonce)]
    response = token_call(browser.http, {"grant_type": "client_credentials"}, proofs=proofs,
                          auth=JOB)  # fmt: skip
    assert error_of(response) == (400, "invalid_dpop_proof")


def test_a_proof_is_accepted_once(app: Flask, browser: Browser, key: DPoPKey) -> None:
    nonce = op_of(app).dpop.nonces.current(time.time())
    proof = proof_for(app, key, nonce=nonce)
    data = {"grant_type": "client_credentials"}
    assert token_call(browser.http, data, proofs=[proof], auth=JOB).status_code == 200
    again = token_call(browser.http, data, proofs=[proof], auth=JOB)
    assert error_of(again) == (400, "invalid_dpop_proof")
    assert "used before" in again.json["error_description"]  # type: ignore[index]


def test_a_replayed_proof_racing_in_parallel_wins_once(app: Flask, key: DPoPKey) -> None:
    """§11.1, on SQLite and PostgreSQL: eight requests with one proof at the same moment, each on
    its own connection; one atomic statement lets exactly one through."""
    nonce = op_of(app).dpop.nonces.current(time.time())
    proof = proof_for(app, key, nonce=nonce)
    responses = race(
        app,
        lambda http: token_call(
            http, {"grant_type": "client_credentials"}, proofs=[proof], auth=JOB
        ),
        n=8,
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 7
    assert {r.json["error"] for r in responses if r.status_code == 400} == {"invalid_dpop_proof"}  # type: ignore[index]


def test_nonces_rotate_and_an_old_one_is_answered_with_the_new_one(
    app: Flask, browser: Browser, key: DPoPKey, frozen: FrozenDateTimeFactory
) -> None:
    dpop = op_of(app).dpop
    old = dpop.nonces.current(time.time())
    frozen.tick(dpop.nonces.period)  # the next window: the old nonce still works
    data = {"grant_type": "client_credentials"}
    response = token_call(browser.http, data, proofs=[proof_for(app, key, nonce=old)], auth=JOB)
    assert response.status_code == 200
    assert response.headers["DPoP-Nonce"] != old  # the current one, to move on to
    frozen.tick(dpop.nonces.period)  # two windows on: refused, with the nonce to use
    response = token_call(browser.http, data, proofs=[proof_for(app, key, nonce=old)], auth=JOB)
    assert error_of(response) == (400, "use_dpop_nonce")
    assert response.headers["DPoP-Nonce"] == dpop.nonces.current(time.time())
    made_up = token_call(browser.http, data, proofs=[proof_for(app, key, nonce="x")], auth=JOB)
    assert error_of(made_up) == (400, "use_dpop_nonce")


def test_without_required_nonces_a_proof_needs_none(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory, key: DPoPKey
) -> None:
    relaxed = replace(config, provider=replace(config.provider, dpop_require_nonce=False))
    app = create_app(relaxed, database_url=sqlite_url)
    response = token_call(app.test_client(), {"grant_type": "client_credentials"},
                          proofs=[proof_for(app, key)], auth=JOB)  # fmt: skip
    assert response.status_code == 200, response.json
    assert "DPoP-Nonce" not in response.headers


# --- dpop_jkt at the authorization endpoint (§10) -------------------------------------------------


def test_a_code_requested_with_dpop_jkt_needs_a_proof_with_that_key(
    app: Flask, cli: Client, key: DPoPKey
) -> None:
    data = code_data(cli, cli.sign_in(dpop_jkt=key.jkt)["code"])
    http = cli.browser.http
    assert error_of(token_call(http, data)) == (400, "invalid_dpop_proof")
    assert error_of(with_nonce(app, http, data, DPoPKey.generate())) == (400, "invalid_dpop_proof")
    response = with_nonce(app, http, data, key)
    assert response.status_code == 200, response.json
    assert claims(app, response.json["access_token"])["cnf"] == {"jkt": key.jkt}  # type: ignore[index]


def test_a_malformed_dpop_jkt_is_invalid_request(cli: Client) -> None:
    response = cli.authorize(dpop_jkt="not-a-thumbprint")
    assert response.status_code == 302
    assert "error=invalid_request" in response.location
    assert response.location.startswith(CLI_REDIRECT)


# --- userinfo: a protected resource (§7) ---------------------------------------------------------


@pytest.fixture
def bound(app: Flask, cli: Client, key: DPoPKey) -> str:
    body = with_nonce(app, cli.browser.http, code_data(cli, cli.sign_in()["code"]), key).json
    assert body is not None
    token: str = body["access_token"]
    return token


def userinfo(http: FlaskClient, scheme: str, token: str, proofs: list[str] = ()) -> TestResponse:  # type: ignore[assignment]
    headers = [("Authorization", f"{scheme} {token}"), *(("DPoP", p) for p in proofs)]
    return http.get("/userinfo", headers=headers)


def test_userinfo_takes_a_dpop_token_with_its_proof(
    app: Flask, cli: Client, key: DPoPKey, bound: str
) -> None:
    proof = proof_for(app, key, path="/userinfo", method="GET", access_token=bound)
    response = userinfo(cli.browser.http, "DPoP", bound, [proof])
    assert response.status_code == 200, response.json
    assert response.json["preferred_username"] == "alice"  # type: ignore[index]
    # The proof is spent.
    again = userinfo(cli.browser.http, "DPoP", bound, [proof])
    assert again.status_code == 401
    assert again.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')


def test_userinfo_refuses_a_dpop_token_sent_as_bearer(cli: Client, bound: str) -> None:
    response = userinfo(cli.browser.http, "Bearer", bound)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP error="invalid_token"')
    assert 'algs="ES256 ' in challenge


@pytest.mark.parametrize("case", ["no proof", "other key", "no ath", "post"])
def test_userinfo_refuses_a_dpop_token_without_a_good_proof(
    app: Flask, cli: Client, key: DPoPKey, bound: str, case: str
) -> None:
    proofs = {
        "no proof": [],
        "other key": [proof_for(app, DPoPKey.generate(), path="/userinfo", method="GET",
                                access_token=bound)],
        "no ath": [proof_for(app, key, path="/userinfo", method="GET")],
        "post": [proof_for(app, key, path="/userinfo", access_token=bound)],
    }[case]  # fmt: skip
    response = userinfo(cli.browser.http, "DPoP", bound, proofs)
    assert (response.status_code, response.json["error"]) == (401, "invalid_dpop_proof")  # type: ignore[index]
    assert response.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')


def test_userinfo_refuses_a_bearer_token_sent_as_dpop(
    app: Flask, cli: Client, key: DPoPKey
) -> None:
    token = cli.tokens()["access_token"]
    proof = proof_for(app, key, path="/userinfo", method="GET", access_token=token)
    response = userinfo(cli.browser.http, "DPoP", token, [proof])
    assert (response.status_code, response.json["error"]) == (401, "invalid_token")  # type: ignore[index]
