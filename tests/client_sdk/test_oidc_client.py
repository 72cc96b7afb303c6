"""OIDCClient against an in-memory provider: first login, step-up, reuse, refresh, failures."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from client_sdk.authenticators import RedirectAuthenticator
from client_sdk.challenges import StepUpChallenge
from client_sdk.errors import (
    AuthenticatorError,
    LevelNotReached,
    ProviderError,
    StepUpRequired,
    SubjectMismatch,
    UnmetAuthenticationRequirements,
)
from client_sdk.flow import Route
from client_sdk.hooks import (
    AuthorizationRequested,
    Event,
    ProviderExchange,
    StepUpChallenged,
    TokenReused,
    TokensIssued,
)
from client_sdk.oidc import OIDCClient
from client_sdk.protocol import PendingAuthorization, Requirement
from client_sdk.tokens import TokenSet

from .sdk_fakes import CLIENT_ID, ISSUER, Clock, FakeProvider, Login

LOA2 = Requirement(("urn:stepup:loa:2",), 300)
TRANSFERS = Route.of("POST", "https://api.example/transfers")
ACCOUNTS = Route.of("GET", "https://api.example/accounts")
CHALLENGE = StepUpChallenge(scheme="bearer", acr_values=["urn:stepup:loa:2"], max_age=300)


def make_client(provider: FakeProvider, clock: Clock, **kwargs: object) -> OIDCClient:
    args: dict[str, object] = {"authenticator": provider, "transport": provider, "clock": clock}
    args.update(kwargs)
    return OIDCClient(ISSUER, CLIENT_ID, **args)  # type: ignore[arg-type]


def test_first_login_then_step_up_then_reuse(provider: FakeProvider, clock: Clock) -> None:
    events: list[Event] = []
    client = make_client(provider, clock, hooks=[events.append])
    everyday = client.token_for(TRANSFERS)
    assert everyday.acr == "urn:stepup:loa:1"
    assert provider.authorizations[0].get("acr_values") is None

    provider.logins.append(Login(acr="urn:stepup:loa:2"))
    stepped = client.step_up(TRANSFERS, CHALLENGE, LOA2, everyday)
    assert stepped.acr == "urn:stepup:loa:2"
    step_up_params = provider.authorizations[1]
    assert (step_up_params["acr_values"], step_up_params["max_age"]) == ("urn:stepup:loa:2", "300")

    # The route is remembered: the next transfer goes out with the stepped-up token...
    assert client.token_for(TRANSFERS) is stepped
    # ...while other routes keep the everyday one, which was not thrown away.
    assert client.token_for(ACCOUNTS) is everyday
    assert len(provider.authorizations) == 2

    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ProviderExchange",  # discovery
        "AuthorizationRequested",
        "ProviderExchange",  # token
        "ProviderExchange",  # jwks
        "TokensIssued",
        "StepUpChallenged",
        "AuthorizationRequested",
        "ProviderExchange",  # token (the JWKS is cached)
        "TokensIssued",
        "TokenReused",
    ]
    assert [e.purpose for e in events if isinstance(e, ProviderExchange)] == [
        "discovery",
        "token",
        "jwks",
        "token",
    ]
    requested = [e for e in events if isinstance(e, AuthorizationRequested)][1]
    assert requested.params["acr_values"] == "urn:stepup:loa:2"
    assert requested.requirement == LOA2
    issued = [e for e in events if isinstance(e, TokensIssued)][1]
    assert issued.id_token_claims["acr"] == "urn:stepup:loa:2"
    assert issued.id_token_claims["amr"] == ["pwd", "otp"]
    assert issued.grant == "authorization_code"
    assert [e for e in events if isinstance(e, StepUpChallenged)] == [
        StepUpChallenged(CHALLENGE, LOA2)
    ]
    assert [e for e in events if isinstance(e, TokenReused)] == [
        TokenReused(LOA2, "urn:stepup:loa:2")
    ]


def test_stepped_up_token_is_not_sent_after_max_age(provider: FakeProvider, clock: Clock) -> None:
    client = make_client(provider, clock)
    everyday = client.token_for(TRANSFERS)
    provider.logins.append(Login(acr="urn:stepup:loa:2"))
    client.step_up(TRANSFERS, CHALLENGE, LOA2, everyday)
    clock.now += 301
    assert client.token_for(TRANSFERS).access_token == everyday.access_token


def test_provider_below_the_level_raises_level_not_reached(
    provider: FakeProvider, clock: Clock
) -> None:
    client = make_client(provider, clock)
    everyday = client.token_for(TRANSFERS)
    provider.logins.append(Login(acr="urn:stepup:loa:1"))
    with pytest.raises(LevelNotReached):
        client.step_up(TRANSFERS, CHALLENGE, LOA2, everyday)
    assert client.cache.get(LOA2) is None


def test_essential_acr_and_unmet_requirements(provider: FakeProvider, clock: Clock) -> None:
    client = make_client(provider, clock, essential_acr=True)
    everyday = client.token_for(TRANSFERS)
    assert "claims" not in provider.authorizations[0]
    provider.logins.append(Login(error="unmet_authentication_requirements"))
    with pytest.raises(UnmetAuthenticationRequirements):
        client.step_up(TRANSFERS, CHALLENGE, LOA2, everyday)
    assert provider.authorizations[1]["claims"] == (
        '{"id_token":{"acr":{"essential":true,"values":["urn:stepup:loa:2"]}}}'
    )


def test_step_up_by_another_user_is_refused(provider: FakeProvider, clock: Clock) -> None:
    client = make_client(provider, clock)
    everyday = client.token_for(TRANSFERS)
    provider.logins.append(Login(acr="urn:stepup:loa:2", sub="mallory"))
    with pytest.raises(SubjectMismatch):
        client.step_up(TRANSFERS, CHALLENGE, LOA2, everyday)


def test_concurrent_step_ups_for_one_challenge_cause_one_authorization(
    provider: FakeProvider, clock: Clock
) -> None:
    client = make_client(provider, clock)
    everyday = client.token_for(TRANSFERS)
    provider.default_login = Login(acr="urn:stepup:loa:2")
    callers = 6
    start = threading.Barrier(callers)
    results: list[str] = []

    def call() -> None:
        start.wait(timeout=10)
        results.append(client.step_up(TRANSFERS, CHALLENGE, LOA2, everyday).access_token)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(provider.authorizations) == 2  # the first login and one step-up
    assert len(set(results)) == 1
    assert len(results) == callers


def test_refresh_rotates_the_refresh_token_and_keeps_the_level(
    provider: FakeProvider, clock: Clock
) -> None:
    events: list[Event] = []
    client = make_client(provider, clock, scope="offline_access", hooks=[events.append])
    first = client.token_for(ACCOUNTS)
    assert first.refresh_token == "rt-2"
    assert provider.authorizations[0]["scope"] == "openid offline_access"
    clock.now += 60
    refreshed = client.refresh(first)
    assert refreshed is not None
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token == "rt-3"
    assert refreshed.auth_time == first.auth_time
    assert client.cache.get(Requirement()) is refreshed
    assert [e.grant for e in events if isinstance(e, TokensIssued)] == [
        "authorization_code",
        "refresh_token",
    ]


def test_failed_refresh_returns_none_and_forgets_the_token(
    provider: FakeProvider, clock: Clock
) -> None:
    client = make_client(provider, clock, scope="openid offline_access")
    first = client.token_for(ACCOUNTS)
    provider.refresh_error = "invalid_grant"
    assert client.refresh(first) is None
    assert client.cache.get(Requirement()) is None


def test_expired_everyday_token_is_refreshed_before_sending(
    provider: FakeProvider, clock: Clock
) -> None:
    client = make_client(provider, clock, scope="openid offline_access")
    first = client.token_for(ACCOUNTS)
    clock.now += 3600
    second = client.token_for(ACCOUNTS)
    assert second.access_token != first.access_token
    assert len(provider.authorizations) == 1  # refreshed, not a new login


def test_token_for_without_refresh_token_logs_in_again_when_expired(
    provider: FakeProvider, clock: Clock
) -> None:
    client = make_client(provider, clock)
    client.token_for(ACCOUNTS)
    clock.now += 3600
    client.token_for(ACCOUNTS)
    assert len(provider.authorizations) == 2


def test_jwks_is_refetched_once_on_an_unknown_kid(provider: FakeProvider, clock: Clock) -> None:
    from joserfc.jwk import RSAKey

    client = make_client(provider, clock)
    client.token_for(ACCOUNTS)
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2"})  # the provider rotates
    clock.now += 3600
    client.token_for(ACCOUNTS)
    paths = [urlsplit(r.url).path for r in provider.requests]
    assert paths.count("/jwks") == 2


def test_discovery_failure_is_a_provider_error(clock: Clock) -> None:
    from client_sdk.protocol import HttpResponse

    client = OIDCClient(
        ISSUER,
        CLIENT_ID,
        authenticator=RedirectAuthenticator("https://app.example/cb"),
        transport=lambda request: HttpResponse(503, {}, b"down"),
        clock=clock,
    )
    with pytest.raises(ProviderError) as caught:
        client.login()
    assert caught.value.status_code == 503
    assert str(caught.value) == (
        "discovery at https://op.example/.well-known/openid-configuration answered 503, "
        "not a JSON object"
    )


def test_authenticator_that_never_builds_a_request_is_an_error(
    provider: FakeProvider, clock: Clock
) -> None:
    class Lazy:
        def authenticate(self, login: object) -> str:
            return "http://127.0.0.1/callback?code=x"

    client = make_client(provider, clock, authenticator=Lazy())
    with pytest.raises(AuthenticatorError, match="without an authorization request"):
        client.login()


def test_web_app_flow_with_step_up_required(provider: FakeProvider, clock: Clock) -> None:
    client = make_client(
        provider,
        clock,
        authenticator=RedirectAuthenticator(),
        redirect_uri="https://app.example/cb",
    )
    client.cache.put(Requirement(), TokenSet("at-0", claims={"sub": "alice-sub"}))
    with pytest.raises(StepUpRequired) as caught:
        client.step_up(TRANSFERS, CHALLENGE, LOA2, TokenSet("at-0", claims={"sub": "alice-sub"}))
    exc = caught.value
    assert exc.requirement == LOA2
    assert exc.challenge == CHALLENGE
    query = parse_qs(urlsplit(exc.authorization_url).query)
    assert query["redirect_uri"] == ["https://app.example/cb"]
    assert query["state"] == [exc.pending.state]
    assert exc.pending.previous_sub == "alice-sub"

    # The app stores the pending request, sends the user off, and comes back on its callback:
    saved = exc.pending.to_dict()
    provider.logins.append(Login(acr="urn:stepup:loa:2"))
    callback = provider_login_for(provider, exc.authorization_url, "https://app.example/cb")
    tokens = client.complete_authorization(callback, PendingAuthorization.from_dict(saved))
    assert tokens.acr == "urn:stepup:loa:2"
    assert client.token_for(TRANSFERS) is tokens


def provider_login_for(provider: FakeProvider, url: str, redirect_uri: str) -> str:
    """Let the fake provider answer an authorization URL built elsewhere."""

    class Replay:
        def __init__(self) -> None:
            self.redirect_uri = redirect_uri
            self.emit = lambda event: None

        def authorization_url(self, uri: str) -> str:
            return url

    return provider.authenticate(Replay())  # type: ignore[arg-type]
