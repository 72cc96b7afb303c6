"""Who may call the factor API: a confidential client registered for ``client_credentials`` only
with the ``stepup:factors`` scope, with a token of its own for the API (RFC 8707 ``resource``).
Everyone else gets RFC 6750's answers — exact status, error code and ``WWW-Authenticate``
parameters — and the same answer whichever user they name."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.test import TestResponse

from client_sdk import parse_www_authenticate
from client_sdk.dpop import DPoPKey
from provider import create_app
from provider.factor_api import SCOPE
from provider.settings import ClientConfig, SettingsError
from stepup.config import ConfigError, StepupConfig, parse_config

from .factor_api_support import BACK_OFFICE, FactorApi, admin_token, audit, op_of, resource
from .flow import WEB_REDIRECT, Browser, Client, claims
from .test_rfc9449_dpop import proof_for, with_nonce

REPORTS = ("reports-job", "reports-job-secret-for-the-local-sandbox")
INVALID = 'Bearer error="invalid_token", error_description="The access token is invalid or expired"'
INSUFFICIENT = (
    'Bearer error="insufficient_scope", error_description="The factor API needs a '
    'client_credentials token with the stepup:factors scope", scope="stepup:factors"'
)


def calls(api: FactorApi, user: str) -> list[tuple[int, str, object]]:
    """Status, WWW-Authenticate and body of each endpoint for ``user``."""
    out = []
    for response in (
        api.factors(user),
        api.challenge(user),
        api.verify(user, "123456", "tid"),
    ):
        out.append(
            (response.status_code, response.headers.get("WWW-Authenticate", ""), response.json)
        )
    return out


def test_without_a_token_every_call_gets_the_bare_challenge(app: Flask) -> None:
    """RFC 6750 §3.1: a request without authentication gets a challenge with no error code; it
    names the scope the API needs, and DPoP's algorithms (RFC 9449 §7.1)."""
    api = FactorApi(app, token="")
    algs = " ".join(op_of(app).dpop.algorithms)
    challenge = f'Bearer realm="stepup-factor-api", scope="stepup:factors", DPoP algs="{algs}"'
    body = {
        "error": "invalid_token",
        "error_description": "The factor API needs an access token (client_credentials, scope "
        f"stepup:factors, resource {resource(app)}).",
    }
    for user in ("alice", "nobody"):
        for path, method in (
            (f"/api/v1/users/{user}/factors", "GET"),
            (f"/api/v1/users/{user}/factors/otp/challenge", "POST"),
            (f"/api/v1/users/{user}/factors/otp/verify", "POST"),
        ):
            response = api.http.open(path, method=method)
            assert (response.status_code, response.json) == (401, body)
            assert response.headers["WWW-Authenticate"] == challenge
    [bearer, dpop] = parse_www_authenticate(challenge)
    assert (bearer.scheme, bearer.params) == (
        "bearer",
        {"realm": "stepup-factor-api", "scope": "stepup:factors"},
    )
    assert dpop.scheme == "dpop"
    assert audit(app) == []


