"""The SDK's public names (DESIGN contract 6), pinned: adding or removing one is a decision."""

from __future__ import annotations

import inspect
from pathlib import Path

import requests

import client_sdk

EXPECTED = [
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


def test_all_is_pinned_and_importable() -> None:
    assert client_sdk.__all__ == EXPECTED
    for name in EXPECTED:
        assert getattr(client_sdk, name) is not None


def test_contract_6_signatures() -> None:
    auth = inspect.signature(client_sdk.StepUpAuth)
    assert list(auth.parameters)[:8] == [
        "issuer",
        "client_id",
        "authenticator",
        "client_secret",
        "redirect_uri",
        "scope",
        "hooks",
        "token_cache",
    ]
    assert auth.parameters["authenticator"].kind is inspect.Parameter.KEYWORD_ONLY
    # issuer stays the first positional; None (or left out) discovers it (RFC 9728).
    assert auth.parameters["issuer"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert auth.parameters["issuer"].default is None
    assert auth.parameters["client_secret"].default is None
    assert auth.parameters["redirect_uri"].default is None
    assert auth.parameters["scope"].default == "openid"
    assert issubclass(client_sdk.StepUpAuth, requests.auth.AuthBase)
    headless = inspect.signature(client_sdk.HeadlessAuthenticator)
    assert list(headless.parameters)[:3] == ["username", "password", "totp_secret"]
    assert headless.parameters["totp_secret"].default is None
    assert (
        list(inspect.signature(client_sdk.StepUpHTTPXAuth).parameters)[:8]
        == list(auth.parameters)[:8]
    )


def test_error_hierarchy() -> None:
    sdk = client_sdk
    assert issubclass(sdk.ChallengeParseError, sdk.StepUpError)
    assert issubclass(sdk.ChallengeParseError, ValueError)
    assert issubclass(sdk.ConfigurationError, ValueError)
    assert not issubclass(sdk.StepUpRequired, sdk.StepUpFailed)
    for failure in (
        sdk.ProviderError,
        sdk.AuthorizationError,
        sdk.UnmetAuthenticationRequirements,
        sdk.InvalidCallback,
        sdk.InvalidIDToken,
        sdk.LevelNotReached,
        sdk.SubjectMismatch,
        sdk.AuthenticatorError,
        sdk.LoginFailed,
        sdk.AuthenticationTimeout,
        sdk.ScopeNotGranted,
        sdk.ClaimsNotSatisfied,
        sdk.InvalidClaimsChallenge,
        sdk.ResourceMetadataError,
        sdk.BackchannelError,
        sdk.BackchannelDenied,
        sdk.BackchannelExpired,
        sdk.IssuerNotListed,
        sdk.DPoPError,
        sdk.DPoPNonceRejected,
        sdk.DPoPAlgorithmNotSupported,
        sdk.TokenTypeMismatch,
    ):
        assert issubclass(failure, sdk.StepUpFailed)
    # A token_type the client did not ask for is a provider's answer and a DPoP failure alike.
    assert issubclass(sdk.TokenTypeMismatch, sdk.ProviderError)
    assert issubclass(sdk.TokenTypeMismatch, sdk.DPoPError)
    assert issubclass(sdk.DPoPNonceRejected, sdk.DPoPError)
    assert issubclass(sdk.DPoPAlgorithmNotSupported, sdk.DPoPError)
    # A claims value that cannot be decoded is also a malformed challenge.
    assert issubclass(sdk.InvalidClaimsChallenge, sdk.ChallengeParseError)
    assert issubclass(sdk.IssuerNotListed, sdk.ResourceMetadataError)


def test_py_typed_is_shipped() -> None:
    assert (Path(client_sdk.__file__).parent / "py.typed").is_file()


def test_pure_modules_import_no_http_library() -> None:
    # DESIGN: protocol and the step-up core take plain data; the adapters stay thin.
    root = Path(client_sdk.__file__).parent
    for name in (
        "protocol.py",
        "flow.py",
        "tokens.py",
        "id_token.py",
        "challenges.py",
        "dialects.py",
        "resource_metadata.py",
        "dpop.py",
        "dpop_client.py",
    ):
        source = (root / name).read_text()
        for library in ("requests", "httpx", "flask"):
            assert f"import {library}" not in source, (name, library)
            assert f"from {library}" not in source, (name, library)
