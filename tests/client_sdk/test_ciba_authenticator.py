"""``CibaAuthenticator`` and the CIBA protocol steps (CIBA Core §7.1, §7.3, §10.1, §11, §13)
against scripted provider answers: what it sends, how it waits, what each answer turns into. No
sockets, no real sleep: the sleep records the waits and moves a fake clock."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc.jwk import RSAKey

from client_sdk import (
    BackchannelDenied,
    BackchannelError,
    BackchannelExpired,
    ChallengeParseError,
    CibaAuthenticator,
    ConfigurationError,
    OIDCClient,
    ProviderError,
    Requirement,
    StepUpFailed,
    find_step_up_challenge,
)
from client_sdk.authenticators import BackchannelLogin
from client_sdk.ciba import CIBA_GRANT_TYPE, parse_backchannel_response
from client_sdk.flow import ApiReply, Driver, requirement_for
from client_sdk.protocol import HttpRequest, HttpResponse, ProviderMetadata

from .sdk_fakes import CLIENT_ID, ISSUER, Clock, FakeProvider, discovery_document

METADATA = ProviderMetadata(
    issuer="https://op.example",
    authorization_endpoint="https://op.example/authorize",
    token_endpoint="https://op.example/token",
    jwks_uri="https://op.example/jwks",
    backchannel_authentication_endpoint="https://op.example/backchannel",
    backchannel_token_delivery_modes=("poll",),
)
PAYMENT = [{"amount": "1500.00", "currency": "EUR", "payee": "acc_b", "type": "payment"}]
TOKENS = {"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": "x.y.z"}


def answer(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def pending(error: str = "authorization_pending") -> HttpResponse:
    return answer(400, {"error": error})


class Script:
    """The provider: the backchannel answer, then one answer per poll; records the requests."""

    def __init__(self, start: HttpResponse, *polls: HttpResponse) -> None:
        self.start = start
        self.polls = list(polls)
        self.sent: list[tuple[str, HttpRequest]] = []

    def __call__(self, request: HttpRequest, purpose: str) -> HttpResponse:
        self.sent.append((purpose, request))
        return self.start if purpose == "backchannel" else self.polls.pop(0)

    def form(self, i: int) -> dict[str, str]:
        body = self.sent[i][1].body or b""
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}


class Time:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def started(**more: Any) -> HttpResponse:
    return answer(200, {"auth_req_id": "req-1", "expires_in": 120, "interval": 2, **more})


def run(script: Script, time: Time, requirement: Requirement | None = None, **kw: Any) -> Any:
    authenticator = CibaAuthenticator(
        login_hint=kw.pop("login_hint", "alice"), sleep=time.sleep, clock=lambda: time.now, **kw
    )
    login = BackchannelLogin(METADATA, "bank-payments", "s3cret", "openid profile",
                             requirement or Requirement(), None, script)  # fmt: skip
    return authenticator.backchannel(login)


def test_the_request_carries_the_hint_message_level_and_transaction() -> None:
    script = Script(started(), pending(), answer(200, TOKENS))
    time = Time()
    details = json.dumps(PAYMENT, sort_keys=True, separators=(",", ":"))
    requirement = Requirement(("urn:stepup:loa:2",), 300, ("payments",), None, details)
    tokens = run(script, time, requirement, binding_message="W4SCT", requested_expiry=120)
    assert tokens.access_token == "at"
    purpose, first = script.sent[0]
    assert (purpose, first.method, first.url) == (
        "backchannel",
        "POST",
        METADATA.backchannel_authentication_endpoint,
    )
    # §7.1: client authentication as at the token endpoint (client_secret_basic by default).
    basic = base64.b64encode(b"bank-payments:s3cret").decode()
    assert first.headers["Authorization"] == f"Basic {basic}"
    assert script.form(0) == {
        "scope": "openid profile payments", "login_hint": "alice", "binding_message": "W4SCT",
        "acr_values": "urn:stepup:loa:2", "authorization_details": details,
        "requested_expiry": "120",
    }  # fmt: skip
    assert script.form(1) == {"grant_type": CIBA_GRANT_TYPE, "auth_req_id": "req-1"}
    assert script.sent[1][1].url == METADATA.token_endpoint
    assert time.waits == [2, 2]  # the interval before each poll


def test_an_id_token_hint_instead_of_a_login_hint() -> None:
    script = Script(started(), answer(200, TOKENS))
    run(script, Time(), login_hint=None, id_token_hint="the.id.token")
    form = script.form(0)
    assert form["id_token_hint"] == "the.id.token"
    assert "login_hint" not in form


@pytest.mark.parametrize("hints", [{}, {"login_hint": "a", "id_token_hint": "t"}])
def test_exactly_one_hint(hints: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="exactly one of login_hint and id_token_hint"):
        CibaAuthenticator(**hints)


def test_without_an_interval_the_client_waits_five_seconds() -> None:
    # §7.3: "If no value is provided, clients MUST use 5 as the default value."
    script = Script(answer(200, {"auth_req_id": "r", "expires_in": 60}), pending(),
                    answer(200, TOKENS))  # fmt: skip
    time = Time()
    run(script, time)
    assert time.waits == [5, 5]


def test_slow_down_adds_five_seconds_for_every_later_poll() -> None:
    script = Script(started(), pending(), pending("slow_down"), pending(), pending("slow_down"),
                    answer(200, TOKENS))  # fmt: skip
    time = Time()
    run(script, time)
    assert time.waits == [2, 2, 7, 7, 12]


def test_denied_and_expired_are_typed() -> None:
    with pytest.raises(BackchannelDenied) as denied:
        run(Script(started(), pending(), pending("access_denied")), Time())
    assert (denied.value.error, denied.value.status_code, denied.value.auth_req_id) == (
        "access_denied", 400, "req-1",
    )  # fmt: skip
    with pytest.raises(BackchannelExpired) as expired:
        run(Script(started(), pending("expired_token")), Time())
    assert expired.value.error == "expired_token"


def test_the_client_gives_up_when_expires_in_has_passed() -> None:
    # A provider that says "pending" for ever: the SDK stops at expires_in on its own clock.
    script = Script(started(expires_in=10), *[pending()] * 20)
    time = Time()
    with pytest.raises(BackchannelExpired, match="within 10 seconds"):
        run(script, time)
    assert time.waits == [2] * 5


def test_any_other_poll_error_is_a_backchannel_error() -> None:
    with pytest.raises(BackchannelError) as caught:
        run(Script(started(), answer(400, {"error": "invalid_grant"})), Time())
    assert type(caught.value) is BackchannelError
    assert (caught.value.error, caught.value.status_code) == ("invalid_grant", 400)


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, "unknown_user_id"), (400, "invalid_authorization_details"), (401, "invalid_client")],
)
def test_a_refused_request_names_the_providers_error(status: int, error: str) -> None:
    with pytest.raises(BackchannelError) as caught:
        parse_backchannel_response(answer(status, {"error": error, "error_description": "why"}))
    assert (caught.value.error, caught.value.status_code) == (error, status)
    assert str(caught.value).endswith(f"{status}: {error} (why)")


@pytest.mark.parametrize(
    "body", [{}, {"auth_req_id": "r"}, {"auth_req_id": "", "expires_in": 5},
             {"auth_req_id": "r", "expires_in": 0}, {"auth_req_id": 5, "expires_in": 5}, []],
)  # fmt: skip
def test_an_acknowledgement_without_what_is_required_is_a_provider_error(body: Any) -> None:
    with pytest.raises(ProviderError, match="lacks auth_req_id or expires_in"):
        parse_backchannel_response(answer(200, body))


def test_a_provider_without_ciba_or_a_public_client_is_a_configuration_error() -> None:
    login = BackchannelLogin(
        ProviderMetadata("https://op", "https://op/a", "https://op/t", "https://op/j"),
        "c", "s", "openid", Requirement(), None, Script(started()),
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="no backchannel_authentication_endpoint"):
        CibaAuthenticator(login_hint="a").backchannel(login)
    public = BackchannelLogin(METADATA, "c", None, "openid", Requirement(), None, Script(started()))
    with pytest.raises(ConfigurationError, match="confidential client"):
        CibaAuthenticator(login_hint="a").backchannel(public)


# --- the challenge's authorization_details --------------------------------------------------------


def header(details: str) -> str:
    return ('Bearer error="insufficient_user_authentication", acr_values="urn:stepup:loa:2", '
            f'max_age=300, authorization_details="{details}"')  # fmt: skip


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_the_challenge_names_the_transaction_and_the_new_requirement_holds_it() -> None:
    challenge = find_step_up_challenge(header(b64(PAYMENT)))
    assert challenge is not None
    assert challenge.authorization_details == PAYMENT
    requirement = requirement_for(challenge)
    assert requirement.authorization_details == json.dumps(
        PAYMENT, sort_keys=True, separators=(",", ":")
    )
    assert (requirement.acr_values, requirement.max_age) == (("urn:stepup:loa:2",), 300)
    plain = find_step_up_challenge('Bearer error="insufficient_user_authentication"')
    assert plain is not None
    assert plain.authorization_details is None


@pytest.mark.parametrize(
    "value", ["not base64!", b64({"type": "payment"}), b64([]), b64(["payment"]), "e30", "A",
              "x" * 9000],
)  # fmt: skip
def test_a_malformed_authorization_details_value_is_a_parse_error(value: str) -> None:
    with pytest.raises(ChallengeParseError, match="authorization_details"):
        find_step_up_challenge(header(value))


# --- StepUpAuth's core with CIBA: one step-up, one retry, never a loop ----------------------------


@dataclass
class CibaProvider(FakeProvider):
    """The fake provider with a backchannel endpoint whose user approves at once, at loa:2."""

    backchannel_forms: list[dict[str, str]] = field(default_factory=list)
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.url).path
        form = {k: v[0] for k, v in parse_qs((request.body or b"").decode()).items()}
        if path == "/.well-known/openid-configuration":
            document = {**discovery_document(),
                        "backchannel_authentication_endpoint": f"{ISSUER}/backchannel",
                        "backchannel_token_delivery_modes_supported": ["poll"]}  # fmt: skip
            return answer(200, document)
        if path == "/backchannel":
            self.backchannel_forms.append(form)
            auth_req_id = f"req-{len(self.backchannel_forms)}"
            self._pending[auth_req_id] = {
                "sub": "alice-sub", "acr": "urn:stepup:loa:2", "scope": form["scope"],
                "auth_time": int(self.clock()),
            }  # fmt: skip
            return answer(200, {"auth_req_id": auth_req_id, "expires_in": 120, "interval": 5})
        if path == "/token" and form.get("grant_type") == CIBA_GRANT_TYPE:
            grant = self._pending.pop(form["auth_req_id"], None)
            if grant is None:
                return answer(400, {"error": "invalid_grant"})
            return answer(200, self._issue(grant, None))
        return super().__call__(request)


def ciba_client(signing_key: RSAKey, clock: Clock) -> tuple[CibaProvider, OIDCClient]:
    """A provider that approves every backchannel request, and a client of it that waits on a
    fake clock (no real sleeping)."""
    provider = CibaProvider(key=signing_key, clock=clock)
    time = Time()
    client = OIDCClient(
        ISSUER, CLIENT_ID, client_secret="s3cret", transport=provider,
        authenticator=CibaAuthenticator(login_hint="alice", sleep=time.sleep,
                                        clock=lambda: time.now),
        clock=clock,
    )  # fmt: skip
    return provider, client


def test_a_transaction_challenged_again_after_the_approval_fails_typed_without_a_loop(
    signing_key: RSAKey, clock: Clock
) -> None:
    provider, client = ciba_client(signing_key, clock)
    challenge = header(b64(PAYMENT))
    driver = Driver(client, "POST", "https://api.example/transfers")
    first = driver.start()  # the everyday token: a first approval
    assert first.attempt == 1
    second = driver.feed(ApiReply(401, (challenge,)))
    assert second is not None
    assert second.attempt == 2
    assert second.reason == "after_step_up"
    with pytest.raises(StepUpFailed) as caught:
        driver.feed(ApiReply(401, (challenge,)))
    assert [c.authorization_details for c in caught.value.challenges] == [PAYMENT, PAYMENT]
    # Two backchannel requests — the sign-in, then the payment — and no third.
    assert len(provider.backchannel_forms) == 2
    asked = provider.backchannel_forms[1]
    assert asked["authorization_details"] == json.dumps(
        PAYMENT, sort_keys=True, separators=(",", ":")
    )
    assert asked["acr_values"] == "urn:stepup:loa:2"
    assert "authorization_details" not in provider.backchannel_forms[0]


def test_the_same_transaction_again_is_approved_again_and_the_loop_guard_still_holds(
    signing_key: RSAKey, clock: Clock
) -> None:
    """The bank spends an approval at the transfer it pays: the same payment made again (same
    amount, same payee) gets the same challenge, and the SDK asks for a new approval instead of
    resending the spent one. The approval still counts as the one step-up of its request."""
    provider, client = ciba_client(signing_key, clock)
    challenge = header(b64(PAYMENT))
    paid_with: list[str | None] = []
    for _ in range(2):
        driver = Driver(client, "POST", "https://api.example/transfers")
        everyday = driver.start()
        retry = driver.feed(ApiReply(401, (challenge,)))
        assert retry is not None
        assert (retry.attempt, retry.reason) == (2, "after_step_up")
        assert retry.authorization != everyday.authorization
        paid_with.append(retry.authorization)
        assert driver.feed(ApiReply(201)) is None
    assert paid_with[0] != paid_with[1]
    # The sign-in, then one approval per payment.
    assert len(provider.backchannel_forms) == 3
    assert [f.get("authorization_details") for f in provider.backchannel_forms] == [
        None, json.dumps(PAYMENT, sort_keys=True, separators=(",", ":")),
        json.dumps(PAYMENT, sort_keys=True, separators=(",", ":")),
    ]  # fmt: skip

    # A third time, the fresh approval is challenged too: StepUpFailed, no further request.
    driver = Driver(client, "POST", "https://api.example/transfers")
    driver.start()
    retry = driver.feed(ApiReply(401, (challenge,)))
    assert retry is not None
    assert retry.authorization not in paid_with
    with pytest.raises(StepUpFailed):
        driver.feed(ApiReply(401, (challenge,)))
    assert len(provider.backchannel_forms) == 4
