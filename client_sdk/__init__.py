"""Stepup client SDK: call APIs that answer with RFC 9470 step-up challenges.

The transports (:class:`StepUpAuth` for ``requests``, :class:`StepUpHTTPXAuth` for ``httpx``)
attach the token, and on ``insufficient_user_authentication`` step up with the challenge's
``acr_values`` and ``max_age`` and retry the request once; ``insufficient_scope`` and Entra's
``insufficient_claims`` are answered the same way, and the issuer may be learnt from the API's
RFC 9728 metadata. With ``dpop=`` every token is DPoP-bound (RFC 9449) to one key.
Authenticators decide how the user logs in. See ``docs/sdk.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client_sdk.authenticators import (
        Authenticator,
        CibaAuthenticator,
        HeadlessAuthenticator,
        LoginRequest,
        LoopbackBrowserAuthenticator,
        RedirectAuthenticator,
        SoftwarePasskey,
    )
    from client_sdk.challenges import (
        Challenge,
        StepUpChallenge,
        find_step_up_challenge,
        parse_www_authenticate,
    )
    from client_sdk.dialects import find_authorization_challenge
    from client_sdk.dpop import DPoPKey
    from client_sdk.errors import (
        AuthenticationTimeout,
        AuthenticatorError,
        AuthorizationError,
        BackchannelDenied,
        BackchannelError,
        BackchannelExpired,
        ChallengeParseError,
        ClaimsNotSatisfied,
        ConfigurationError,
        DPoPAlgorithmNotSupported,
        DPoPError,
        DPoPNonceRejected,
        InvalidCallback,
        InvalidClaimsChallenge,
        InvalidIDToken,
        IssuerNotListed,
        LevelNotReached,
        LoginFailed,
        ProviderError,
        ResourceMetadataError,
        ScopeNotGranted,
        StepUpError,
        StepUpFailed,
        StepUpRequired,
        SubjectMismatch,
        TokenTypeMismatch,
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
        WaitingForNextCode,
    )
    from client_sdk.httpx_auth import StepUpHTTPXAuth
    from client_sdk.oidc import OIDCClient
    from client_sdk.protocol import PendingAuthorization, Requirement
    from client_sdk.requests_auth import StepUpAuth
    from client_sdk.tokens import TokenCache, TokenSet

# Each public name and the module that defines it. Importing the package imports none of them:
# ``client_sdk.wire`` (which the provider and the ``stepup`` command use) must not bring in
# requests, httpx and the authenticators — they are loaded on first use (PEP 562).
_WHERE = {
    "ApiRequestSent": "client_sdk.hooks",
    "ApiResponseReceived": "client_sdk.hooks",
    "AuthenticationTimeout": "client_sdk.errors",
    "Authenticator": "client_sdk.authenticators",
    "AuthenticatorError": "client_sdk.errors",
    "AuthorizationError": "client_sdk.errors",
    "AuthorizationRequested": "client_sdk.hooks",
    "BackchannelDenied": "client_sdk.errors",
    "BackchannelError": "client_sdk.errors",
    "BackchannelExpired": "client_sdk.errors",
    "Challenge": "client_sdk.challenges",
    "ChallengeParseError": "client_sdk.errors",
    "CibaAuthenticator": "client_sdk.authenticators",
    "ClaimsNotSatisfied": "client_sdk.errors",
    "ConfigurationError": "client_sdk.errors",
    "DPoPError": "client_sdk.errors",
    "DPoPKey": "client_sdk.dpop",
    "DPoPAlgorithmNotSupported": "client_sdk.errors",
    "DPoPNonceRejected": "client_sdk.errors",
    "Event": "client_sdk.hooks",
    "FactorsRequested": "client_sdk.hooks",
    "HeadlessAuthenticator": "client_sdk.authenticators",
    "SoftwarePasskey": "client_sdk.authenticators",
    "Hook": "client_sdk.hooks",
    "InvalidCallback": "client_sdk.errors",
    "InvalidClaimsChallenge": "client_sdk.errors",
    "InvalidIDToken": "client_sdk.errors",
    "IssuerNotListed": "client_sdk.errors",
    "LevelNotReached": "client_sdk.errors",
    "LoginFailed": "client_sdk.errors",
    "LoginRequest": "client_sdk.authenticators",
    "LoopbackBrowserAuthenticator": "client_sdk.authenticators",
    "OIDCClient": "client_sdk.oidc",
    "PendingAuthorization": "client_sdk.protocol",
    "ProviderError": "client_sdk.errors",
    "ProviderExchange": "client_sdk.hooks",
    "RedirectAuthenticator": "client_sdk.authenticators",
    "Requirement": "client_sdk.protocol",
    "ResourceMetadataError": "client_sdk.errors",
    "ScopeNotGranted": "client_sdk.errors",
    "StepUpAuth": "client_sdk.requests_auth",
    "StepUpChallenge": "client_sdk.challenges",
    "StepUpChallenged": "client_sdk.hooks",
    "StepUpError": "client_sdk.errors",
    "StepUpFailed": "client_sdk.errors",
    "StepUpHTTPXAuth": "client_sdk.httpx_auth",
    "StepUpRequired": "client_sdk.errors",
    "SubjectMismatch": "client_sdk.errors",
    "TokenCache": "client_sdk.tokens",
    "TokenReused": "client_sdk.hooks",
    "TokenSet": "client_sdk.tokens",
    "TokenTypeMismatch": "client_sdk.errors",
    "TokensIssued": "client_sdk.hooks",
    "UnmetAuthenticationRequirements": "client_sdk.errors",
    "WaitingForNextCode": "client_sdk.hooks",
    "find_authorization_challenge": "client_sdk.dialects",
    "find_step_up_challenge": "client_sdk.challenges",
    "parse_www_authenticate": "client_sdk.challenges",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'client_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "ApiRequestSent",
    "ApiResponseReceived",
    "AuthenticationTimeout",
    "Authenticator",
    "AuthenticatorError",
    "AuthorizationError",
    "AuthorizationRequested",
    "BackchannelDenied",
    "BackchannelError",
    "BackchannelExpired",
    "Challenge",
    "ChallengeParseError",
    "CibaAuthenticator",
    "ClaimsNotSatisfied",
    "ConfigurationError",
    "DPoPAlgorithmNotSupported",
    "DPoPError",
    "DPoPKey",
    "DPoPNonceRejected",
    "Event",
    "FactorsRequested",
    "HeadlessAuthenticator",
    "Hook",
    "InvalidCallback",
    "InvalidClaimsChallenge",
    "InvalidIDToken",
    "IssuerNotListed",
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
    "ResourceMetadataError",
    "ScopeNotGranted",
    "SoftwarePasskey",
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
    "TokenTypeMismatch",
    "TokensIssued",
    "UnmetAuthenticationRequirements",
    "WaitingForNextCode",
    "find_authorization_challenge",
    "find_step_up_challenge",
    "parse_www_authenticate",
]
