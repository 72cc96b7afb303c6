"""The OAuth 2.0 machinery of the authorization, introspection and revocation endpoints, through
Authlib, with its defaults made strict. (The token endpoint is :mod:`provider.token_endpoint`'s.)

Authlib brings the authorization request's dispatch, the RFC 7662 and RFC 7009 endpoints and the
error classes; client authentication is :mod:`provider.client_auth`'s everywhere. What this
module changes, and why:

- PKCE (RFC 7636) is required and only ``S256`` is accepted. Authlib's ``CodeChallenge``
  accepts ``plain`` and lets a request without a challenge through. RFC 9700 §2.1.1: "Public
  clients MUST use PKCE"; "Confidential OpenID Connect clients MAY use the nonce parameter and
  the respective Claims in the ID Token instead" — so only a confidential client registered with
  ``require_pkce = false`` may leave the challenge out, and a challenge it does send is verified
  like any other (:func:`provider.token_endpoint.verify_pkce`).
- Scope values the provider does not understand are ignored, at /authorize and at /token
  (OIDC Core §3.1.2.1; Authlib answers them ``invalid_scope``): see :func:`understood_scope`.
- Redirect URIs match exactly, except that a registered loopback URI accepts any port
  (RFC 8252 §7.3): see :mod:`.clients`.
- Errors leave in one form (:func:`public_error`): every failed client authentication is the same
  ``401``, and descriptions are fixed text (:mod:`.error_text`).
"""

from __future__ import annotations

import json
import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    UnsupportedTokenTypeError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import request as flask_request
from flask.wrappers import Request as FlaskRequest
from werkzeug.datastructures import MultiDict

from . import client_auth
from .clients import ClientAdapter
from .error_text import FALLBACK, describe, repeated_parameter
from .models import Grant, User
from .tokens import AuthContext

if TYPE_CHECKING:
    from .issuance import Issuance, TokenUser

__all__ = ["AuthenticatedUser", "ClientAdapter", "build_server"]


@dataclass
class AuthenticatedUser:
    """The user the authorization endpoint grants for, with how they authenticated."""

    user: User
    context: AuthContext
    session_id: int | None


# RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(code_verifier)), 43 characters.
S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE required (unless the confidential client is registered without it), S256 only.

    At the token endpoint Authlib's ``validate_code_verifier`` keeps RFC 9700 §2.1.1 as it is: a
    code issued with a challenge needs the matching ``code_verifier`` ("MUST enforce the correct
    usage of code_verifier at the token endpoint"), and a ``code_verifier`` for a code issued
    without one is refused (the PKCE downgrade attack).
    """

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012  (Authlib's attribute)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        client: ClientAdapter = grant.request.client
        if not challenge and not method and not client.require_pkce:
            return  # RFC 9700 §2.1.1: a confidential OIDC client relying on nonce instead
        if not challenge:
            raise InvalidRequestError("PKCE is required: send code_challenge (RFC 7636).")
        # RFC 7636 §4.3: a missing code_challenge_method defaults to "plain", which we refuse.
        if method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256; plain is not accepted.")
        if not S256_CHALLENGE.match(challenge):
            raise InvalidRequestError("code_challenge must be the 43-character S256 value.")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Any) -> str | None:
        challenge: str | None = authorization_code.code_challenge
        return challenge

    def get_authorization_code_challenge_method(self, authorization_code: Any) -> str | None:
        method: str | None = authorization_code.code_challenge_method
        return method


def understood_scope(
    supported: Sequence[str], client: ClientAdapter, scope: str | None
) -> list[str]:
    """The requested scope values this provider understands, in order, each once.

    OIDC Core §3.1.2.1: "Scope values used that are not understood by an implementation SHOULD be
    ignored"; RFC 6749 §3.3: the server "MAY fully or partially ignore the scope requested by the
    client". Understood: the provider's own scopes and those registered for the client. Every
    token response carries ``scope``, so the client sees what was granted.
    """
    known = set(supported) | set(client.row.scope.split())
    return [s for s in dict.fromkeys((scope or "").split()) if s in known]


def _issuance(component: Any) -> Issuance:
    """The :class:`~provider.issuance.Issuance` behind a grant or endpoint's server."""
    return cast("Issuance", component.server.context)


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed." """

    error = "invalid_target"
    status_code = 400


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization endpoint's side of the code flow (the token endpoint's is
    :mod:`provider.token_endpoint`): the code saved with what the user authenticated with."""

    def generate_authorization_code(self) -> str:
        """288 random bits (RFC 6749 §10.10: guessing a code must be infeasible) from one call of
        the OS's generator; Authlib's draws each of its 48 characters separately."""
        return secrets.token_urlsafe(36)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        granted: AuthenticatedUser = request.user
        data = request.payload.data
        ctx = self.server.context
        ctx.save_code(
            code,
            request.client,
            request.payload.redirect_uri,
            request.scope,
            data.get("nonce"),
            data.get("code_challenge"),
            data.get("code_challenge_method"),
            granted,
            # Checked at /authorize (RFC 8707 §2); saved there space-separated.
            resources=(data.get("resource") or "").split(),
            dpop_jkt=data.get("dpop_jkt"),
            # RFC 9396: validated and normalised at /authorize; the user approved them there.
            authorization_details=json.loads(details)
            if (details := data.get("authorization_details"))
            else None,
        )


class GrantRecord:
    """A stored grant as Authlib's token endpoints ask about it."""

    def __init__(
        self,
        row: Grant,
        now: int,
        claims: dict[str, Any] | None = None,
        user: TokenUser | None = None,
    ) -> None:
        self.row = row
        self.now = now
        self.claims = claims  # set when the token presented was the JWT access token
        self.user = user  # set for a refresh token presented at the token endpoint

    @property
    def user_id(self) -> int | None:
        return self.row.user_id

    def get_scope(self) -> str:
        return self.row.scope

    def check_client(self, client: ClientAdapter) -> bool:
        return self.row.client_id == client.client_id

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or (
            self.claims is None and self.row.rotated_at is not None
        )

    def is_expired(self) -> bool:
        if self.claims is not None:
            return int(self.claims.get("exp", 0)) <= self.now
        return (self.row.refresh_expires_at or 0) <= self.now


