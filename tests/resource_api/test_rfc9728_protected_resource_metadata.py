"""RFC 9728 on the demo bank (DESIGN contract 12): the metadata document at the origin's
well-known path, and ``resource_metadata`` on every challenge pointing at it; the scopes and the
``stepup_route_requirements`` extension from the config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from flask import Flask

from client_sdk.dpop import DPOP_ALGORITHMS
from resource_api import JwtAccessTokenValidator, create_app
from resource_api.settings import RouteConfig, RuleConfig

from .support import (
    ISSUER,
    LOA1,
    LOA2,
    Clock,
    FakeIssuer,
    bearer,
    challenge_params,
    sandbox_config,
)

METADATA = "http://bank.test/.well-known/oauth-protected-resource"


def test_the_document_is_public_and_names_its_origin_and_issuer(bank: Flask) -> None:
    response = bank.test_client().get(METADATA)
    assert response.status_code == 200
    assert response.json == {
        "resource": "http://bank.test",
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        # The sandbox's two routes; its conditional rule (large transfers) is not listed.
        "stepup_route_requirements": [
            {"methods": ["POST"], "path": "/transfers", "acr_values": [LOA2], "max_age": 3600},
            {"methods": ["PUT"], "path": "/profile/email", "acr_values": [LOA2], "max_age": 120},
        ],
        # RFC 9728 §2 (RFC 9449): the DPoP proof algorithms the resource accepts.
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }
    assert response.headers["Cache-Control"] == "max-age=300"
    # RFC 9728 §3.3: the resource is the identifier the well-known URL was built from.
    assert response.json["resource"] + "/.well-known/oauth-protected-resource" == METADATA


def test_every_challenge_points_at_it(bank: Flask, issuer: FakeIssuer) -> None:
    client = bank.test_client()
    base = "http://bank.test"
    missing = client.get(f"{base}/accounts")
    assert challenge_params(missing) == {"resource_metadata": METADATA}
    invalid = client.get(f"{base}/accounts", headers=bearer("not-a-jwt"))
    assert challenge_params(invalid)["error"] == "invalid_token"
    assert challenge_params(invalid)["resource_metadata"] == METADATA
    accounts = client.get(f"{base}/accounts", headers=bearer(issuer.mint(acr=LOA2)))
    src, dst = (a["id"] for a in accounts.json["accounts"][:2])
    step_up = client.post(
        f"{base}/transfers",
        headers=bearer(issuer.mint(acr=LOA1)),
        json={"from_account": src, "to_account": dst, "amount": "1.00"},
    )
    params = challenge_params(step_up)
    assert (params["error"], params["acr_values"]) == ("insufficient_user_authentication", LOA2)
    assert params["resource_metadata"] == METADATA


def test_scopes_and_fixed_requirements_come_from_routes_and_unconditional_rules(
    validator: JwtAccessTokenValidator, clock: Clock, tmp_path: Path
) -> None:
    base = sandbox_config()
    api = replace(
        base.api,
        routes=(
            RouteConfig("GET", "/accounts", scope=("accounts:read",)),
            RouteConfig("POST", "/transfers", acr_values=(LOA2,), max_age=300),
        ),
        rules=(
            RuleConfig("every call within a day", max_age=86400),
            RuleConfig("writes need a second factor", methods=("POST", "PUT"), acr_values=(LOA2,)),
            RuleConfig(
                "big ones",
                path="/transfers",
                when="request.body.amount > 1000.0",
                scope=("transfers:large",),
            ),
            RuleConfig(
                "no profile changes", methods=("PUT",), path="/profile/email", deny="closed"
            ),
        ),
    )
    app = create_app(
        replace(base, api=api), database_url=f"sqlite:///{tmp_path}/bank.db",
        token_validator=validator, clock=clock,
    )  # fmt: skip
    document = app.test_client().get(METADATA).json
    assert document["scopes_supported"] == ["accounts:read", "transfers:large"]
    assert document["stepup_route_requirements"] == [
        {"methods": ["GET"], "path": "/accounts", "scope": ["accounts:read"]},
        {"methods": ["POST"], "path": "/transfers", "acr_values": [LOA2], "max_age": 300},
        {"max_age": 86400},  # no methods, no path: every request
        {"methods": ["POST", "PUT"], "acr_values": [LOA2]},
    ]
    listed = repr(document)
    assert "big ones" not in listed  # the condition stays private
    assert "1000" not in listed
    assert "closed" not in listed


def test_every_rfc6750_error_and_step_up_challenge_points_at_it(
    validator: JwtAccessTokenValidator, issuer: FakeIssuer, clock: Clock, tmp_path: Path
) -> None:
    base = sandbox_config()
    api = replace(
        base.api, routes=(*base.api.routes, RouteConfig("GET", "/accounts", scope=("acc:r",)))
    )
    client = create_app(
        replace(base, api=api), database_url=f"sqlite:///{tmp_path}/bank.db",
        token_validator=validator, clock=clock,
    ).test_client()  # fmt: skip
    base_url = "http://bank.test"
    # 400 invalid_request (two ways of sending the token), 403 insufficient_scope.
    twice = client.get(f"{base_url}/accounts?access_token=x", headers=bearer("y"))
    assert twice.status_code == 400
    assert challenge_params(twice) == {
        "error": "invalid_request",
        "error_description": "the access token must be sent one way only, not in several places",
        "resource_metadata": METADATA,
    }
    scope = client.get(f"{base_url}/accounts", headers=bearer(issuer.mint(acr=LOA2)))
    assert scope.status_code == 403
    assert challenge_params(scope) == {
        "error": "insufficient_scope",
        "error_description": "this request needs the scope acc:r",
        "scope": "acc:r",
        "resource_metadata": METADATA,
    }
