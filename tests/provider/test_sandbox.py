"""The sandbox conveniences: ``GET /sandbox`` (users, factors, current codes) and
``POST /sandbox/token`` (a real access token with a chosen ``acr`` and ``auth_time``).

Both exist only when ``[provider] sandbox = true``; a provider configured without it answers 404.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun.api import FrozenDateTimeFactory
from joserfc import jwt
from joserfc.jwk import KeySet

import resource_api
from provider import create_app
from provider.factors import totp
from resource_api import JwtAccessTokenValidator
from stepup.config import StepupConfig

from .conftest import T0_EPOCH
from .flow import ALICE_SECRET, LOA1, LOA2

ALICE_CODE = totp.code_at(ALICE_SECRET, T0_EPOCH)


@pytest.fixture
def http(sqlite_app: Flask) -> FlaskClient:
    return sqlite_app.test_client()


def mint(http: FlaskClient, **body: Any) -> Any:
    return http.post("/sandbox/token", json=body)


def claims_of(http: FlaskClient, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(http.get("/jwks").get_json())
    decoded = jwt.decode(token, keys)
    assert decoded.header["typ"] == "at+jwt"
    return dict(decoded.claims)


# --- GET /sandbox -------------------------------------------------------------------------------


def test_sandbox_page_lists_users_passwords_factors_and_current_codes(http: FlaskClient) -> None:
    response = http.get("/sandbox")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert (
        '<tr><td>alice</td><td><code>wonderland</code></td><td data-factors-of="alice">pwd, otp'
        '</td><td class="code" data-user="alice" data-seconds-left="30"><code>'
        f'{ALICE_CODE}</code> <span class="left">30 s left</span></td></tr>'
    ) in html
    assert (
        '<tr><td>bob</td><td><code>builder</code></td><td data-factors-of="bob">pwd</td>'
        '<td class="code" data-user="bob">—</td></tr>'
    ) in html
    assert f"<code>{LOA2}</code>: pwd + otp" in html


def test_sandbox_page_links_to_the_playground(http: FlaskClient) -> None:
    html = http.get("/sandbox").get_data(as_text=True)
    assert '<a href="/sandbox/try">playground</a>' in html


def test_sandbox_page_refreshes_its_codes_with_a_same_origin_script(http: FlaskClient) -> None:
    response = http.get("/sandbox")
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' http: "
        "https:; frame-ancestors 'none'; base-uri 'none'; script-src 'self'; connect-src 'self'"
    )
    html = response.get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/sandbox.js">']
    script = http.get("/static/sandbox.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    source = script.get_data(as_text=True)
    # It reads the page's JSON (the test below pins its shape) and updates the marked cells.
    assert 'headers: { Accept: "application/json" }' in source
    assert 'querySelectorAll("td[data-user]")' in source


def test_without_javascript_the_page_reloads_when_the_first_code_changes(
    http: FlaskClient, frozen: FrozenDateTimeFactory
) -> None:
    frozen.tick(12)
    html = http.get("/sandbox").get_data(as_text=True)
    assert '<noscript><meta http-equiv="refresh" content="18"></noscript>' in html


def test_sandbox_json_for_clients_that_ask_for_it(http: FlaskClient) -> None:
    response = http.get("/sandbox", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json() == {
        "users": [
            {"username": "alice", "factors": ["pwd", "otp"], "code": ALICE_CODE,
             "seconds_left": 30},
            {"username": "bob", "factors": ["pwd"], "code": None, "seconds_left": None},
        ],
        "settings": {"sandbox_allow_totp_reuse": False, "sandbox_loopback_clients": True},
    }  # fmt: skip


@pytest.mark.parametrize("accept", ["*/*", "text/html,application/json;q=0.9", ""])
def test_sandbox_page_is_html_for_browsers(http: FlaskClient, accept: str) -> None:
    response = http.get("/sandbox", headers={"Accept": accept} if accept else {})
    assert response.mimetype == "text/html"


def test_code_follows_the_clock(http: FlaskClient, frozen: FrozenDateTimeFactory) -> None:
    frozen.tick(31)
    users = http.get("/sandbox", headers={"Accept": "application/json"}).get_json()["users"]
    assert users[0]["code"] == totp.code_at(ALICE_SECRET, T0_EPOCH + 31)
    assert users[0]["seconds_left"] == 29


def test_user_enrolled_in_the_flow_shows_with_their_code(
    sqlite_app: Flask, http: FlaskClient
) -> None:
    from provider.models import User

    db = sqlite_app.extensions["stepup_provider"].db
    with db.session() as s:
        bob = s.query(User).filter_by(username="bob").one()
        bob.totp_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        s.commit()
    users = http.get("/sandbox", headers={"Accept": "application/json"}).get_json()["users"]
    assert users[1] == {
        "username": "bob",
        "factors": ["pwd", "otp"],
        "code": totp.code_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", T0_EPOCH),
        "seconds_left": 30,
    }


def test_off_outside_the_sandbox(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    plain = replace(
        config, provider=replace(config.provider, sandbox=False, sandbox_loopback_clients=False)
    )
    http = create_app(plain, database_url=sqlite_url).test_client()
    assert http.get("/sandbox").status_code == 404
    assert http.get("/").status_code == 404
    assert mint(http, username="alice", acr=LOA2).status_code == 404


def test_the_bare_address_leads_to_the_users_page(http: FlaskClient) -> None:
    response = http.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sandbox"


# --- POST /sandbox/token -----------------------------------------------------------------------


def test_mint_a_token_at_a_chosen_level_and_time(http: FlaskClient) -> None:
    response = mint(http, username="alice", acr=LOA2, auth_time=T0_EPOCH - 600)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert "id_token" not in body
    claims = claims_of(http, body["access_token"])
    assert claims["acr"] == LOA2
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["auth_time"] == T0_EPOCH - 600
    assert claims["iat"] == T0_EPOCH
    assert claims["aud"] == "https://bank.example/api"
    assert claims["client_id"] == "sandbox-minter"


def test_mint_defaults_auth_time_to_now_and_amr_to_the_levels_factors(http: FlaskClient) -> None:
    claims = claims_of(http, mint(http, username="alice", acr=LOA1).get_json()["access_token"])
    assert (claims["acr"], claims["amr"], claims["auth_time"]) == (LOA1, ["pwd"], T0_EPOCH)
    assert claims["scope"] == "openid"


def test_mint_without_acr_gives_the_weakest_level(http: FlaskClient) -> None:
    # Contract 8: acr is optional.
    claims = claims_of(http, mint(http, username="bob").get_json()["access_token"])
    assert (claims["acr"], claims["amr"], claims["auth_time"]) == (LOA1, ["pwd"], T0_EPOCH)


def test_mint_returns_the_id_token_when_asked(http: FlaskClient) -> None:
    body = mint(http, username="alice", acr=LOA2, auth_time=T0_EPOCH - 5, id_token=True).get_json()
    keys = KeySet.import_key_set(http.get("/jwks").get_json())
    id_claims = jwt.decode(body["id_token"], keys).claims
    assert (id_claims["acr"], id_claims["auth_time"]) == (LOA2, T0_EPOCH - 5)
    assert id_claims["aud"] == "sandbox-minter"
    assert claims_of(http, body["access_token"])["acr"] == LOA2


def test_mint_accepts_an_alias_and_explicit_amr_and_scope(http: FlaskClient) -> None:
    body = {"username": "bob", "acr": "urn:okta:loa:2fa:any", "amr": ["pwd", "otp"],
            "scope": "openid accounts:read"}  # fmt: skip
    claims = claims_of(http, mint(http, **body).get_json()["access_token"])
    assert claims["acr"] == "urn:okta:loa:2fa:any"
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["scope"] == "openid accounts:read"


def test_minted_token_is_real_for_introspection(http: FlaskClient) -> None:
    token = mint(http, username="alice", acr=LOA2, auth_time=T0_EPOCH - 60).get_json()
    response = http.post(
        "/introspect",
        data={"token": token["access_token"]},
        auth=("bank-web", "bank-web-secret-for-the-local-sandbox"),
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["active"], body["acr"], body["auth_time"]) == (True, LOA2, T0_EPOCH - 60)
    assert body["username"] == "alice"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"acr": LOA2}, "username is a required string, and acr a string when given"),
        ({"username": 7}, "username is a required string, and acr a string when given"),
        ({"username": "alice", "acr": 2},
         "username is a required string, and acr a string when given"),
        ({"username": "alice", "id_token": "yes"}, "id_token must be true or false"),
        ({"username": "alice", "acr": "urn:stepup:loa:3"},
         "unknown acr 'urn:stepup:loa:3'; known: "),
        ({"username": "carol", "acr": LOA1}, "no user 'carol'"),
        ({"username": "alice", "acr": LOA1, "auth_time": T0_EPOCH + 1},
         "auth_time must be an integer epoch time, not in the future"),
        ({"username": "alice", "acr": LOA1, "auth_time": True},
         "auth_time must be an integer epoch time, not in the future"),
        ({"username": "alice", "acr": LOA1, "auth_time": "yesterday"},
         "auth_time must be an integer epoch time, not in the future"),
        ({"username": "alice", "acr": LOA1, "scope": ["openid"]}, "scope must be a string"),
        ({"username": "alice", "acr": LOA1, "amr": "pwd"}, "amr must be a list of strings"),
        ({"username": "alice", "acr": LOA1, "amr": [1]}, "amr must be a list of strings"),
    ],
)  # fmt: skip
def test_mint_refuses_bad_input_with_400(
    http: FlaskClient, body: dict[str, Any], message: str
) -> None:
    response = mint(http, **body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.get_json()["error_description"].startswith(message)


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'"alice"'])
def test_mint_refuses_a_body_that_is_not_a_json_object(http: FlaskClient, data: bytes) -> None:
    response = http.post("/sandbox/token", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_request",
        "error_description": "send a JSON object",
    }


# --- the point of minting: test an API's step-up rules without the login pages -----------------


@pytest.fixture
def api(config: StepupConfig, sqlite_url: str, http: FlaskClient) -> FlaskClient:
    def fetch(url: str) -> Any:
        return http.get(urlsplit(url).path).get_json()

    validator = JwtAccessTokenValidator(config.api_issuer, config.api.audience, fetch=fetch)
    app = resource_api.create_app(config, database_url=sqlite_url, token_validator=validator)
    return app.test_client()


def transfer(api: FlaskClient, token: str) -> Any:
    auth = {"Authorization": f"Bearer {token}"}
    accounts = api.get("/accounts", headers=auth).get_json()["accounts"]
    body = {"from_account": accounts[0]["id"], "to_account": accounts[1]["id"], "amount": "5.00"}
    return api.post("/transfers", json=body, headers=auth)


def test_minted_tokens_drive_the_apis_step_up_rules(http: FlaskClient, api: FlaskClient) -> None:
    weak = mint(http, username="alice", acr=LOA1).get_json()["access_token"]
    response = transfer(api, weak)
    assert response.status_code == 401
    assert f'acr_values="{LOA2}"' in response.headers["WWW-Authenticate"]

    stale = mint(http, username="alice", acr=LOA2, auth_time=T0_EPOCH - 7200)
    response = transfer(api, stale.get_json()["access_token"])
    assert response.status_code == 401
    assert "max_age=3600" in response.headers["WWW-Authenticate"]

    fresh = mint(http, username="alice", acr=LOA2).get_json()["access_token"]
    response = transfer(api, fresh)
    assert response.status_code == 201
    assert response.get_json()["authorized_with"]["acr"] == LOA2
