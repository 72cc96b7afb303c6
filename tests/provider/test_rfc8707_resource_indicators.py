"""RFC 8707 resource indicators at the provider: ``resource`` on /authorize and /token.

The access token's ``aud`` follows the resources asked for; an unknown or malformed one is
``invalid_target`` (a redirect error at /authorize, a 400 JSON error at /token); a token request
or a refresh may narrow the grant's resources but never widen them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from werkzeug.datastructures import MultiDict

from provider import create_app
from provider.resource_indicators import InvalidTarget, Resources, check_resource_uri
from provider.settings import SettingsError
from stepup.config import ConfigError, StepupConfig, parse_config

from .flow import CLI_REDIRECT, Browser, Client, claims, query_of

API = "https://bank.example/api"
MCP = "https://mcp.example/tools"
REPORTS = "https://reports.example/"


@pytest.fixture
def config(config: StepupConfig) -> StepupConfig:
    """The sandbox config with two more APIs the provider issues tokens for."""
    return replace(config, provider=replace(config.provider, resources=(MCP, REPORTS)))


def _token_error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json["error"]


# --- the pure rules ----------------------------------------------------------------------------


def test_only_absolute_uris_without_fragment_are_resource_indicators() -> None:
    assert check_resource_uri("https://mcp.example/tools") is None
    assert check_resource_uri("urn:example:api") is None
    assert check_resource_uri("https://api.example/?tenant=1") is None  # RFC 8707: MAY query
    assert check_resource_uri("/relative/path") == "a resource indicator must be an absolute URI"
    assert check_resource_uri("mcp.example") == "a resource indicator must be an absolute URI"
    assert check_resource_uri("https://a.example/ b") is not None
    assert check_resource_uri("https://a.example/#top") == (
        "a resource indicator must not have a fragment"
    )
    assert check_resource_uri("https://a.example/" + "x" * 3000) is not None


def test_a_token_request_narrows_the_grant_and_never_widens_it() -> None:
    resources = Resources.of(API, [MCP, REPORTS])
    assert resources.requested([MCP, MCP, API]) == (MCP, API)
    assert resources.audience((), None) == (API,)  # nothing asked, nothing granted: default
    assert resources.audience((), [MCP, REPORTS]) == (MCP, REPORTS)
    assert resources.audience((REPORTS,), [MCP, REPORTS]) == (REPORTS,)
    with pytest.raises(InvalidTarget):
        resources.audience((API,), [MCP])  # widening
    with pytest.raises(InvalidTarget):
        resources.audience((MCP,), None)  # the grant was for the default audience only
    with pytest.raises(InvalidTarget):
        resources.requested(["https://unknown.example/"])


def test_the_config_lists_resources_and_refuses_one_that_is_no_uri() -> None:
    base = {
        "issuer": "http://op.test",
        "acr_levels": [{"value": "urn:a:1", "factors": ["pwd"]}],
    }
    parsed = parse_config({**base, "provider": {"resources": [MCP]}})
    assert parsed.provider.resources == (MCP,)
    with pytest.raises(ConfigError, match=r"provider.resources: 'mcp.example': a resource "):
        parse_config({**base, "provider": {"resources": ["mcp.example"]}})
    with pytest.raises(SettingsError, match="must not have a fragment"):
        replace(parsed.provider, resources=("https://a.example/#x",))


# --- /authorize ------------------------------------------------------------------------------


def test_authorize_with_an_unknown_resource_redirects_invalid_target(cli: Client) -> None:
    response = cli.authorize(resource="https://unknown.example/api")
    assert response.status_code == 302
    assert response.location.startswith(CLI_REDIRECT)
    query = query_of(response.location)
    assert query["error"] == "invalid_target"
    assert query["state"] == cli.state
    assert query["iss"] == "http://127.0.0.1:9000"
    assert query["error_description"] == (
        "The resource parameter names a resource this provider does not know."
    )
    assert "unknown.example" not in response.location.split("error_description")[1]


@pytest.mark.parametrize(
    "value", ["relative/path", "https://mcp.example/tools#frag", "https://mcp.example/ tools"]
)
def test_authorize_with_a_malformed_resource_redirects_invalid_target(
    cli: Client, value: str
) -> None:
    response = cli.authorize(resource=value)
    assert response.status_code == 302
    query = query_of(response.location)
    assert query["error"] == "invalid_target"
    assert query["error_description"].startswith("The resource parameter is malformed")


def test_one_unknown_resource_among_known_ones_is_invalid_target(browser: Browser) -> None:
    cli = Client(browser)
    query = cli.authorize_params()
    response = browser.get(
        "/authorize",
        query_string=[*query.items(), ("resource", MCP), ("resource", "https://other.example/")],
    )
    assert response.status_code == 302
    assert query_of(response.location)["error"] == "invalid_target"


def test_a_bad_redirect_uri_is_still_an_error_page_not_a_redirect(cli: Client) -> None:
    response = cli.authorize(resource="https://unknown.example/", redirect_uri="http://evil/cb")
    assert response.status_code == 400
    assert "Location" not in response.headers


# --- /token: the code grant ---------------------------------------------------------------------


def test_without_resource_the_token_is_for_the_api_audience(app: Flask, cli: Client) -> None:
    tokens = cli.tokens()
    assert claims(app, tokens["access_token"])["aud"] == API


def test_the_access_token_aud_follows_the_resource(app: Flask, cli: Client) -> None:
    tokens = cli.tokens(resource=MCP)
    assert claims(app, tokens["access_token"])["aud"] == MCP
    # The ID token is for the client, whatever the resource.
    assert claims(app, tokens["id_token"])["aud"] == "bank-cli"


def test_several_resources_make_an_aud_array_and_the_token_request_may_narrow(
    app: Flask, browser: Browser
) -> None:
    cli = Client(browser)
    params = [*cli.authorize_params().items(), ("resource", MCP), ("resource", REPORTS)]
    response = browser.login_through(browser.get("/authorize", query_string=params))
    code = query_of(response.location)["code"]
    exchanged = cli.exchange(code, resource=REPORTS)
    assert exchanged.status_code == 200, exchanged.json
    assert claims(app, exchanged.json["access_token"])["aud"] == REPORTS

    cli2 = Client(browser)
    params = [*cli2.authorize_params().items(), ("resource", MCP), ("resource", REPORTS)]
    code2 = query_of(browser.login_through(browser.get("/authorize", query_string=params)).location)
    both = cli2.exchange(code2["code"])
    assert claims(app, both.json["access_token"])["aud"] == [MCP, REPORTS]


def test_a_token_request_for_a_resource_outside_the_authorization_is_invalid_target(
    app: Flask, cli: Client
) -> None:
    callback = cli.sign_in(resource=MCP)
    response = cli.exchange(callback["code"], resource=REPORTS)
    assert _token_error(response) == (400, "invalid_target")
    assert response.json["error_description"] == (
        "The resource parameter names a resource outside this grant; a token request may "
        "narrow the grant's resources, never widen them."
    )
    # Refused before the code was consumed: the same code still works for what it was for.
    again = cli.exchange(callback["code"], resource=MCP)
    assert again.status_code == 200, again.json
    assert claims(app, again.json["access_token"])["aud"] == MCP


def test_a_code_without_resource_cannot_be_exchanged_for_another_api(cli: Client) -> None:
    callback = cli.sign_in()
    response = cli.exchange(callback["code"], resource=MCP)
    assert _token_error(response) == (400, "invalid_target")


def test_an_unknown_resource_at_the_token_endpoint_is_invalid_target(cli: Client) -> None:
    callback = cli.sign_in(resource=MCP)
    for value in ("https://unknown.example/", "not a uri", "https://mcp.example/tools#x"):
        response = cli.exchange(callback["code"], resource=value)
        assert _token_error(response) == (400, "invalid_target"), value
        assert response.headers["Cache-Control"] == "no-store"


def test_other_parameters_still_may_not_repeat_at_the_token_endpoint(
    browser: Browser, cli: Client
) -> None:
    callback = cli.sign_in(resource=MCP)
    data = [
        ("client_id", "bank-cli"),
        ("grant_type", "authorization_code"),
        ("code", callback["code"]),
        ("redirect_uri", CLI_REDIRECT),
        ("code_verifier", cli.verifier),
        ("resource", MCP),
        ("resource", MCP),
    ]
    twice = browser.http.post("/token", data=MultiDict([*data, ("code_verifier", cli.verifier)]))
    assert _token_error(twice) == (400, "invalid_request")
    assert twice.json["error_description"] == "Parameter repeated: code_verifier."
    ok = browser.http.post("/token", data=MultiDict(data))
    assert ok.status_code == 200, ok.json  # resource may repeat (RFC 8707 §2)


# --- /token: refresh ------------------------------------------------------------------------


def _refresh(cli: Client, refresh_token: str, **extra: str) -> Any:
    return cli.token_request(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    )


def test_a_refresh_keeps_the_resource_and_may_narrow_it(
    app: Flask, browser: Browser, frozen: FrozenDateTimeFactory
) -> None:
    cli = Client(browser)
    params = [*cli.authorize_params().items(), ("resource", MCP), ("resource", REPORTS)]
    code = query_of(browser.login_through(browser.get("/authorize", query_string=params)).location)
    tokens = cli.exchange(code["code"]).json
    kept = _refresh(cli, tokens["refresh_token"])
    assert kept.status_code == 200, kept.json
    assert claims(app, kept.json["access_token"])["aud"] == [MCP, REPORTS]
    narrowed = _refresh(cli, kept.json["refresh_token"], resource=MCP)
    assert narrowed.status_code == 200, narrowed.json
    assert claims(app, narrowed.json["access_token"])["aud"] == MCP
    # The grant keeps both: the next refresh, without resource, is for both again.
    wide_again = _refresh(cli, narrowed.json["refresh_token"])
    assert claims(app, wide_again.json["access_token"])["aud"] == [MCP, REPORTS]


def test_a_refresh_never_widens_the_resource(app: Flask, cli: Client) -> None:
    tokens = cli.tokens(resource=MCP)
    for value in (API, REPORTS):
        response = _refresh(cli, tokens["refresh_token"], resource=value)
        assert _token_error(response) == (400, "invalid_target"), value
    # Refused before the rotation: the refresh token still works (no theft alarm).
    ok = _refresh(cli, tokens["refresh_token"])
    assert ok.status_code == 200, ok.json
    assert claims(app, ok.json["access_token"])["aud"] == MCP


def test_a_refresh_of_a_default_grant_cannot_move_to_another_api(cli: Client) -> None:
    tokens = cli.tokens()
    response = _refresh(cli, tokens["refresh_token"], resource=MCP)
    assert _token_error(response) == (400, "invalid_target")


# --- /token: client_credentials -------------------------------------------------------------


def test_client_credentials_aud_follows_a_known_resource(app: Flask, browser: Browser) -> None:
    auth = ("reports-job", "reports-job-secret-for-the-local-sandbox")
    http = browser.http
    plain = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert claims(app, plain.json["access_token"])["aud"] == API
    aimed = http.post(
        "/token", data={"grant_type": "client_credentials", "resource": REPORTS}, auth=auth
    )
    assert aimed.status_code == 200, aimed.json
    assert claims(app, aimed.json["access_token"])["aud"] == REPORTS
    unknown = http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": "https://x.example/"},
        auth=auth,
    )
    assert _token_error(unknown) == (400, "invalid_target")


def test_introspection_reports_the_resource_audience(app: Flask, cli: Client) -> None:
    tokens = cli.tokens(resource=MCP)
    response = cli.browser.http.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        auth=("bank-web", "bank-web-secret-for-the-local-sandbox"),
    )
    assert response.json["active"] is True
    assert response.json["aud"] == MCP


def test_a_provider_without_extra_resources_knows_only_its_api(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    plain = replace(config, provider=replace(config.provider, resources=()))
    app = create_app(plain, database_url=sqlite_url)
    cli = Client(Browser(app))
    refused = cli.authorize(resource=MCP)
    assert query_of(refused.location)["error"] == "invalid_target"
    tokens = cli.tokens(resource=API)
    assert claims(app, tokens["access_token"])["aud"] == API
