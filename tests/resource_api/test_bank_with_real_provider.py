"""The demo bank against the real provider, in process: tokens from its login pages, its
client_credentials grant and its sandbox minter, keys from its discovery document and JWKS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

import provider
import resource_api
from resource_api import InvalidToken, JwtAccessTokenValidator
from stepup.config import StepupConfig

from ..provider.flow import LOA1, LOA2, Browser, Client
from .support import bearer, challenge_params


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time("2026-11-21 12:00:00") as f:
        yield f


@pytest.fixture
def op(config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory) -> Flask:
    return provider.create_app(config, database_url=sqlite_url)


@pytest.fixture
def fetched() -> list[str]:
    return []


@pytest.fixture
def api(op: Flask, config: StepupConfig, sqlite_url: str, fetched: list[str]) -> FlaskClient:
    op_http = op.test_client()

    def fetch(url: str) -> Any:
        fetched.append(url)
        assert url.startswith(config.issuer)
        response = op_http.get(url[len(config.issuer) :])
        assert response.status_code == 200
        return response.json

    validator = JwtAccessTokenValidator(config.api_issuer, config.api.audience, fetch=fetch)
    # the same database as the provider's, as in ``stepup sandbox``
    app = resource_api.create_app(config, database_url=sqlite_url, token_validator=validator)
    return app.test_client()


def first_two_accounts(api: FlaskClient, token: str) -> tuple[str, str]:
    response = api.get("/accounts", headers=bearer(token))
    assert response.status_code == 200
    a, b = response.json["accounts"][:2]
    return a["id"], b["id"]


def test_step_up_from_loa1_to_loa2_with_real_tokens(
    op: Flask, api: FlaskClient, fetched: list[str], config: StepupConfig
) -> None:
    browser = Browser(op)
    weak = Client(browser).tokens(acr_values=LOA1)["access_token"]
    src, dst = first_two_accounts(api, weak)
    body = {"from_account": src, "to_account": dst, "amount": "25.00"}
    response = api.post("/transfers", json=body, headers=bearer(weak))
    assert response.status_code == 401
    params = challenge_params(response)
    assert params["error"] == "insufficient_user_authentication"
    assert params["acr_values"] == LOA2
    assert params["max_age"] == "3600"
    # what the SDK would do: ask for exactly that, in the same browser session
    strong = Client(browser).tokens(acr_values=params["acr_values"],
                                    max_age=params["max_age"])["access_token"]  # fmt: skip
    response = api.post("/transfers", json=body, headers=bearer(strong))
    assert response.status_code == 201
    assert response.json["authorized_with"]["acr"] == LOA2
    assert fetched == [f"{config.issuer}/.well-known/openid-configuration", f"{config.issuer}/jwks"]


def test_large_transfer_needs_a_login_within_five_minutes(
    op: Flask, api: FlaskClient, frozen: FrozenDateTimeFactory
) -> None:
    browser = Browser(op)
    token = Client(browser).tokens(acr_values=LOA2)["access_token"]
    src, dst = first_two_accounts(api, token)
    frozen.tick(timedelta(seconds=301))
    body = {"from_account": src, "to_account": dst, "amount": "1500.00"}
    response = api.post("/transfers", json=body, headers=bearer(token))
    assert response.status_code == 401
    assert challenge_params(response)["max_age"] == "300"
    assert api.post("/transfers", json={**body, "amount": "15.00"},
                    headers=bearer(token)).status_code == 201  # fmt: skip


def test_client_credentials_token_reads_but_is_challenged(op: Flask, api: FlaskClient) -> None:
    response = op.test_client().post(
        "/token", data={"grant_type": "client_credentials", "scope": "accounts:read"},
        auth=("reports-job", "reports-job-secret-for-the-local-sandbox"),
    )  # fmt: skip
    assert response.status_code == 200, response.json
    token = response.json["access_token"]
    src, dst = first_two_accounts(api, token)
    response = api.post("/transfers", json={"from_account": src, "to_account": dst,
                                            "amount": "1.00"}, headers=bearer(token))  # fmt: skip
    assert response.status_code == 401
    params = challenge_params(response)
    assert params["error"] == "insufficient_user_authentication"
    assert params["acr_values"] == LOA2


def test_an_id_token_is_not_an_access_token(op: Flask, api: FlaskClient) -> None:
    id_token = Client(Browser(op)).tokens()["id_token"]
    response = api.get("/accounts", headers=bearer(id_token))
    assert response.status_code == 401
    assert challenge_params(response)["error"] == "invalid_token"


def test_sandbox_minted_tokens_validate(op: Flask, config: StepupConfig) -> None:
    response = op.test_client().post("/sandbox/token", json={"username": "alice", "acr": LOA2})
    assert response.status_code == 200, response.json
    op_http = op.test_client()
    validator = JwtAccessTokenValidator(
        config.api_issuer, config.api.audience,
        fetch=lambda url: op_http.get(url[len(config.issuer) :]).json,
    )  # fmt: skip
    claims = validator.validate(response.json["access_token"])
    assert claims["acr"] == LOA2
    with pytest.raises(InvalidToken):
        validator.validate(response.json["access_token"] + "x")


def test_introspection_mode_against_the_real_provider(
    op: Flask, config: StepupConfig, frozen: FrozenDateTimeFactory
) -> None:
    """RFC 7662 mode: the API asks the provider's /introspect, authenticating as a confidential
    client, and enforces step-up on the acr and auth_time the provider answers with."""
    from resource_api import IntrospectionValidator
    from resource_api.step_up import AcrOrder, Allow, AuthContext, Requirement, decide

    op_http = op.test_client()

    def fetch(url: str) -> Any:
        return op_http.get(url[len(config.issuer) :]).json

    def post(url: str, form: Any, auth: tuple[str, str]) -> Any:
        return op_http.post(url[len(config.issuer) :], data=dict(form), auth=auth).json

    validator = IntrospectionValidator(
        config.api_issuer, config.api.audience, client_id="bank-web",
        client_secret="bank-web-secret-for-the-local-sandbox", fetch=fetch, post=post,
    )  # fmt: skip
    client = Client(Browser(op))
    tokens = client.tokens(acr_values=LOA2)
    claims = validator.validate(tokens["access_token"])
    assert (claims["acr"], claims["amr"]) == (LOA2, ["pwd", "otp", "mfa"])
    order = AcrOrder.from_levels([(LOA1,), (LOA2,)])
    now = frozen().timestamp()  # type: ignore[operator]
    context = AuthContext.from_claims(claims, now)
    assert decide(context, Requirement(acr_values=(LOA2,), max_age=300), order) == Allow()

    # Revoked at the provider: introspection says inactive, and the API refuses the token.
    revoked = op_http.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": "bank-cli"}
    )
    assert revoked.status_code == 200
    frozen.tick(61)  # past the validator's answer cache
    with pytest.raises(InvalidToken):
        validator.validate(tokens["access_token"])
