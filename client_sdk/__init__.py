"""Stepup client SDK: call APIs that answer with RFC 9470 step-up challenges.

The transports (:class:`StepUpAuth` for ``requests``, :class:`StepUpHTTPXAuth` for ``httpx``)
attach the token, and on ``insufficient_user_authentication`` step up with the challenge's
``acr_values`` and ``max_age`` and retry the request once. Authenticators decide how the user
logs in. See ``docs/sdk.md``.
"""

from client_sdk.authenticators import (
    Authenticator,
    HeadlessAuthenticator,
    LoginRequest,
    LoopbackBrowserAuthenticator,
    RedirectAuthenticator,
)
from client_sdk.challenges import (
    Challenge,
    StepUpChallenge,
    find_step_up_challenge,
    parse_www_authenticate,
)
from client_sdk.errors import (
    AuthenticationTimeout,
    AuthenticatorError,
    AuthorizationError,
    ChallengeParseError,
    ConfigurationError,
    InvalidCallback,
    InvalidIDToken,
    LevelNotReached,
    LoginFailed,
    ProviderError,
    StepUpError,
    StepUpFailed,
    StepUpRequired,
    SubjectMismatch,
    UnmetAuthenticationRequirements,
)
from client_sdk.hooks import (
    ApiRequestSent,
    ApiResponseReceived,
    AuthorizationRequested,
    Event,
    FactorsRequested,
    Hook,
    ProviderExchange,
    StepUpChallenged,
    TokenReused,
    TokensIssued,
)
from client_sdk.httpx_auth import StepUpHTTPXAuth
from client_sdk.oidc import OIDCClient
from client_sdk.protocol import PendingAuthorization, Requirement
from client_sdk.requests_auth import StepUpAuth
from client_sdk.tokens import TokenCache, TokenSet

__all__ = [
    "ApiRequestSent",
    "ApiResponseReceived",
    "AuthenticationTimeout",
    "Authenticator",
    "AuthenticatorError",
    "AuthorizationError",
    "AuthorizationRequested",
    "Challenge",
    "ChallengeParseError",
    "ConfigurationError",
    "Event",
    "FactorsRequested",
    "HeadlessAuthenticator",
    "Hook",
    "InvalidCallback",
    "InvalidIDToken",
    "LevelNotReached",
    "LoginFailed",
    "LoginRequest",
    "LoopbackBrowserAuthenticator",
    "OIDCClient",
    "PendingAuthorization",
    "ProviderError",
    "ProviderExchange",
    "RedirectAuthenticator",
    "Requirement",
    "StepUpAuth",
    "StepUpChallenge",
    "StepUpChallenged",
    "StepUpError",
    "StepUpFailed",
    "StepUpHTTPXAuth",
    "StepUpRequired",
    "SubjectMismatch",
    "TokenCache",
    "TokenReused",
    "TokenSet",
    "TokensIssued",
    "UnmetAuthenticationRequirements",
    "find_step_up_challenge",
    "parse_www_authenticate",
]
