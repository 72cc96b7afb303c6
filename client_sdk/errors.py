"""The SDK's errors: one root, :class:`StepUpError`, and a class per failure a caller can act on.

Each class subclasses the builtin it resembles where one exists (``ChallengeParseError`` is a
``ValueError``), the way ``requests.exceptions`` do.

::

    StepUpError
    ├── ChallengeParseError (ValueError)   a WWW-Authenticate value is malformed
    ├── ConfigurationError (ValueError)    the SDK was set up in a way that cannot work
    ├── InvalidDPoPProof (ValueError)      a DPoP proof fails RFC 9449 §4.3 (servers check with it)
    ├── StepUpRequired                     web apps: redirect the user, then finish on the callback
    └── StepUpFailed                       no token that meets the challenge could be obtained
        ├── ScopeNotGranted                insufficient_scope again, or the provider granted less
        ├── ClaimsNotSatisfied             insufficient_claims again after asking for the claims
        ├── InvalidClaimsChallenge (ChallengeParseError)  claims="…" is not base64 JSON
        ├── ResourceMetadataError          RFC 9728 metadata missing, invalid, or for another API
        │   └── IssuerNotListed            the issuer is not one of its authorization_servers
        ├── ProviderError                  discovery, JWKS or the token endpoint answered wrongly
        │   └── TokenTypeMismatch (DPoPError)  token_type is not the one asked for (RFC 9449 §5)
        ├── DPoPError                      DPoP could not be used with a server
        │   ├── DPoPNonceRejected          a server asked again for the nonce the proof carried
        │   └── DPoPAlgorithmNotSupported  the provider does not list the key's algorithm
        ├── AuthorizationError             the authorization endpoint answered with an error
        │   └── UnmetAuthenticationRequirements
        ├── InvalidCallback                state / iss / code of the callback do not check out
        ├── InvalidIDToken                 OIDC Core §3.1.3.7 validation failed
        │   ├── LevelNotReached            acr not one requested, or auth_time older than max_age
        │   └── SubjectMismatch            a different user stepped up
        └── AuthenticatorError             the authenticator could not log the user in
            ├── LoginFailed                the provider's page said why (wrong password, code)
            ├── AuthenticationTimeout      the browser never came back
            └── BackchannelError           CIBA: the provider refused the request or the polling
                ├── BackchannelDenied      access_denied: the user said no on their device
                └── BackchannelExpired     expired_token: nobody decided in time
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from client_sdk.challenges import StepUpChallenge
    from client_sdk.protocol import PendingAuthorization, Requirement

__all__ = [
    "AuthenticationTimeout",
    "AuthenticatorError",
    "AuthorizationError",
    "BackchannelDenied",
    "BackchannelError",
    "BackchannelExpired",
    "ChallengeParseError",
    "ClaimsNotSatisfied",
    "ConfigurationError",
    "DPoPAlgorithmNotSupported",
    "DPoPError",
    "DPoPNonceRejected",
    "InvalidCallback",
    "InvalidClaimsChallenge",
    "InvalidDPoPProof",
    "InvalidIDToken",
    "IssuerNotListed",
    "LevelNotReached",
    "LoginFailed",
    "ProviderError",
    "ResourceMetadataError",
    "ScopeNotGranted",
    "StepUpError",
    "StepUpFailed",
    "StepUpRequired",
    "SubjectMismatch",
    "TokenTypeMismatch",
    "UnmetAuthenticationRequirements",
]


class StepUpError(Exception):
    """Root of every error this SDK raises."""


class ChallengeParseError(StepUpError, ValueError):
    """A ``WWW-Authenticate`` value does not follow the RFC 9110 §11 grammar."""


class ConfigurationError(StepUpError, ValueError):
    """The SDK was configured in a way that cannot work (says which argument to change)."""


class InvalidDPoPProof(StepUpError, ValueError):
    """A DPoP proof fails a check of RFC 9449 §4.3 (:mod:`client_sdk.dpop_check`, which the
    provider and the resource servers use); servers answer it ``invalid_dpop_proof``. The message
    names the check, never the proof."""


class StepUpRequired(StepUpError):
    """The user must be sent to the provider; raised by :class:`RedirectAuthenticator`.

    A web app cannot block a request while the user logs in, so the SDK hands it the
    authorization URL instead: store :attr:`pending` (see ``PendingAuthorization.to_dict``) in the
    user's session, redirect the browser to :attr:`authorization_url`, and on the redirect URI call
    ``auth.complete_authorization(callback_url, pending)``; then repeat the original call.
    """

    def __init__(
        self,
        authorization_url: str,
        pending: PendingAuthorization,
        challenge: StepUpChallenge | None = None,
    ) -> None:
        self.authorization_url = authorization_url
        self.pending = pending
        self.challenge = challenge
        self.requirement: Requirement = pending.requirement
        super().__init__(
            "the user must authenticate at the provider: redirect them to authorization_url "
            "and call complete_authorization() on the callback"
        )


class StepUpFailed(StepUpError):
    """A step-up could not produce a token that meets the challenge.

    Raised when the provider did not reach the level, the user failed to authenticate, or the API
    challenged the new token again. More specific errors subclass it. :attr:`challenges` holds the
    RFC 9470 challenges seen, in order: two when the API challenged the stepped-up token again.
    """

    def __init__(self, message: str, *, challenges: Sequence[StepUpChallenge] = ()) -> None:
        super().__init__(message)
        self.challenges: tuple[StepUpChallenge, ...] = tuple(challenges)


class ScopeNotGranted(StepUpFailed):
    """RFC 6750 ``insufficient_scope``: a new authorization for the union of the current and the
    required scopes did not produce a token the API accepts — the provider granted fewer scopes
    than asked (:attr:`missing` names them), or the API answered ``insufficient_scope`` again.
    A refresh never answers it: a refresh token cannot widen scope (RFC 6749 §6)."""

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        challenges: Sequence[StepUpChallenge] = (),
    ) -> None:
        super().__init__(message, challenges=challenges)
        self.missing: tuple[str, ...] = tuple(missing)


class ClaimsNotSatisfied(StepUpFailed):
    """The API answered ``insufficient_claims`` (Entra's claims challenge) again for the token
    obtained with the claims it asked for."""


class InvalidClaimsChallenge(StepUpFailed, ChallengeParseError):
    """An ``insufficient_claims`` challenge whose ``claims`` value is not base64url (or base64)
    of a JSON object of JSON objects: nothing can be asked of the provider. Also a
    :class:`ChallengeParseError` (and so a ``ValueError``)."""


class ResourceMetadataError(StepUpFailed):
    """RFC 9728: the protected resource metadata a challenge points to could not be used.

    It could not be fetched or is not a valid document (§2), its ``resource`` is not the API the
    request went to (§3.3: then "the data contained in the response MUST NOT be used"), it names
    no authorization server, or no issuer was configured and the API's challenge has no
    ``resource_metadata`` to discover one from. :attr:`url` is the metadata's URL, if known.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class IssuerNotListed(ResourceMetadataError):
    """The issuer the SDK uses is not among the ``authorization_servers`` of the API's protected
    resource metadata (RFC 9728 §2): that API does not accept its tokens, so the SDK does not send
    the user there. :attr:`issuer` is the refused issuer, :attr:`listed` what the API trusts."""

    def __init__(self, message: str, *, url: str, issuer: str, listed: Sequence[str]) -> None:
        super().__init__(message, url=url)
        self.issuer = issuer
        self.listed: tuple[str, ...] = tuple(listed)


class ProviderError(StepUpFailed):
    """Discovery, the JWKS or the token endpoint answered with an error or an invalid document."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.error_description = error_description


class DPoPError(StepUpFailed):
    """RFC 9449: a DPoP exchange with the provider or an API could not be completed. The
    subclasses say which rule failed."""


class DPoPNonceRejected(DPoPError):
    """RFC 9449 §8 (provider) or §9 (API): the server answered ``use_dpop_nonce`` to a proof that
    already carried the nonce it had just given. The SDK retries once with a server's new nonce;
    a second refusal is this error, never a loop. :attr:`url` is where the request went,
    :attr:`status_code` the server's answer (``400`` at a provider, ``401`` at an API)."""

    def __init__(self, message: str, *, url: str, status_code: int) -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code


class DPoPAlgorithmNotSupported(DPoPError):
    """The provider's ``dpop_signing_alg_values_supported`` (RFC 9449 §5.1) does not list the
    algorithm of the client's :class:`~client_sdk.DPoPKey` (:attr:`alg`), or — for a key the SDK
    makes — lists none it can make. Its proofs would be refused ``invalid_dpop_proof``, so the
    SDK stops before the login. :attr:`supported` is the provider's list."""

    def __init__(self, message: str, *, alg: str | None, supported: Sequence[str]) -> None:
        super().__init__(message)
        self.alg = alg
        self.supported = tuple(supported)


class TokenTypeMismatch(ProviderError, DPoPError):
    """The token response's ``token_type`` is not the one the client asked for (RFC 9449 §5):
    ``Bearer`` to a client that sent a DPoP proof (the provider did not bind the token; sending
    it would give up the protection the client was configured for), or ``DPoP`` to one that
    did not. :attr:`expected` and :attr:`received` name both."""

    def __init__(self, message: str, *, expected: str, received: str | None) -> None:
        super().__init__(message, status_code=200)
        self.expected = expected
        self.received = received


class AuthorizationError(StepUpFailed):
    """The authorization endpoint redirected back with ``error=…`` (RFC 6749 §4.1.2.1)."""

    def __init__(
        self, error: str, error_description: str | None = None, error_uri: str | None = None
    ) -> None:
        message = f"the provider refused the authorization request: {error}"
        if error_description:
            message += f" ({error_description})"
        super().__init__(message)
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri


class UnmetAuthenticationRequirements(AuthorizationError):
    """The provider cannot authenticate the user at the essential ``acr`` asked for.

    OpenID Connect Core Unmet Authentication Requirements 1.0: the error
    ``unmet_authentication_requirements``.
    """


class InvalidCallback(StepUpFailed):
    """The authorization response fails its checks (``state``, RFC 9207 ``iss``, ``code``)."""


class InvalidIDToken(StepUpFailed):
    """The ID token fails OIDC Core §3.1.3.7 validation. :attr:`claim` names the claim at fault."""

    def __init__(self, message: str, *, claim: str | None = None) -> None:
        super().__init__(message)
        self.claim = claim


class LevelNotReached(InvalidIDToken):
    """The provider issued a token below the requirement: wrong ``acr`` or too old ``auth_time``."""


class SubjectMismatch(InvalidIDToken):
    """The step-up authenticated another user (``sub`` differs from the token it replaces)."""


class AuthenticatorError(StepUpFailed):
    """The authenticator could not take the user through the provider's login."""


class LoginFailed(AuthenticatorError):
    """The provider refused the credentials; :attr:`alert` is the text its page showed.

    :attr:`error` is the machine code the page gave next to it (the alert's ``data-error``), when
    it gave one: the Stepup provider says ``wrong``, ``expired``, ``replayed`` or ``throttled``.
    """

    def __init__(
        self,
        message: str,
        *,
        alert: str | None = None,
        url: str | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.alert = alert
        self.url = url
        self.error = error


class AuthenticationTimeout(AuthenticatorError):
    """The browser did not come back to the loopback redirect URI in time."""


class BackchannelError(AuthenticatorError):
    """CIBA (Client-Initiated Backchannel Authentication Core 1.0): the backchannel authentication
    request (§13) or the token polling (§11) ended in an error. :attr:`error` is the provider's
    code (``unknown_user_id``, ``invalid_binding_message``, ``invalid_authorization_details``...),
    :attr:`status_code` its HTTP status (``None`` when the SDK itself gave up)."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        status_code: int | None = None,
        auth_req_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.status_code = status_code
        self.auth_req_id = auth_req_id


class BackchannelDenied(BackchannelError):
    """CIBA §11 ``access_denied``: the user denied the request on their device."""


class BackchannelExpired(BackchannelError):
    """CIBA §11 ``expired_token``: the ``auth_req_id`` expired before the user decided."""
