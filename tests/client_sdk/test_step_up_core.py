"""The pure step-up core, driven by hand: tokens and API replies are plain values.

RFC 9470 §4-5 and the DESIGN semantics: refresh once on invalid_token, step up once on
insufficient_user_authentication, never refresh to answer a step-up, never loop.
"""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk.challenges import StepUpChallenge
from client_sdk.errors import StepUpFailed
from client_sdk.flow import (
    ApiReply,
    Driver,
    GetToken,
    Refresh,
    Route,
    Send,
    StepUp,
    requirement_for,
    step_up_flow,
)
from client_sdk.hooks import ApiRequestSent, ApiResponseReceived, Event
from client_sdk.protocol import Requirement
from client_sdk.tokens import TokenSet

ROUTE = Route.of("post", "https://API.example:8443/transfers?x=1")
EVERYDAY = TokenSet("at-1", refresh_token="rt-1", claims={"acr": "urn:stepup:loa:1"})
STEPPED = TokenSet("at-2", claims={"acr": "urn:stepup:loa:2"})
CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A transfer needs a one-time code", '
    'acr_values="urn:stepup:loa:2", max_age=300'
)
INVALID = 'Bearer error="invalid_token", error_description="expired"'


def test_route_normalises_method_and_origin_and_drops_the_query() -> None:
    assert Route("POST", "https://api.example:8443", "/transfers") == ROUTE


def test_requirement_comes_from_the_challenge() -> None:
    challenge = StepUpChallenge(scheme="bearer", acr_values=["a", "b"], max_age=60)
    assert requirement_for(challenge) == Requirement(("a", "b"), 60)


def test_success_needs_one_send() -> None:
    flow = step_up_flow(ROUTE)
    assert next(flow) == GetToken(ROUTE)
    assert flow.send(EVERYDAY) == Send(EVERYDAY, 1, "initial")
    with pytest.raises(StopIteration):
        flow.send(ApiReply(200))


def test_step_up_then_one_retry() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(EVERYDAY)
    action = flow.send(ApiReply(401, (CHALLENGE,)))
    assert isinstance(action, StepUp)
    assert action.requirement == Requirement(("urn:stepup:loa:2",), 300)
    assert action.rejected is EVERYDAY
    assert action.route == ROUTE
    assert action.challenge.error_description == "A transfer needs a one-time code"
    assert flow.send(STEPPED) == Send(STEPPED, 2, "after_step_up")
    with pytest.raises(StopIteration):
        flow.send(ApiReply(201))


def test_a_second_challenge_raises_step_up_failed_with_both_challenges() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(EVERYDAY)
    flow.send(ApiReply(401, (CHALLENGE,)))
    flow.send(STEPPED)
    again = 'Bearer error="insufficient_user_authentication", acr_values="urn:stepup:loa:3"'
    with pytest.raises(StepUpFailed) as caught:
        flow.send(ApiReply(401, (again,)))
    first, second = caught.value.challenges
    assert (first.acr_values, first.max_age) == (["urn:stepup:loa:2"], 300)
    assert (second.acr_values, second.max_age) == (["urn:stepup:loa:3"], None)
    assert str(caught.value) == (
        "the API challenged the stepped-up token again (acr_values=urn:stepup:loa:3); "
        "the first challenge asked for acr_values=urn:stepup:loa:2, max_age=300"
    )


def test_invalid_token_is_refreshed_once() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(EVERYDAY)
    assert flow.send(ApiReply(401, (INVALID,))) == Refresh(EVERYDAY)
    refreshed = TokenSet("at-3", refresh_token="rt-2")
    assert flow.send(refreshed) == Send(refreshed, 2, "after_refresh")
    with pytest.raises(StopIteration):  # a second invalid_token is the caller's answer
        flow.send(ApiReply(401, (INVALID,)))


def test_invalid_token_without_refresh_token_is_returned() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(STEPPED)
    with pytest.raises(StopIteration):
        flow.send(ApiReply(401, (INVALID,)))


def test_refresh_that_fails_returns_the_401() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(EVERYDAY)
    flow.send(ApiReply(401, (INVALID,)))
    with pytest.raises(StopIteration):
        flow.send(None)


def test_a_step_up_challenge_is_never_answered_with_a_refresh() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(EVERYDAY)  # it has a refresh token
    assert isinstance(flow.send(ApiReply(401, (CHALLENGE,))), StepUp)


def test_refresh_then_step_up_bounds_the_request_at_three_sends() -> None:
    flow = step_up_flow(ROUTE)
    sends = 0
    action: Any = next(flow)
    replies = iter([ApiReply(401, (INVALID,)), ApiReply(401, (CHALLENGE,)), ApiReply(201)])
    while True:
        if isinstance(action, Send):
            sends += 1
            value: Any = next(replies)
        elif isinstance(action, Refresh):
            value = TokenSet("at-r", refresh_token="rt-9")
        else:
            value = EVERYDAY if isinstance(action, GetToken) else STEPPED
        try:
            action = flow.send(value)
        except StopIteration:
            break
    assert sends == 3


@pytest.mark.parametrize(
    "reply",
    [
        ApiReply(403, (CHALLENGE,)),  # RFC 9470 §3: the challenge comes with 401
        ApiReply(401, ()),
        ApiReply(401, ('Basic realm="x"',)),
        ApiReply(401, ('Bearer error="insufficient_user_authentication", max_age=soon',)),
        ApiReply(401, ("Bearer error=",)),
    ],
)
def test_replies_that_are_not_step_up_challenges_end_the_flow(reply: ApiReply) -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(STEPPED)
    with pytest.raises(StopIteration):
        flow.send(reply)


def test_dpop_scheme_challenge_is_honoured() -> None:
    flow = step_up_flow(ROUTE)
    next(flow)
    flow.send(EVERYDAY)
    dpop = 'DPoP algs="ES256", error="insufficient_user_authentication", acr_values="x"'
    action = flow.send(ApiReply(401, (dpop,)))
    assert isinstance(action, StepUp)
    assert action.requirement == Requirement(("x",))


class ScriptedSource:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def token_for(self, route: Route) -> TokenSet:
        self.calls.append(f"token_for {route.method} {route.path}")
        return EVERYDAY

    def refresh(self, rejected: TokenSet) -> TokenSet | None:
        self.calls.append(f"refresh {rejected.access_token}")
        return None

    def step_up(
        self, route: Route, challenge: StepUpChallenge, requirement: Requirement, rejected: TokenSet
    ) -> TokenSet:
        self.calls.append(f"step_up {requirement.describe()} rejecting {rejected.access_token}")
        return STEPPED


def test_driver_leaves_only_sends_to_the_adapter_and_emits_request_events() -> None:
    source = ScriptedSource()
    events: list[Event] = []
    driver = Driver(source, "post", "https://api.example/transfers", events.append)
    first = driver.start()
    assert first.authorization == "Bearer at-1"
    second = driver.feed(ApiReply(401, (CHALLENGE,)))
    assert second is not None
    assert second.authorization == "Bearer at-2"
    assert driver.feed(ApiReply(201)) is None
    assert source.calls == [
        "token_for POST /transfers",
        "step_up acr_values=urn:stepup:loa:2, max_age=300 rejecting at-1",
    ]
    url = "https://api.example/transfers"
    assert events == [
        ApiRequestSent("POST", url, 1, "initial", "urn:stepup:loa:1"),
        ApiResponseReceived("POST", url, 401, (CHALLENGE,)),
        ApiRequestSent("POST", url, 2, "after_step_up", "urn:stepup:loa:2"),
        ApiResponseReceived("POST", url, 201, ()),
    ]
