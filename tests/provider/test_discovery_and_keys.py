"""OIDC Discovery 1.0 §3 / RFC 8414 metadata, the JWKS, and the signing keys' life: generated on
first start, stored, loaded once, rotated with the old key published until its tokens expire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from joserfc import jwk, jwt
from joserfc.jwk import RSAKey

from provider import create_app
from provider.app import Provider
from provider.keys import rotate
from stepup.config import StepupConfig

from .flow import Browser, Client, header

ISSUER = "http://127.0.0.1:9000"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth"}


def provider_of(app: Flask) -> Provider:
    provider: Provider = app.extensions["stepup_provider"]
    return provider


def machine_token(app: Flask) -> str:
    """An access token without a login (client_credentials): cheap to mint."""
    response = app.test_client().post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("reports-job", "reports-job-secret-for-the-local-sandbox"),
    )
    assert response.status_code == 200, response.json
    token: str = response.json["access_token"]  # type: ignore[index]
    return token


def kids(app: Flask) -> list[str]:
    response = app.test_client().get("/jwks")
    assert response.status_code == 200
    return [k["kid"] for k in response.json["keys"]]  # type: ignore[index]


def active(app: Flask, token: str) -> bool:
    response = app.test_client().post(
        "/introspect",
        data={"token": token},
        auth=("bank-web", "bank-web-secret-for-the-local-sandbox"),
    )
    return bool(response.json["active"])  # type: ignore[index]


# --- discovery -----------------------------------------------------------------------------------


def test_openid_configuration_is_exact(sqlite_app: Flask) -> None:
    response = sqlite_app.test_client().get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.json == {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "jwks_uri": f"{ISSUER}/jwks",
        "introspection_endpoint": f"{ISSUER}/introspect",
        "revocation_endpoint": f"{ISSUER}/revoke",
        "end_session_endpoint": f"{ISSUER}/logout",
        "scopes_supported": ["openid", "profile", "email", "offline_access", "accounts:read"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:openid:params:grant-type:ciba",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": [
            *("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"),
            *("Ed25519", "EdDSA"),
        ],
        "acr_values_supported": [
            "urn:stepup:loa:1",
            "urn:stepup:loa:2",
            "urn:stepup:loa:passkey",
            "urn:stepup:loa:hardware-key",
            "urn:okta:loa:1fa:any",
            "urn:okta:loa:1fa:pwd",
            "urn:okta:loa:2fa:any",
            "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
            "phr",
            "phrh",
        ],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "at_hash",
            "name",
            "preferred_username",
            "email",
            "email_verified",
        ],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_authentication_endpoint": f"{ISSUER}/backchannel",
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": False,
        "authorization_details_types_supported": ["payment"],
    }


def test_oauth_authorization_server_metadata_is_the_same(sqlite_app: Flask) -> None:
    http = sqlite_app.test_client()
    oauth = http.get("/.well-known/oauth-authorization-server")
    assert oauth.status_code == 200
    assert oauth.json == http.get("/.well-known/openid-configuration").json


def test_metadata_issuer_is_the_tokens_iss(sqlite_app: Flask) -> None:
    token = machine_token(sqlite_app)
    metadata = sqlite_app.test_client().get("/.well-known/openid-configuration").json
    assert metadata is not None
    issuer = metadata["issuer"]
    assert jwt.decode(token, provider_of(sqlite_app).keys.current).claims["iss"] == issuer


# --- JWKS ----------------------------------------------------------------------------------------


def test_jwks_publishes_public_keys_only(sqlite_app: Flask) -> None:
    response = sqlite_app.test_client().get("/jwks")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    keys = response.json["keys"]  # type: ignore[index]
    assert len(keys) == 1
    (key,) = keys
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert not PRIVATE_MEMBERS & set(key)
    # The kid is the RFC 7638 thumbprint of the public key.
    assert key["kid"] == RSAKey.import_key(key).thumbprint()


def test_jwks_kid_is_the_token_header_kid(cli: Client, browser: Browser) -> None:
    tokens = cli.tokens()
    (kid,) = kids(browser.app)
    for token in (tokens["access_token"], tokens["id_token"]):
        assert header(token)["kid"] == kid
        assert header(token)["alg"] == "RS256"
    assert header(tokens["access_token"])["typ"] == "at+jwt"
    assert header(tokens["id_token"])["typ"] == "JWT"


def test_the_key_is_generated_once_and_stored(
    config: StepupConfig, database_url: str, frozen: FrozenDateTimeFactory
) -> None:
    first = create_app(config, database_url=database_url)
    second = create_app(config, database_url=database_url)
    assert kids(first) == kids(second)
    assert header(machine_token(second))["kid"] == kids(first)[0]
    # Tokens of one process verify at another sharing the database.
    assert active(second, machine_token(first))


@pytest.fixture
def key_imports(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Count every private or public key import (RSAKey.import_key and jwk.import_key)."""
    calls: list[Any] = []
    original: Callable[..., Any] = RSAKey.import_key.__func__  # type: ignore[attr-defined]

    def counting(cls: type[RSAKey], *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(cls, *args, **kwargs)

    original_generic = jwk.import_key

    def counting_generic(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original_generic(*args, **kwargs)

    monkeypatch.setattr(RSAKey, "import_key", classmethod(counting))
    monkeypatch.setattr(jwk, "import_key", counting_generic)
    return calls


def test_keys_are_loaded_once_not_per_token(sqlite_app: Flask, key_imports: list[Any]) -> None:
    browser = Browser(sqlite_app)
    cli = Client(browser)
    tokens = cli.tokens()
    refreshed = cli.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    for _ in range(5):
        token = machine_token(sqlite_app)
        assert active(sqlite_app, token)
    userinfo = browser.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 200
    assert browser.http.get("/jwks").status_code == 200
    assert key_imports == []


def test_the_counter_sees_a_key_load(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory, key_imports: list[Any]
) -> None:
    """The previous test would pass vacuously if the patch missed: a start on a database that
    holds the key loads it, once."""
    create_app(config, database_url=sqlite_url)  # first start: generates, nothing to import
    assert key_imports == []
    create_app(config, database_url=sqlite_url)
    assert len(key_imports) == 1


# --- rotation ------------------------------------------------------------------------------------


def test_rotation_publishes_the_old_key_until_its_tokens_expire(
    config: StepupConfig, database_url: str, frozen: FrozenDateTimeFactory
) -> None:
    before = create_app(config, database_url=database_url)
    (old_kid,) = kids(before)
    old_token = machine_token(before)

    op = provider_of(before)
    with op.db.session() as s:
        new_kid = rotate(s, op.clock.now())
    assert new_kid != old_kid

    # A process started after the rotation signs with the new key and publishes both.
    after = create_app(config, database_url=database_url)
    assert kids(after) == [old_kid, new_kid]
    assert header(machine_token(after))["kid"] == new_kid
    assert active(after, old_token)

    # The old key's last tokens live 600 s (the longest token lifetime) from the rotation, and a
    # running process may sign with it for up to one key-list refresh (60 s) after the rotation.
    frozen.tick(599)
    assert active(create_app(config, database_url=database_url), old_token)
    frozen.tick(60)
    assert kids(create_app(config, database_url=database_url)) == [old_kid, new_kid]
    frozen.tick(1)
    assert kids(create_app(config, database_url=database_url)) == [old_kid, new_kid]
    frozen.tick(1)
    later = create_app(config, database_url=database_url)
    assert kids(later) == [new_kid]
    assert header(machine_token(later))["kid"] == new_kid
    assert not active(later, old_token)


def test_a_running_process_follows_a_rotation_without_restart(
    config: StepupConfig, database_url: str, frozen: FrozenDateTimeFactory
) -> None:
    running = create_app(config, database_url=database_url)
    (old_kid,) = kids(running)
    other = create_app(config, database_url=database_url)  # a second process, same database
    op = provider_of(other)
    with op.db.session() as s:
        new_kid = rotate(s, op.clock.now())
    fresh = create_app(config, database_url=database_url)
    new_token = machine_token(fresh)
    assert header(new_token)["kid"] == new_kid
    # A token with a kid it has not seen makes the running process look again at once.
    assert active(running, new_token)
    assert kids(running) == [old_kid, new_kid]
    # Within a minute it signs with the new key itself.
    frozen.tick(60)
    assert header(machine_token(running))["kid"] == new_kid