class StepupIntrospection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662, for the JWT access tokens and refresh tokens this provider issues.

    Any confidential client may introspect (resource servers register as confidential clients);
    the response carries ``acr``, ``amr`` and ``auth_time`` so an API in introspection mode can
    enforce step-up like one that validates JWTs locally.
    """

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> GrantRecord | None:
        return _issuance(self).find_token(token_string, token_type_hint)

    def check_permission(self, token: GrantRecord, client: ClientAdapter, request: Any) -> bool:
        return client.is_confidential

    def introspect_token(self, token: GrantRecord) -> dict[str, Any]:
        return _issuance(self).introspection_payload(token)


class StepupRevocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009. Revoking a refresh token revokes its whole family and the access tokens issued
    with it (§2.1: the server SHOULD also invalidate the access tokens of the same grant)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> GrantRecord | None:
        return _issuance(self).find_token(token_string, token_type_hint)

    def revoke_token(self, token: GrantRecord, request: Any) -> None:
        _issuance(self).revoke(token)


class StepupIssuer(IssuerParameter):  # type: ignore[misc]
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, params: MultiDict[str, str]) -> None:
        self.params = params

    @property
    def data(self) -> MultiDict[str, str]:
        return self.params

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for k, v in self.params.items(multi=True):
            values[k].append(v)
        return values


class FormRequest(FlaskOAuth2Request):  # type: ignore[misc]
    """A request to the token, introspection or revocation endpoint: its form body only.

    Authlib reads ``request.values``, the query string merged with the body. RFC 6749 §2.3.1:
    client credentials "MUST NOT be included in the request URI", and §3.2 has the token request
    in the entity-body, so nothing is read from the URI. §3.2 also: "Parameters sent without a
    value MUST be treated as if they were omitted from the request."
    """

    def __init__(self, request: FlaskRequest) -> None:
        super().__init__(request)
        self.params: MultiDict[str, str] = MultiDict(
            [(k, v) for k, v in request.form.items(multi=True) if v]
        )
        self.payload = FormPayload(self.params)

    @property
    def args(self) -> MultiDict[str, str]:
        return MultiDict()

    @property
    def form(self) -> MultiDict[str, str]:
        return self.params

    def repeated(self) -> InvalidRequestError | None:
        """RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than
        once." The error naming the first one that is, if any. RFC 8707 §2 makes ``resource``
        the exception: it is repeated to name several resources."""
        name = next(
            (k for k in self.params if k != "resource" and len(self.params.getlist(k)) > 1), None
        )
        return None if name is None else InvalidRequestError(repeated_parameter(name))

    def invalid(self) -> InvalidRequestError | None:
        """What makes the request ``invalid_request`` before any grant looks at it: a repeated
        parameter, or more than one client authentication method (RFC 6749 §2.3)."""
        return self.repeated() or client_auth.several_methods(
            self.headers.get("Authorization"), self.params
        )


class Server(FlaskAuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask server, able to finish an authorization request saved earlier."""

    context: Issuance  # set by build_server

    def authenticate_client(
        self, request: OAuth2Request, methods: Sequence[str], endpoint: str = "token"
    ) -> ClientAdapter:
        """The provider's one client authentication (:func:`provider.client_auth.authenticate`),
        for introspection, revocation and the backchannel endpoint as for the token endpoint."""
        return client_auth.authenticate(
            self.context.query_client,
            request.form,
            request.headers.get("Authorization"),
            methods,
        )

    def validate_requested_scope(self, scope: str | None) -> None:
        """Nothing is refused for being unknown: each grant ignores the values it does not
        understand (:func:`understood_scope`); Authlib would answer them ``invalid_scope``."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return FormRequest(flask_request)

    def create_endpoint_response(self, name: str, request: Any = None) -> Any:
        oauth_request = self.create_oauth2_request(request)
        if isinstance(oauth_request, FormRequest) and (error := oauth_request.invalid()):
            return self.handle_error_response(oauth_request, error)
        return super().create_endpoint_response(name, oauth_request)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        return super().handle_error_response(request, public_error(error))

    def get_authorization_grant(self, request: OAuth2Request) -> Any:
        # Authlib builds unsupported_response_type's description from the raw response_type,
        # which raises ValueError (a 500) when it holds a quote, a backslash or anything
        # non-ASCII, and echoes it otherwise. RFC 6749 §4.1.1: response_type is REQUIRED, and
        # its value MUST be "code" (read raw: Authlib's payload splits and re-joins it on spaces).
        response_type = request.payload.data.get("response_type")
        if not response_type:
            raise InvalidRequestError("Missing response_type.")
        if response_type != "code":
            raise OAuth2Error(
                error="unsupported_response_type", description=FALLBACK["unsupported_response_type"]
            )
        return super().get_authorization_grant(request)


def public_error(error: OAuth2Error) -> OAuth2Error:
    """An error as it leaves the token, introspection, revocation and backchannel endpoints."""
    if isinstance(error, InvalidClientError):
        # Authlib answers an unknown client_id in the body with 400 and a wrong secret with 401,
        # and names the client's methods: the difference tells an attacker which client ids
        # exist. Every failed client authentication gets the same answer, the 401 with a
        # challenge that RFC 6749 §5.2 requires when the header was used.
        error.status_code = 401
        error.description = "Client authentication failed."
    elif isinstance(error, UnsupportedTokenTypeError):
        # Authlib makes this a 401; RFC 7009 §2.2.1 and RFC 7662 §2.3 answer it as an RFC 6749
        # §5.2 error response, which is a 400.
        error = OAuth2Error(
            error=error.error,
            description="token_type_hint must be access_token or refresh_token.",
            status_code=400,
        )
    # RFC 6749 §5.2: the description leaves in the allowed characters, never as raw input.
    error.description = describe(error.error, error.description)
    return error


def build_server(context: Any, issuer: str, scopes: list[str]) -> Server:
    server = Server()
    server.context = context
    server._query_client = context.query_client
    server._save_token = lambda token, request: None  # tokens are recorded when minted
    server.scopes_supported = scopes
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
    server.register_endpoint(StepupIntrospection)
    server.register_endpoint(StepupRevocation)
    server.register_extension(StepupIssuer(issuer))
    return server


__all__ += ["GrantRecord", "InvalidGrantError"]
