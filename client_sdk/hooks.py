"""Events an app can watch: pass ``hooks=[callback]`` and each step calls ``callback(event)``.

A narrated demo prints them; an app may log or count them. Events are frozen dataclasses; match on
their type. They never carry secrets the app does not already hold (no passwords, no one-time
codes, no code verifiers); they do carry decoded token claims. An exception raised by a hook
propagates: a hook that fails is a bug to see, not to hide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from client_sdk.challenges import StepUpChallenge
from client_sdk.protocol import Requirement

__all__ = [
    "ApiRequestSent",
    "ApiResponseReceived",
    "AuthorizationRequested",
    "Event",
    "FactorsRequested",
    "Hook",
    "ProviderExchange",
    "StepUpChallenged",
    "TokenReused",
    "TokensIssued",
    "WaitingForNextCode",
    "emit_all",
]


@dataclass(frozen=True)
class ApiRequestSent:
    """A request to the API is about to be sent. ``attempt`` is 1 to 4 (never more), or up to 7
    with DPoP, whose nonce retries count too.

    ``reason`` is ``"initial"``, ``"after_discovery"`` (the issuer was just learnt from the API's
    RFC 9728 metadata; the initial request went without a token, ``acr`` ``None``),
    ``"after_refresh"``, ``"after_step_up"``, or ``"dpop_nonce"`` (the API answered
    ``use_dpop_nonce``: the same token, a new proof with its nonce; RFC 9449 §9).
    """

    method: str
    url: str
    attempt: int
    reason: str
    acr: str | None


@dataclass(frozen=True)
class ApiResponseReceived:
    method: str
    url: str
    status: int
    www_authenticate: tuple[str, ...]


@dataclass(frozen=True)
class StepUpChallenged:
    """The API answered with a challenge the SDK answers by a new authorization for
    ``requirement``: RFC 9470, ``insufficient_scope`` or ``insufficient_claims``
    (``challenge.error`` says which)."""

    challenge: StepUpChallenge
    requirement: Requirement


@dataclass(frozen=True)
class AuthorizationRequested:
    """An authorization request was built; ``params`` are its query parameters (no secrets)."""

    url: str
    params: Mapping[str, str]
    requirement: Requirement


@dataclass(frozen=True)
class FactorsRequested:
    """A login page asked for factors (RFC 8176 names: ``pwd``, ``otp``).

    ``page_text`` is the prompt the user sees, one line each: the page's heading, the text its
    inputs are described by (on the Stepup provider: why, and the level asked for), the labels of
    the inputs to fill, and the error shown, if any. Not the whole page.
    """

    factors: tuple[str, ...]
    url: str
    page_text: str


@dataclass(frozen=True)
class WaitingForNextCode:
    """The headless authenticator waits ``seconds`` for the next TOTP step before sending a code.

    ``reason`` is ``"used"`` (it sent this step's code already) or ``"replayed"`` (the provider
    said this step's code was already used, e.g. by an earlier run of the same script).
    """

    seconds: float
    reason: str
    url: str


@dataclass(frozen=True)
class ProviderExchange:
    """One HTTP exchange with the provider: discovery, JWKS, token endpoint or a login page; or
    with the API, for its RFC 9728 metadata (``purpose`` ``"resource_metadata"``)."""

    method: str
    url: str
    status: int
    purpose: str


@dataclass(frozen=True)
class TokensIssued:
    """The provider issued tokens; ``grant`` is ``authorization_code`` or ``refresh_token``.

    ``id_token_claims`` are validated; ``access_token_claims`` are decoded *without* verification,
    for display only (the access token is opaque to a client), or empty if it is not a JWT.
    """

    grant: str
    requirement: Requirement
    id_token_claims: Mapping[str, Any]
    access_token_claims: Mapping[str, Any] = field(default_factory=dict)
    scope: str | None = None
    expires_in: int | None = None


@dataclass(frozen=True)
class TokenReused:
    """A cached token met the requirement, so no new authorization was needed."""

    requirement: Requirement
    acr: str | None


Event = (
    ApiRequestSent
    | ApiResponseReceived
    | StepUpChallenged
    | AuthorizationRequested
    | FactorsRequested
    | ProviderExchange
    | TokensIssued
    | TokenReused
    | WaitingForNextCode
)
Hook = Callable[[Event], None]


def emit_all(hooks: Sequence[Hook], event: Event) -> None:
    for hook in hooks:
        hook(event)
