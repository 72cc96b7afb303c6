"""RFC 9728 on the demo bank (DESIGN contract 12): the metadata document at the origin's
well-known path, and ``resource_metadata`` on every challenge pointing at it."""

from __future__ import annotations

from flask import Flask

from client_sdk.dpop import DPOP_ALGORITHMS

from .support import ISSUER, LOA1, LOA2, FakeIssuer, bearer, challenge_params

METADATA = "http://bank.test/.well-known/oauth-protected-resource"


def test_the_document_is_public_and_names_its_origin_and_issuer(bank: Flask) -> None:
    response = bank.test_client().get(METADATA)
    assert response.status_code == 200
    assert response.json == {
        "resource": "http://bank.test",
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        # RFC 9728 §2 (RFC 9449): the DPoP proof algorithms the resource accepts.
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }
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