def test_an_invalid_expired_or_revoked_token_is_invalid_token(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    for token in ("not-a-token", admin_token(app) + "x"):
        assert calls(FactorApi(app, token), "alice") == calls(FactorApi(app, token), "nobody")
        assert {c[:2] for c in calls(FactorApi(app, token), "alice")} == {(401, INVALID)}

    token = admin_token(app)
    frozen.tick(op_of(app).config.provider.access_token_lifetime)
    assert {c[:2] for c in calls(FactorApi(app, token), "alice")} == {(401, INVALID)}

    token = admin_token(app)
    assert FactorApi(app, token).factors("alice").status_code == 200
    revoked = app.test_client().post("/revoke", data={"token": token}, auth=BACK_OFFICE)
    assert revoked.status_code == 200
    assert {c[:2] for c in calls(FactorApi(app, token), "alice")} == {(401, INVALID)}
    assert audit(app) == []


def test_a_token_for_another_resource_is_invalid_token(app: Flask) -> None:
    """RFC 8707: without ``resource`` the token is for the bank API (the default audience)."""
    token = admin_token(app, resource_=None)
    assert claims(app, token)["aud"] == "https://bank.example/api"
    expected = (
        'Bearer error="invalid_token", error_description="The access token is not for the '
        'factor API (ask for it as resource)"'
    )
    assert {c[:2] for c in calls(FactorApi(app, token), "alice")} == {(401, expected)}


def test_a_token_without_the_scope_is_insufficient_scope(app: Flask) -> None:
    token = admin_token(app, scope=None)  # the registered scope, which is stepup:factors
    assert claims(app, token)["scope"] == SCOPE
    assert FactorApi(app, token).factors("alice").status_code == 200

    # reports-job is not registered for the scope: asking for it gets the registered one only.
    token = admin_token(app, REPORTS, scope=f"accounts:read {SCOPE}")
    assert (claims(app, token)["scope"], claims(app, token)["aud"]) == (
        "accounts:read",
        resource(app),
    )
    answers = calls(FactorApi(app, token), "alice")
    assert answers == calls(FactorApi(app, token), "nobody")
    assert {c[:2] for c in answers} == {(403, INSUFFICIENT)}
    assert answers[0][2] == {
        "error": "insufficient_scope",
        "error_description": "The factor API needs a client_credentials token with the "
        "stepup:factors scope",
        "scope": "stepup:factors",
    }


def test_a_users_token_is_insufficient_scope(app: Flask) -> None:
    """A user signed in through a web client, whose token names the API as its resource: it acts
    for the user, not as an admin."""
    web = Client(
        Browser(app), "bank-web", WEB_REDIRECT, secret="bank-web-secret-for-the-local-sandbox"
    )
    token = web.tokens(resource=resource(app))["access_token"]
    assert claims(app, token)["aud"] == resource(app)
    assert {c[:2] for c in calls(FactorApi(app, token), "alice")} == {(403, INSUFFICIENT)}


def test_a_client_no_longer_registered_for_the_scope_is_refused(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    """The config changed (and the provider restarted) while a token was still unexpired."""
    app = create_app(config, database_url=sqlite_url)
    token = admin_token(app)
    assert FactorApi(app, token).factors("alice").status_code == 200
    demoted = tuple(
        replace(c, scope="accounts:read") if c.client_id == "back-office" else c
        for c in config.clients
    )
    again = create_app(replace(config, clients=demoted), database_url=sqlite_url)
    assert {c[:2] for c in calls(FactorApi(again, token), "alice")} == {(403, INSUFFICIENT)}


def test_a_malformed_authorization_is_invalid_request(app: Flask) -> None:
    http = app.test_client()
    empty = http.get("/api/v1/users/alice/factors", headers={"Authorization": "Bearer "})
    assert (empty.status_code, empty.json["error"]) == (400, "invalid_request")  # type: ignore[index]
    token = admin_token(app)
    twice = http.get(
        f"/api/v1/users/alice/factors?access_token={token}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (twice.status_code, twice.json["error"]) == (400, "invalid_request")  # type: ignore[index]
    assert twice.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_request", error_description="Send the access token one way only"'
    )


def test_only_a_confidential_client_credentials_client_may_hold_the_scope() -> None:
    with pytest.raises(SettingsError) as public:
        ClientConfig("spa", redirect_uris=("https://spa.example/cb",), scope=f"openid {SCOPE}")
    assert str(public.value) == (
        "client 'spa': the stepup:factors scope needs a client_secret (a confidential client) "
        "(docs/transactional.md)"
    )
    with pytest.raises(SettingsError) as mixed:
        ClientConfig(
            "web",
            client_secret="s" * 32,
            redirect_uris=("https://web.example/cb",),
            grant_types=("authorization_code", "client_credentials"),
            scope=SCOPE,
        )
    assert str(mixed.value) == (
        "client 'web': the stepup:factors scope needs grant_types = [\"client_credentials\"] and "
        "nothing else (docs/transactional.md)"
    )
    base = {"issuer": "http://op.test", "acr_levels": [{"value": "urn:a:1", "factors": ["pwd"]}]}
    client = {"client_id": "spa", "redirect_uris": ["https://spa.example/cb"], "scope": SCOPE}
    with pytest.raises(ConfigError) as in_file:
        parse_config({**base, "clients": [client]}, source="stepup.toml")
    assert str(in_file.value).startswith(
        "stepup.toml: clients[0]: client 'spa': the stepup:factors"
    )


def test_a_dpop_bound_admin_token_comes_with_its_proof_for_this_uri(app: Flask) -> None:
    """RFC 9449 §7: the proof's ``htu`` is the factor API's URI (not userinfo's), and the bound
    token is refused as a bearer token."""
    key = DPoPKey.generate()
    http = app.test_client()
    data = {"grant_type": "client_credentials", "scope": SCOPE, "resource": resource(app)}
    body = with_nonce(app, http, data, key, auth=BACK_OFFICE).json
    assert body is not None
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    path = "/api/v1/users/alice/factors"

    def call(scheme: str, proofs: list[str]) -> TestResponse:
        headers = [("Authorization", f"{scheme} {token}"), *(("DPoP", p) for p in proofs)]
        return http.get(path, headers=headers)

    good = proof_for(app, key, path=path, method="GET", access_token=token)
    assert call("DPoP", [good]).status_code == 200
    for_userinfo = proof_for(app, key, path="/userinfo", method="GET", access_token=token)
    refused = call("DPoP", [for_userinfo])
    assert (refused.status_code, refused.json["error"]) == (401, "invalid_dpop_proof")  # type: ignore[index]
    assert refused.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')
    as_bearer = call("Bearer", [])
    assert (as_bearer.status_code, as_bearer.json["error"]) == (401, "invalid_token")  # type: ignore[index]
    assert as_bearer.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')


def test_a_dpop_token_without_the_scope_gets_a_dpop_challenge(app: Flask) -> None:
    key = DPoPKey.generate()
    http = app.test_client()
    data = {"grant_type": "client_credentials", "resource": resource(app)}
    body = with_nonce(app, http, data, key, auth=REPORTS).json
    assert body is not None
    token = body["access_token"]
    path = "/api/v1/users/alice/factors"
    proof = proof_for(app, key, path=path, method="GET", access_token=token)
    response = http.get(path, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    algs = " ".join(op_of(app).dpop.algorithms)
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == (
        'DPoP error="insufficient_scope", error_description="The factor API needs a '
        'client_credentials token with the stepup:factors scope", scope="stepup:factors", '
        f'algs="{algs}"'
    )
