"""RFC 9470 §3 through the demo bank and a hand-built app: who is challenged, and with what."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from resource_api import (
    AcrOrder,
    ConfigurationError,
    JwtAccessTokenValidator,
    Requirement,
    StepUp,
    create_app,
    current_auth,
)
from stepup.config import RouteConfig

from .support import (
    DROP,
    LOA1,
    LOA2,
    Clock,
    FakeIssuer,
    bearer,
    challenge_params,
    sandbox_config,
)

ALIAS_MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


def transfer(client: FlaskClient, token: str, amount: str = "10.00") -> Any:
    accounts = client.get("/accounts", headers=bearer(token)).json["accounts"]
    return client.post(
        "/transfers",
        json={"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": amount},
        headers=bearer(token),
    )


def assert_step_up(
    response: Any, acr_values: str, max_age: int, authorization_details: Any = None
) -> dict[str, str]:
    assert response.status_code == 401
    params = challenge_params(response)
    assert params["error"] == "insufficient_user_authentication"
    assert params["acr_values"] == acr_values
    assert params["max_age"] == str(max_age)
    body = {
        "error": "insufficient_user_authentication",
        "error_description": params["error_description"],
        "acr_values": acr_values,
        "max_age": max_age,
    }
    if authorization_details is not None:
        body["authorization_details"] = authorization_details
        text = json.dumps(authorization_details, sort_keys=True, separators=(",", ":"))
        encoded = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
        assert params["authorization_details"] == encoded
    else:
        assert "authorization_details" not in params
    assert response.json == body
    return params


def test_loa1_token_reads_accounts_but_is_challenged_on_transfer(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    token = issuer.mint(acr=LOA1, amr=["pwd"])
    assert client.get("/accounts", headers=bearer(token)).status_code == 200
    params = assert_step_up(transfer(client, token), LOA2, 3600)
    assert "level urn:stepup:loa:2 or stronger" in params["error_description"]
    assert "urn:stepup:loa:1" in params["error_description"]


def test_loa2_token_transfers(client: FlaskClient, issuer: FakeIssuer) -> None:
    response = transfer(client, issuer.mint())
    assert response.status_code == 201
    assert response.json["authorized_with"] == {"acr": LOA2, "amr": ["pwd", "otp", "mfa"]}


def test_an_alias_of_loa2_transfers(client: FlaskClient, issuer: FakeIssuer) -> None:
    assert transfer(client, issuer.mint(acr=ALIAS_MFA)).status_code == 201


def test_a_large_transfer_needs_a_recent_login(client: FlaskClient, issuer: FakeIssuer) -> None:
    now = int(issuer.clock())
    stale = issuer.mint(auth_time=now - 301)
    assert transfer(client, stale, "1000.00").status_code == 201  # not large: 3600 s suffice
    response = transfer(client, stale, "1000.01")
    payee = client.get("/accounts", headers=bearer(stale)).json["accounts"][1]["id"]
    entry = {"amount": "1000.01", "currency": "EUR", "payee": payee, "type": "payment"}
    params = assert_step_up(response, LOA2, 300, authorization_details=[entry])
    assert "within the last 300 seconds" in params["error_description"]
    assert "301 seconds ago" in params["error_description"]
    fresh = issuer.mint(auth_time=now - 300, authorization_details=[entry])
    assert transfer(client, fresh, "1000.01").status_code == 201


def test_a_stale_login_is_challenged_with_the_route_max_age(
    client: FlaskClient, issuer: FakeIssuer
) -> None:
    token = issuer.mint(auth_time=int(issuer.clock()) - 3601)
    assert_step_up(transfer(client, token), LOA2, 3600)


def test_the_same_token_becomes_too_old_as_time_passes(
    client: FlaskClient, issuer: FakeIssuer, clock: Clock
) -> None:
    token = issuer.mint(exp=int(clock()) + 3600)
    assert client.put("/profile/email", json={"email": "a@b.example"},
                      headers=bearer(token)).status_code == 200  # fmt: skip
    clock.advance(111)  # auth_time was 10 s before minting: now 121 s old
    response = client.put("/profile/email", json={"email": "a@b.example"}, headers=bearer(token))
    assert_step_up(response, LOA2, 120)


@pytest.mark.parametrize(
    "overrides",
    [{"acr": DROP}, {"auth_time": DROP}, {"acr": DROP, "auth_time": DROP, "amr": DROP},
     {"acr": ["urn:stepup:loa:2"]}],
    ids=["no-acr", "no-auth_time", "client-credentials", "acr-list"],
)  # fmt: skip
def test_tokens_without_acr_or_auth_time_are_challenged_never_passed(
    client: FlaskClient, issuer: FakeIssuer, overrides: dict[str, Any]
) -> None:
    token = issuer.mint(**overrides)
    assert client.get("/accounts", headers=bearer(token)).status_code == 200
    params = assert_step_up(transfer(client, token), LOA2, 3600)
    assert (
        "no acr claim" in params["error_description"]
        or "no auth_time" in params["error_description"]
    )


def test_a_client_credentials_token_is_challenged(client: FlaskClient, issuer: FakeIssuer) -> None:
    token = issuer.mint(sub="reports-job", client_id="reports-job", acr=DROP, amr=DROP,
                        auth_time=DROP, scope="accounts:read")  # fmt: skip
    assert client.get("/accounts", headers=bearer(token)).status_code == 200
    response = client.put("/profile/email", json={"email": "x@y.example"}, headers=bearer(token))
    assert_step_up(response, LOA2, 120)


def test_missing_scope_is_403_insufficient_scope(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer, tmp_path: Any
) -> None:
    config = sandbox_config(routes=(
        RouteConfig("GET", "/accounts", scope=("accounts:read",)),
        RouteConfig("POST", "/transfers", acr_values=(LOA2,), max_age=3600,
                    scope=("accounts:read", "transfers")),
    ))  # fmt: skip
    app = create_app(config, database_url=f"sqlite:///{tmp_path}/b.db",
                     token_validator=validator, clock=clock)  # fmt: skip
    c = app.test_client()
    response = c.get("/accounts", headers=bearer(issuer.mint(scope="openid")))
    assert response.status_code == 403
    params = challenge_params(response)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "accounts:read"
    assert response.json["scope"] == "accounts:read"
    reader = issuer.mint(scope="openid accounts:read")
    assert c.get("/accounts", headers=bearer(reader)).status_code == 200
    # a weak token without the scope: the scope comes first, stepping up would not help
    weak = issuer.mint(acr=LOA1, scope="accounts:read")
    response = c.post("/transfers", json={}, headers=bearer(weak))
    assert response.status_code == 403
    assert challenge_params(response)["scope"] == "accounts:read transfers"


def test_acr_order_from_config_overrides_levels(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer, tmp_path: Any
) -> None:
    config = sandbox_config(acr_order=("silver", "gold"), routes=(
        RouteConfig("PUT", "/profile/email", acr_values=("silver",)),))  # fmt: skip
    app = create_app(config, database_url=f"sqlite:///{tmp_path}/b.db",
                     token_validator=validator, clock=clock)  # fmt: skip
    c = app.test_client()
    body = {"email": "a@b.example"}
    gold = issuer.mint(acr="gold")
    assert c.put("/profile/email", json=body, headers=bearer(gold)).status_code == 200
    response = c.put("/profile/email", json=body, headers=bearer(issuer.mint(acr=LOA2)))
    assert challenge_params(response)["acr_values"] == "silver"


def test_a_configured_route_that_matches_nothing_is_refused(
    validator: JwtAccessTokenValidator, tmp_path: Any
) -> None:
    config = sandbox_config(routes=(RouteConfig("POST", "/transfer", acr_values=(LOA2,)),))
    with pytest.raises(ConfigurationError, match="POST /transfer"):
        create_app(config, database_url=f"sqlite:///{tmp_path}/b.db", token_validator=validator)


# -- the library on a hand-built app -----------------------------------------------------------


def make_app(validator: JwtAccessTokenValidator, clock: Clock, **kwargs: Any) -> Flask:
    app = Flask("demo")
    order = AcrOrder.from_levels([(LOA1,), (LOA2, ALIAS_MFA)])
    step_up = StepUp(app, validator=validator, clock=clock, acr_order=order, **kwargs)

    def big_export(req: Any) -> Requirement | None:
        return Requirement(max_age=60) if req.args.get("rows") == "all" else None

    @app.get("/export")
    @step_up.require(acr_values=[LOA2], when=big_export)
    def export() -> Any:
        auth = current_auth()
        return jsonify(acr=auth.authentication_policy, age=auth.authentication_age,
                       amr=list(auth.amr), sub=auth.sub, scope=sorted(auth.scope),
                       time=auth.authentication_time)  # fmt: skip

    @app.get("/me")
    def me() -> Any:
        return jsonify(sub=current_auth().sub)

    @app.get("/ping")
    @step_up.public
    def ping() -> Any:
        return "pong"

    return app


def test_decorator_and_dynamic_requirement(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer
) -> None:
    c = make_app(validator, clock).test_client()
    token = issuer.mint(auth_time=int(clock()) - 90)
    response = c.get("/export", headers=bearer(token))
    assert response.status_code == 200
    assert response.json == {"acr": LOA2, "age": 90.0, "amr": ["pwd", "otp", "mfa"],
                             "sub": "alice", "scope": ["openid", "profile"],
                             "time": clock() - 90}  # fmt: skip
    assert_step_up(c.get("/export?rows=all", headers=bearer(token)), LOA2, 60)
    response = c.get("/export", headers=bearer(issuer.mint(acr=LOA1)))
    assert response.status_code == 401
    params = challenge_params(response)
    assert params["acr_values"] == LOA2
    assert "max_age" not in params


def test_protect_all_and_public(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer
) -> None:
    c = make_app(validator, clock).test_client()
    assert c.get("/me").status_code == 401
    assert c.get("/ping").status_code == 200
    open_app = make_app(validator, clock, protect_all=False).test_client()
    assert open_app.get("/ping").status_code == 200
    assert open_app.get("/export").status_code == 401  # decorated: still protected


def test_realm_is_sent_when_configured(validator: JwtAccessTokenValidator, clock: Clock) -> None:
    c = make_app(validator, clock, realm='bank "demo"').test_client()
    response = c.get("/me")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="bank \\"demo\\""'
    assert challenge_params(response) == {"realm": 'bank "demo"'}


def test_head_follows_get_and_automatic_options_is_open(
    validator: JwtAccessTokenValidator, clock: Clock, issuer: FakeIssuer
) -> None:
    c = make_app(validator, clock).test_client()
    assert c.head("/export", headers=bearer(issuer.mint(acr=LOA1))).status_code == 401
    assert c.options("/export").status_code == 200


def test_sandbox_config_routes_are_applied(bank: Flask) -> None:
    step_up = bank.extensions["stepup"]
    assert step_up._routes[("POST", "/transfers")] == Requirement((LOA2,), 3600)
    assert step_up._routes[("PUT", "/profile/email")] == Requirement((LOA2,), 120)
    assert replace(step_up._routes[("PUT", "/profile/email")], max_age=None).acr_values == (LOA2,)
