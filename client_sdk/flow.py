"""The step-up core: one pure step machine that both HTTP adapters drive.

Like httpx's ``Auth.auth_flow``, :func:`step_up_flow` is a generator with no I/O. It yields
actions and receives their results:

- :class:`Send` — send the API request with this token; the result is an :class:`ApiReply`;
- :class:`GetToken` — a token for this route (cached, refreshed or from a first login);
- :class:`Refresh` — refresh this rejected token; the result is a :class:`TokenSet` or ``None``;
- :class:`StepUp` — obtain a token for this requirement (RFC 9470 §4-5); a :class:`TokenSet`.

Its rules (DESIGN "semantics"; RFC 9470 §4-5; RFC 6750 §3.1):

1. ``401`` with ``error="invalid_token"``: refresh once if the token has a refresh token, resend.
2. ``401`` with ``error="insufficient_user_authentication"``: step up with the challenge's
   ``acr_values`` and ``max_age`` and resend once. Never a refresh to answer it: refresh never
   upgrades the authentication (OIDC Core §12.2 keeps ``acr`` and ``auth_time``).
3. A challenge to the stepped-up token raises :class:`StepUpFailed` carrying both challenges.

So a request is sent at most three times (initial, after refresh, after step-up): never a loop.
:class:`Driver` runs the machine against a :class:`TokenSource` and leaves only :class:`Send` to
the adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from client_sdk.challenges import StepUpChallenge, find_step_up_challenge, parse_www_authenticate
from client_sdk.errors import ChallengeParseError, StepUpFailed
from client_sdk.hooks import ApiRequestSent, ApiResponseReceived, Event
from client_sdk.protocol import Requirement
from client_sdk.tokens import TokenSet

__all__ = [
    "Action",
    "ApiReply",
    "Driver",
    "GetToken",
    "Refresh",
    "Route",
    "Send",
    "StepUp",
    "TokenSource",
    "requirement_for",
    "resolve",
    "step_up_flow",
]


@dataclass(frozen=True)
class Route:
    """Where a request goes: the SDK remembers which requirement each route asked for."""

    method: str
    origin: str
    path: str

    @classmethod
    def of(cls, method: str, url: str) -> Route:
        parts = urlsplit(url)
        return cls(method.upper(), f"{parts.scheme}://{parts.netloc}".lower(), parts.path or "/")


@dataclass(frozen=True)
class ApiReply:
    """What the core needs of an API response: its status and ``WWW-Authenticate`` values."""

    status: int
    www_authenticate: tuple[str, ...] = ()


@dataclass(frozen=True)
class Send:
    token: TokenSet
    attempt: int
    reason: str

    @property
    def authorization(self) -> str:
        return self.token.authorization()


@dataclass(frozen=True)
class GetToken:
    route: Route


@dataclass(frozen=True)
class Refresh:
    rejected: TokenSet


@dataclass(frozen=True)
class StepUp:
    route: Route
    challenge: StepUpChallenge
    requirement: Requirement
    rejected: TokenSet


Action = Send | GetToken | Refresh | StepUp
Flow = Generator[Action, "TokenSet | ApiReply | None", None]


def requirement_for(challenge: StepUpChallenge) -> Requirement:
    """RFC 9470 §4: the new authorization request carries the challenge's ``acr_values`` and
    ``max_age``, when present."""
    return Requirement(tuple(challenge.acr_values), challenge.max_age)


def _step_up_challenge(reply: ApiReply) -> StepUpChallenge | None:
    # RFC 9470 §3: the challenge comes with HTTP 401.
    if reply.status != 401 or not reply.www_authenticate:
        return None
    try:
        return find_step_up_challenge(list(reply.www_authenticate))
    except ChallengeParseError:
        return None  # not a challenge the SDK can act on: the caller gets the 401 as it came


def _is_invalid_token(reply: ApiReply) -> bool:
    if reply.status != 401 or not reply.www_authenticate:
        return False
    try:
        challenges = parse_www_authenticate(list(reply.www_authenticate))
    except ChallengeParseError:
        return False
    return any(
        c.scheme in ("bearer", "dpop") and c.params.get("error") == "invalid_token"
        for c in challenges
    )


def _token(value: TokenSet | ApiReply | None) -> TokenSet:
    assert isinstance(value, TokenSet), f"expected a TokenSet, got {value!r}"
    return value


def _reply(value: TokenSet | ApiReply | None) -> ApiReply:
    assert isinstance(value, ApiReply), f"expected an ApiReply, got {value!r}"
    return value


def step_up_flow(route: Route) -> Flow:
    """The step machine for one API request. Returns when the last reply is final."""
    token = _token((yield GetToken(route)))
    reply = _reply((yield Send(token, 1, "initial")))
    attempt = 1

    if _is_invalid_token(reply) and token.refresh_token is not None:
        refreshed = yield Refresh(token)
        if refreshed is not None:
            token = _token(refreshed)
            attempt += 1
            reply = _reply((yield Send(token, attempt, "after_refresh")))

    first = _step_up_challenge(reply)
    if first is None:
        return
    token = _token((yield StepUp(route, first, requirement_for(first), token)))
    attempt += 1
    reply = _reply((yield Send(token, attempt, "after_step_up")))

    second = _step_up_challenge(reply)
    if second is not None:
        # RFC 9470 §4 lets the client step up; nothing in it makes a second round useful: the
        # provider already answered this requirement. One retry, then a typed error.
        raise StepUpFailed(
            f"the API challenged the stepped-up token again ({_describe(second)}); "
            f"the first challenge asked for {_describe(first)}",
            challenges=(first, second),
        )


def _describe(challenge: StepUpChallenge) -> str:
    return requirement_for(challenge).describe()


class TokenSource(Protocol):
    """What resolves the core's token actions (the SDK's :class:`~client_sdk.oidc.OIDCClient`)."""

    def token_for(self, route: Route) -> TokenSet: ...

    def refresh(self, rejected: TokenSet) -> TokenSet | None: ...

    def step_up(
        self, route: Route, challenge: StepUpChallenge, requirement: Requirement, rejected: TokenSet
    ) -> TokenSet: ...


def resolve(source: TokenSource, action: GetToken | Refresh | StepUp) -> TokenSet | None:
    if isinstance(action, GetToken):
        return source.token_for(action.route)
    if isinstance(action, Refresh):
        return source.refresh(action.rejected)
    return source.step_up(action.route, action.challenge, action.requirement, action.rejected)


class Driver:
    """Runs :func:`step_up_flow` for one request; the adapter only performs :class:`Send`.

    ``start()`` returns the first :class:`Send`; ``feed(reply)`` returns the next one, or ``None``
    when the reply just fed is the final response.
    """

    def __init__(
        self,
        source: TokenSource,
        method: str,
        url: str,
        emit: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self._source = source
        self._method = method.upper()
        self._url = url
        self._emit = emit
        self._flow = step_up_flow(Route.of(method, url))

    def start(self) -> Send:
        send = self._advance(None, first=True)
        assert send is not None
        return send

    def feed(self, reply: ApiReply) -> Send | None:
        self._emit(
            ApiResponseReceived(self._method, self._url, reply.status, reply.www_authenticate)
        )
        return self._advance(reply)

    def _advance(self, value: TokenSet | ApiReply | None, *, first: bool = False) -> Send | None:
        try:
            action = next(self._flow) if first else self._flow.send(value)
            while not isinstance(action, Send):
                action = self._flow.send(resolve(self._source, action))
        except StopIteration:
            return None
        self._emit(
            ApiRequestSent(self._method, self._url, action.attempt, action.reason, action.token.acr)
        )
        return action
