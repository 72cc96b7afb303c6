"""PKCE policy: RFC 7636 and RFC 9700 §2.1.1.

PKCE (S256 only) stays required by default, of public and confidential clients alike. A
confidential client may be registered with ``require_pkce = false`` ("Confidential OpenID Connect
clients MAY use the nonce parameter and the respective Claims in the ID Token instead"), so that
relying parties without PKCE — the OpenID Foundation's Basic OP certification plan among them —
can run; a challenge such a client does send is verified all the same, and a ``code_verifier``
for a code issued without a challenge is refused (PKCE downgrade). A public client can never turn
PKCE off.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import create_engine, inspect, text
from werkzeug.test import TestResponse

from provider import create_app
from provider.db import normalise_url
from provider.settings import SettingsError
from stepup.config import ClientConfig, ConfigError, StepupConfig, parse_config

from .flow import WEB_REDIRECT, Browser, Client, claims, query_of

RP_REDIRECT = "https://rp.example/cb"
RP_SECRET = "rp-certification-secret-0123456789abcdef"
RP = ClientConfig(
    client_id="rp-cert",
    client_secret=RP_SECRET,
    redirect_uris=(RP_REDIRECT,),
    require_pkce=False,
)
NO_PKCE = {"code_challenge": None, "code_challenge_method": None}


@pytest.fixture
def rp_app(config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory) -> Flask:
    return create_app(replace(config, clients=(*config.clients, RP)), database_url=sqlite_url)


@pytest.fixture
def rp(rp_app: Flask) -> Client:
    return Client(Browser(rp_app), "rp-cert", RP_REDIRECT, secret=RP_SECRET)


def error_of(response: TestResponse, status: int, error: str) -> None:
    body = response.json
    assert body is not None
    assert (response.status_code, body["error"]) == (status, error), body


def redirect_error(response: TestResponse, redirect_uri: str) -> str:
    assert response.status_code == 302
    assert response.location.startswith(redirect_uri + "?")
    return query_of(response.location)["error"]


# --- a confidential client registered with require_pkce = false ---------------------------------


def test_without_pkce_the_code_flow_works_and_the_nonce_comes_back(
    rp: Client, rp_app: Flask
) -> None:
    callback = rp.sign_in(**NO_PKCE)
    response = rp.exchange(callback["code"], code_verifier="")  # empty: as omitted
    assert response.status_code == 200, response.json
    tokens = response.json
    assert tokens is not None
    assert claims(rp_app, tokens["id_token"])["nonce"] == rp.nonce


def test_a_challenge_that_is_sent_is_still_verified(rp: Client) -> None:
    code = rp.sign_in()["code"]
    other = Client(rp.browser)  # a different, well-formed verifier
    # RFC 7636 §4.6: if the values are not equal, "invalid_grant" MUST be returned.
    error_of(rp.exchange(code, code_verifier=other.verifier), 400, "invalid_grant")
    code = rp.sign_in()["code"]
    error_of(rp.exchange(code, code_verifier=""), 400, "invalid_request")
    code = rp.sign_in()["code"]
    assert rp.exchange(code).status_code == 200


def test_a_challenge_that_is_sent_is_still_s256_only(rp: Client) -> None:
    for params in (
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},  # defaults to plain (RFC 7636 §4.3)
        {"code_challenge": None},  # a method without a challenge
        {"code_challenge": "short"},
    ):
        assert redirect_error(rp.authorize(**params), RP_REDIRECT) == "invalid_request", params


def test_a_code_verifier_for_a_code_without_challenge_is_refused(rp: Client) -> None:
    """RFC 9700 §2.1.1: the server MUST refuse a token request with a code_verifier when the
    authorization request had no code_challenge (the PKCE downgrade attack)."""
    code = rp.sign_in(**NO_PKCE)["code"]
    error_of(rp.exchange(code), 400, "invalid_request")


# --- everyone else -------------------------------------------------------------------------------


def test_a_confidential_client_requires_pkce_by_default(rp_app: Flask) -> None:
    web = Client(Browser(rp_app), "bank-web", WEB_REDIRECT, secret="x" * 32)
    assert redirect_error(web.authorize(**NO_PKCE), WEB_REDIRECT) == "invalid_request"


def test_a_public_client_requires_pkce(rp_app: Flask) -> None:
    cli = Client(Browser(rp_app))
    assert redirect_error(cli.authorize(**NO_PKCE), cli.redirect_uri) == "invalid_request"


def test_a_public_client_cannot_turn_pkce_off_in_code() -> None:
    with pytest.raises(SettingsError) as raised:
        ClientConfig(client_id="spa", redirect_uris=("https://spa.example/",), require_pkce=False)
    assert str(raised.value) == (
        "client 'spa': require_pkce = false needs a client_secret; a public client must always "
        "use PKCE (RFC 9700 §2.1.1)"
    )


def test_a_public_client_cannot_turn_pkce_off_in_the_config_file(config: StepupConfig) -> None:
    document = {
        "issuer": "http://127.0.0.1:9000",
        "acr_levels": [{"value": "urn:stepup:loa:1", "factors": ["pwd"]}],
        "clients": [
            {"client_id": "web", "client_secret": RP_SECRET, "redirect_uris": [RP_REDIRECT]},
            {"client_id": "spa", "redirect_uris": [RP_REDIRECT], "require_pkce": False},
        ],
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(document, source="stepup.toml")
    assert str(raised.value) == (
        "stepup.toml: clients[1]: client 'spa': require_pkce = false needs a client_secret; a "
        "public client must always use PKCE (RFC 9700 §2.1.1)"
    )
    clients = document["clients"]
    assert isinstance(clients, list)
    clients[1]["client_secret"] = RP_SECRET
    assert parse_config(document).clients[1].require_pkce is False
    assert parse_config(document).clients[0].require_pkce is True


def test_require_pkce_must_be_a_boolean() -> None:
    document = {
        "issuer": "http://127.0.0.1:9000",
        "acr_levels": [{"value": "urn:stepup:loa:1", "factors": ["pwd"]}],
        "clients": [
            {
                "client_id": "web",
                "client_secret": RP_SECRET,
                "redirect_uris": [RP_REDIRECT],
                "require_pkce": "no",
            }
        ],
    }
    with pytest.raises(ConfigError, match=r"clients\[0\]\.require_pkce: must be true or false"):
        parse_config(document)


# --- a database written before the column existed ------------------------------------------------


def test_a_database_without_the_new_column_is_upgraded(
    config: StepupConfig, database_url: str, frozen: FrozenDateTimeFactory
) -> None:
    create_app(config, database_url=database_url).extensions["stepup_provider"].db.dispose()
    engine = create_engine(normalise_url(database_url))
    with engine.begin() as conn:  # as 0.1.0 left it: no column, no version table
        conn.execute(text("ALTER TABLE op_clients DROP COLUMN require_pkce"))
        conn.execute(text("DROP TABLE op_alembic_version"))
    assert "require_pkce" not in {c["name"] for c in inspect(engine).get_columns("op_clients")}

    app = create_app(replace(config, clients=(*config.clients, RP)), database_url=database_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT client_id, require_pkce FROM op_clients")).all())
    engine.dispose()
    assert {k: bool(v) for k, v in rows.items()} == {
        "back-office": True,
        "bank-cli": True,
        "bank-payments": True,
        "bank-web": True,
        "reports-job": True,
        "rp-cert": False,
        "sandbox-playground": True,
    }
    web = Client(Browser(app), "rp-cert", RP_REDIRECT, secret=RP_SECRET)
    assert web.exchange(web.sign_in(**NO_PKCE)["code"], code_verifier="").status_code == 200
    app.extensions["stepup_provider"].db.dispose()
