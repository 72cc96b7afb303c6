"""/authorize: RFC 6749 §4.1.1 to §4.1.2.1, RFC 7636, RFC 8252 §7.3, RFC 9207, OIDC Core §3.1.2."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask

from provider import create_app
from stepup.config import ClientConfig, StepupConfig

from .flow import Browser, Client, query_of

ISSUER = "http://127.0.0.1:9000"


@pytest.fixture
def cli(sqlite_app: Flask) -> Client:
    return Client(Browser(sqlite_app))


def test_unknown_client_gets_an_error_page_not_a_redirect(
    config: StepupConfig, sqlite_url: str, frozen: object
) -> None:
    # Registered clients only: without sandbox_loopback_clients (the built-in sandbox has it on,
    # docs/configuration.md), every provider configured from a file works this way.
    strict = replace(config.provider, sandbox_loopback_clients=False)
    app = create_app(replace(config, provider=strict), database_url=sqlite_url)
    response = Client(Browser(app)).authorize(client_id="nobody")
    assert response.status_code == 400
    assert response.location is None
    assert "Unknown application" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://127.0.0.1:8765/callback/extra",
        "http://127.0.0.1:8765/callback?x=1",
        "http://localhost:8765/callback",  # a different host than the one registered
        "http://127.0.0.1:notaport/callback",
        "",
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(
    cli: Client, redirect_uri: str
) -> None:
    response = cli.authorize(redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert response.location is None
    assert "Unregistered redirect URI" in response.get_data(as_text=True)


def test_loopback_redirect_accepts_any_port(cli: Client) -> None:
    # RFC 8252 §7.3: the registered loopback URI is :8765; a native app may bind any port.
    response = cli.authorize(redirect_uri="http://127.0.0.1:51234/callback")
    assert response.status_code == 303
    assert response.location.startswith("/interaction/")


def test_non_loopback_redirect_must_match_exactly(
    config: StepupConfig, sqlite_url: str, frozen: object
) -> None:
    partner = ClientConfig(client_id="partner", redirect_uris=("https://app.example/cb",))
    app = create_app(replace(config, clients=(*config.clients, partner)), database_url=sqlite_url)
    client = Client(Browser(app), client_id="partner", redirect_uri="https://app.example/cb")
    assert client.authorize().status_code == 303
    for near_miss in (
        "https://app.example:8443/cb",
        "https://app.example/cb/",
        "http://app.example/cb",
    ):
        assert client.authorize(redirect_uri=near_miss).status_code == 400


def _error(response: object) -> dict[str, str]:
    location = response.location  # type: ignore[attr-defined]
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert location.startswith("http://127.0.0.1:8765/callback?")
    return query_of(location)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # defaults to plain: refused
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"max_age": "ten"}, "invalid_request"),
        ({"claims": "{not json"}, "invalid_request"),
        ({"claims": '["a"]'}, "invalid_request"),
        (
            {"claims": '{"id_token": {"acr": {"essential": true, "values": [1]}}}'},
            "invalid_request",
        ),
        ({"prompt": "none login"}, "invalid_request"),
    ],
)
def test_invalid_request_goes_back_to_the_client_with_state_and_iss(
    cli: Client, params: dict[str, str | None], error: str
) -> None:
    q = _error(cli.authorize(**params))  # type: ignore[arg-type]
    assert q["error"] == error
    assert q["state"] == cli.state
    assert q["iss"] == ISSUER
    assert q["error_description"]


def test_repeated_parameter_is_invalid_request(cli: Client) -> None:
    params = cli.authorize_params()
    query = "&".join(f"{k}={v}" for k, v in params.items()) + "&scope=openid"
    q = _error(cli.browser.get(f"/authorize?{query.replace('://', '%3A%2F%2F')}"))
    assert q["error"] == "invalid_request"
    assert "scope" in q["error_description"]


def test_post_to_the_authorization_endpoint_works_like_get(cli: Client) -> None:
    # OIDC Core §3.1.2.1: the authorization endpoint MUST support GET and POST.
    response = cli.browser.http.post("/authorize", data=cli.authorize_params())
    assert response.status_code == 303
    assert response.location.startswith("/interaction/")


def test_a_form_posted_request_gets_its_error_redirect_as_303(cli: Client) -> None:
    """RFC 9700 §4.12: a redirect answering a POST is a 303 (the same request by GET gets
    Authlib's 302), so the browser never re-posts the form to the client."""
    params = cli.authorize_params(prompt="none")  # no session: login_required
    posted = cli.browser.http.post("/authorize", data=params)
    assert posted.status_code == 303
    assert query_of(posted.location)["error"] == "login_required"
    got = cli.browser.get("/authorize", query_string=params)
    assert got.status_code == 302
    assert query_of(got.location)["error"] == "login_required"


def test_state_and_iss_come_back_with_the_code(cli: Client) -> None:
    callback = cli.sign_in()
    assert callback["state"] == cli.state
    assert callback["iss"] == ISSUER
    assert set(callback) == {"code", "state", "iss"}


def test_scope_outside_the_clients_allowance_is_dropped(cli: Client) -> None:
    tokens = cli.tokens(scope="openid accounts:read")
    assert tokens["scope"] == "openid"


def test_redirect_uri_is_required(cli: Client) -> None:
    params = cli.authorize_params()
    del params["redirect_uri"]
    response = cli.browser.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert response.location is None


def test_interaction_page_from_another_browser_is_refused(sqlite_app: Flask) -> None:
    alice = Client(Browser(sqlite_app))
    location = alice.authorize().location
    mallory = Browser(sqlite_app)
    response = mallory.get(location)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_finished_interaction_cannot_be_replayed(cli: Client) -> None:
    start = cli.authorize()
    cli.browser.login_through(start)
    again = cli.browser.get(start.location)
    assert again.status_code == 400
