"""The sideband's four dialects over real sockets (uvicorn), as each gateway's published contract
shapes its requests: nginx ``auth_request``, Envoy ``ext_authz`` (HTTP service), Traefik
``forwardAuth``, and the JSON API. Envoy and Traefik are not installable here, so their requests
are built as their sources build them (docs/gateway.md links the contracts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from client_sdk import parse_www_authenticate
from client_sdk.dpop import DPOP_ALGORITHMS
from resource_api.gateway import Enforcer, SidebandApp

from ..resource_api.support import LOA1, LOA2, Clock, FakeIssuer
from .conftest import BankPolicy
from .support import SANDBOX_REQUIREMENTS, serving_asgi

pytestmark = pytest.mark.e2e

ALL_IDENTITY = ["x-stepup-subject", "x-stepup-acr", "x-stepup-amr", "x-stepup-auth-time",
                "x-stepup-client-id"]  # fmt: skip


@pytest.fixture
def sideband(enforcer: Enforcer, bank_policy: BankPolicy) -> Iterator[str]:
    with serving_asgi(SidebandApp(enforcer, max_body=4096)) as url:
        yield url


def params(response: requests.Response, header: str = "WWW-Authenticate") -> dict[str, str]:
    [challenge] = parse_www_authenticate(response.headers[header])
    return dict(challenge.params)


# --- nginx auth_request ---------------------------------------------------------------------------


def nginx(url: str, method: str, uri: str, token: str | None = None, **extra: str) -> Any:
    headers = {"X-Original-Method": method, "X-Original-URI": uri, "Host": "api.example",
               "X-Forwarded-Proto": "https", **extra}  # fmt: skip
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{url}/sideband/nginx", headers=headers, timeout=10)


def test_nginx_allow_is_200_with_identity_headers(sideband: str, issuer: FakeIssuer) -> None:
    response = nginx(sideband, "PUT", "/profile/email", issuer.mint(),
                     **{"X-Stepup-Subject": "mallory"})  # fmt: skip
    assert response.status_code == 200
    assert response.headers["X-Stepup-Subject"] == "alice"
    assert response.headers["X-Stepup-Acr"] == LOA2
    assert response.headers["X-Stepup-Amr"] == "pwd otp mfa"
    assert response.content == b""


def test_nginx_allow_says_how_long_nginx_may_cache_it_only_when_told(
    enforcer: Enforcer, issuer: FakeIssuer, clock: Clock
) -> None:
    now = int(clock())
    # PUT /profile/email: loa2 within 120 s. Logged in 100 s ago: 20 s left, whatever the cap.
    fresh, token = issuer.mint(auth_time=now - 100), issuer.mint(exp=now + 45)
    with serving_asgi(SidebandApp(enforcer)) as url:  # --cache-seconds 0: nothing said
        for _ in range(2):  # decided, then remembered: the same answer
            response = nginx(url, "GET", "/accounts", token)
            assert response.status_code == 200
            assert "X-Accel-Expires" not in response.headers
    with serving_asgi(SidebandApp(enforcer, cache_seconds=30)) as url:
        for _ in range(2):
            assert nginx(url, "GET", "/accounts", token).headers["X-Accel-Expires"] == "30"
            assert nginx(url, "PUT", "/profile/email", fresh).headers["X-Accel-Expires"] == "20"
        clock.advance(19.5)  # rounded down: never past the decision's end
        assert "X-Accel-Expires" not in nginx(url, "PUT", "/profile/email", fresh).headers
        assert nginx(url, "GET", "/accounts", token).headers["X-Accel-Expires"] == "25"
        clock.advance(25)  # 44.5 s: less than a second to exp
        assert "X-Accel-Expires" not in nginx(url, "GET", "/accounts", token).headers
        # refusals carry none
        weak = nginx(url, "PUT", "/profile/email", issuer.mint(acr=LOA1))
        assert weak.status_code == 401
        assert "X-Accel-Expires" not in weak.headers


def test_nginx_challenge_is_401_with_the_header_nginx_passes_on(
    sideband: str, issuer: FakeIssuer
) -> None:
    response = nginx(sideband, "PUT", "/profile/email?x=1", issuer.mint(acr=LOA1))
    assert response.status_code == 401
    p = params(response)
    assert (p["error"], p["acr_values"], p["max_age"]) == (
        "insufficient_user_authentication",
        LOA2,
        "120",
    )
    assert p["resource_metadata"] == "https://api.example/.well-known/oauth-protected-resource"
    assert response.headers["X-Stepup-Status"] == "401"
    assert json.loads(response.headers["X-Stepup-Body"])["acr_values"] == LOA2
    assert "X-Stepup-Subject" not in response.headers


def test_nginx_400s_become_401_or_403(sideband: str, issuer: FakeIssuer) -> None:
    # 400 with a challenge -> 401 (nginx passes the challenge); 400 without one -> 403.
    bad = requests.get(
        f"{sideband}/sideband/nginx",
        timeout=10,
        headers={
            "X-Original-Method": "GET",
            "X-Original-URI": "/accounts",
            "Authorization": "Bearer a b",
        },
    )
    assert (bad.status_code, bad.headers["X-Stepup-Status"]) == (401, "400")
    assert params(bad)["error"] == "invalid_request"
    path = nginx(sideband, "GET", "/a/../transfers", issuer.mint())
    assert (path.status_code, path.headers["X-Stepup-Status"]) == (403, "400")


def test_nginx_keys_unavailable_and_internal_errors_fail_closed_with_403(
    enforcer: Enforcer, issuer: FakeIssuer
) -> None:
    issuer.down = True
    with serving_asgi(SidebandApp(enforcer)) as url:
        down = nginx(url, "GET", "/accounts", issuer.mint())
        assert (down.status_code, down.headers["X-Stepup-Status"]) == (403, "503")
        assert down.headers["Retry-After"] == "30"
        missing = requests.get(f"{url}/sideband/nginx", timeout=10)
        assert (missing.status_code, missing.headers["X-Stepup-Status"]) == (403, "500")

    def broken(*args: object) -> object:
        raise RuntimeError("a bug")

    enforcer.check = broken  # type: ignore[method-assign]
    with serving_asgi(SidebandApp(enforcer)) as url:
        response = nginx(url, "GET", "/accounts", "x")
        assert (response.status_code, response.headers["X-Stepup-Status"]) == (403, "500")


# --- Envoy ext_authz ------------------------------------------------------------------------------


def test_envoy_allow_sets_identity_and_removes_what_it_did_not_set(
    sideband: str, issuer: FakeIssuer
) -> None:
    token = issuer.mint(client_id="bank-cli", amr=["pwd"], acr=LOA1)
    response = requests.get(f"{sideband}/sideband/envoy/accounts?limit=5", timeout=10,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status_code == 200
    assert response.headers["x-stepup-acr"] == LOA1
    assert "x-envoy-auth-headers-to-remove" not in response.headers
    token = issuer.mint(amr=None, acr=LOA1)
    response = requests.get(f"{sideband}/sideband/envoy/accounts", timeout=10,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.headers["x-envoy-auth-headers-to-remove"] == "x-stepup-amr"


def test_envoy_denial_carries_status_challenge_and_json_body(
    sideband: str, issuer: FakeIssuer
) -> None:
    response = requests.post(f"{sideband}/sideband/envoy/transfers", timeout=10, data=b"{}",
                             headers={"Authorization": f"Bearer {issuer.mint(acr=LOA1)}",
                                      "Content-Type": "application/json",
                                      "Host": "api.example"})  # fmt: skip
    assert response.status_code == 401
    assert params(response)["acr_values"] == LOA2
    assert response.json()["error"] == "insufficient_user_authentication"


def test_envoy_with_request_body_feeds_body_rules(
    sideband: str, issuer: FakeIssuer, clock: Clock, bank_policy: BankPolicy
) -> None:
    token = issuer.mint(auth_time=int(clock()) - 600)  # loa2, but 10 minutes ago
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    small = requests.post(f"{sideband}/sideband/envoy/transfers", timeout=10, headers=headers,
                          json={"amount": "15.00"})  # fmt: skip
    assert small.status_code == 200
    large = requests.post(f"{sideband}/sideband/envoy/transfers", timeout=10, headers=headers,
                          json={"amount": "1500.00", "to_account": "acc_b"})  # fmt: skip
    assert large.status_code == 401
    assert params(large)["max_age"] == "300"
    # The same transaction-bound challenge as the bank's own (docs/transactional.md).
    assert large.json()["authorization_details"] == [
        {"amount": "1500.00", "currency": "EUR", "payee": "acc_b", "type": "payment"}
    ]
    assert bank_policy.bodies == [{"amount": "15.00"}, {"amount": "1500.00", "to_account": "acc_b"}]
    partial = requests.post(f"{sideband}/sideband/envoy/transfers", timeout=10,
                            headers={**headers, "x-envoy-auth-partial-body": "true"},
                            json={"amount": "15.00"})  # fmt: skip
    # A truncated body is not the body: refused before the rules, which never see it.
    assert partial.status_code == 403
    assert partial.json()["error"] == "access_denied"
    assert len(bank_policy.bodies) == 2


# --- Traefik forwardAuth --------------------------------------------------------------------------


def traefik(url: str, method: str, uri: str, token: str, body: Any = None) -> Any:
    headers = {"X-Forwarded-Method": method, "X-Forwarded-Uri": uri,
               "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example",
               "Authorization": f"Bearer {token}", "X-Stepup-Acr": "forged"}  # fmt: skip
    if body is not None:
        return requests.get(f"{url}/sideband/traefik", timeout=10, json=body,
                            headers=headers)  # fmt: skip
    return requests.get(f"{url}/sideband/traefik", timeout=10, headers=headers)


def test_traefik_allow_and_challenge(sideband: str, issuer: FakeIssuer) -> None:
    allowed = traefik(sideband, "POST", "/transfers", issuer.mint(), {"amount": "1.00"})
    assert allowed.status_code == 200
    assert allowed.headers["X-Stepup-Acr"] == LOA2
    refused = traefik(sideband, "POST", "/transfers", issuer.mint(acr=LOA1), {"amount": "1.00"})
    assert refused.status_code == 401
    p = params(refused)
    assert p["resource_metadata"] == "https://api.example/.well-known/oauth-protected-resource"
    assert refused.json()["acr_values"] == LOA2


def test_traefik_forward_body_feeds_body_rules(
    sideband: str, issuer: FakeIssuer, clock: Clock, bank_policy: BankPolicy
) -> None:
    token = issuer.mint(auth_time=int(clock()) - 600)
    assert traefik(sideband, "POST", "/transfers", token, {"amount": "15.00"}).status_code == 200
    large = traefik(sideband, "POST", "/transfers", token, {"amount": 2000, "to_account": "b"})
    assert (large.status_code, params(large)["max_age"]) == (401, "300")
    assert params(large)["authorization_details"] == (  # base64url of the JSON array
        "W3siYW1vdW50IjoiMjAwMC4wMCIsImN1cnJlbmN5IjoiRVVSIiwicGF5ZWUiOiJiIiwidHlwZSI6InBheW1lbnQifV0"
    )


def test_traefik_without_forwarded_uri_and_oversized_bodies(
    sideband: str, issuer: FakeIssuer
) -> None:
    response = requests.get(f"{sideband}/sideband/traefik", timeout=10)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    big = traefik(sideband, "POST", "/transfers", issuer.mint(), {"pad": "x" * 5000})
    assert (big.status_code, big.json()["error"]) == (413, "request_too_large")


# --- JSON sideband API ----------------------------------------------------------------------------


def ask(url: str, document: Any) -> Any:
    return requests.post(f"{url}/sideband/request", json=document, timeout=10)


def test_json_allow_names_headers_to_set_and_remove(sideband: str, issuer: FakeIssuer) -> None:
    answer = ask(sideband, {
        "method": "POST", "url": "https://api.example/transfers",
        "headers": [{"authorization": f"Bearer {issuer.mint(client_id='bank-cli')}"},
                    {"content-type": "application/json"}, {"X-Stepup-Subject": "mallory"}],
        "body": json.dumps({"amount": "10.00"}),
    })  # fmt: skip
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["decision"] == "allow"
    assert dict(map(tuple, doc["request"]["headers_to_set"]))["X-Stepup-Subject"] == "alice"
    assert doc["request"]["headers_to_remove"] == []
    assert doc["record"]["decision"] == "allow"


def test_json_refusal_is_the_exact_response_to_send(
    sideband: str, issuer: FakeIssuer, clock: Clock, bank_policy: BankPolicy
) -> None:
    token = issuer.mint(auth_time=int(clock()) - 600)
    answer = ask(sideband, {
        "method": "POST", "url": "https://api.example/transfers",
        "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        "body": json.dumps({"amount": "5000.00", "to_account": "b"}),
    }).json()  # fmt: skip
    assert answer["decision"] == "refuse"
    response = answer["response"]
    assert response["status"] == 401
    headers = dict(map(tuple, response["headers"]))
    [challenge] = parse_www_authenticate(headers["WWW-Authenticate"])
    assert challenge.params["max_age"] == "300"
    assert challenge.params["resource_metadata"] == (
        "https://api.example/.well-known/oauth-protected-resource"
    )
    assert json.loads(response["body"])["error"] == "insufficient_user_authentication"
    assert bank_policy.bodies == [{"amount": "5000.00", "to_account": "b"}]


@pytest.mark.parametrize(
    "document",
    [[], {"url": "/x"}, {"method": "GET"}, {"method": "G E T", "url": "/"},
     {"method": "GET", "url": "x"}, {"method": "GET", "url": "/", "headers": "a"},
     {"method": "GET", "url": "/", "headers": {"a": 1}}, {"method": "GET", "url": "/", "body": 3}],
)  # fmt: skip
def test_json_malformed_requests_are_400(sideband: str, document: Any) -> None:
    response = ask(sideband, document)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_json_needs_post_and_json(sideband: str) -> None:
    assert requests.get(f"{sideband}/sideband/request", timeout=10).status_code == 405
    response = requests.post(f"{sideband}/sideband/request", data=b"\xff", timeout=10)
    assert response.status_code == 400


# --- RFC 9728 -------------------------------------------------------------------------------------


def test_protected_resource_metadata(sideband: str, config_issuer: str) -> None:
    response = requests.get(f"{sideband}/.well-known/oauth-protected-resource", timeout=10,
                            headers={"X-Forwarded-Proto": "https",
                                     "X-Forwarded-Host": "api.example"})  # fmt: skip
    assert response.status_code == 200
    assert response.json() == {
        "resource": "https://api.example",
        "authorization_servers": [config_issuer],
        "bearer_methods_supported": ["header"],
        "stepup_route_requirements": SANDBOX_REQUIREMENTS,
        # RFC 9728 §2 (RFC 9449): the DPoP proof algorithms the resource accepts.
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }
    assert requests.get(f"{sideband}/nope", timeout=10).status_code == 404


def test_nginx_refuses_what_a_body_rule_may_apply_to_it_cannot_see(
    sideband: str, issuer: FakeIssuer, bank_policy: BankPolicy
) -> None:
    # nginx auth_request never sends the body: judging a transfer as bodiless would let a large
    # one pass as a small one. The request is refused, and says where to route it instead.
    response = nginx(sideband, "POST", "/transfers", issuer.mint())
    assert (response.status_code, response.headers["X-Stepup-Status"]) == (403, "403")
    body = json.loads(response.headers["X-Stepup-Body"])
    assert body["error"] == "access_denied"
    assert "nginx auth_request" in body["error_description"]
    assert bank_policy.bodies == []
    assert nginx(sideband, "PUT", "/profile/email", issuer.mint()).status_code == 200
