"""The OAuth 2.0 machinery, through Authlib, with its defaults made strict.

Authlib brings the grant dispatch, client authentication (``client_secret_basic``,
``client_secret_post``, ``none``), the RFC 7662 and RFC 7009 endpoints and the error classes.
What this module changes, and why:

- PKCE (RFC 7636) is required and only ``S256`` is accepted. Authlib's ``CodeChallenge``
  accepts ``plain`` and lets a request without a challenge through. RFC 9700 §2.1.1: "Public
  clients MUST use PKCE"; "Confidential OpenID Connect clients MAY use the nonce parameter and
  the respective Claims in the ID Token instead" — so only a confidential client registered with
  ``require_pkce = false`` may leave the challenge out, and a challenge it does send is verified
  like any other.
- Scope values the provider does not understand are ignored, at /authorize and at /token
  (OIDC Core §3.1.2.1; Authlib answers them ``invalid_scope``): see :func:`understood_scope`.
- Redirect URIs match exactly, except that a registered loopback URI accepts any port
  (RFC 8252 §7.3): see :mod:`.clients`.
- Authorization codes and refresh tokens are consumed by one atomic statement, in the transaction
  that records what was issued for them (:mod:`.store`).
- Tokens are minted by :class:`provider.tokens.TokenSigner` with keys loaded once, and they carry
  the authentication context (``acr``, ``amr``, ``auth_time``) from the code or refresh token —
  Authlib's own generators see only the user, and re-import the key on every call.
- DPoP (RFC 9449): after a grant has validated its request (client, code or refresh token), the
  ``DPoP`` header is checked by :mod:`.dpop` and the tokens are bound to its key
  (:meth:`Server.create_token_response`).
"""

from __future__ import annotations

import json
import re
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
    InvalidScopeError,
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
from .resource_indicators import InvalidTarget
from .tokens import AuthContext

if TYPE_CHECKING:
    from .dpop import ProviderDPoP
    from .issuance import CodeRecord, Issuance

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


def understood_scope(server: Any, client: ClientAdapter, scope: str | None) -> list[str]:
    """The requested scope values this provider understands, in order, each once.

    OIDC Core §3.1.2.1: "Scope values used that are not understood by an implementation SHOULD be
    ignored"; RFC 6749 §3.3: the server "MAY fully or partially ignore the scope requested by the
    client". Understood: the provider's own scopes and those registered for the client. Every
    token response carries ``scope``, so the client sees what was granted.
    """
    known = set(server.scopes_supported or ()) | set(client.row.scope.split())
    return [s for s in dict.fromkeys((scope or "").split()) if s in known]


def _issuance(component: Any) -> Issuance:
    """The :class:`~provider.issuance.Issuance` behind a grant or endpoint's server."""
    return cast("Issuance", component.server.context)


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed." """

    error = "invalid_target"
    status_code = 400


def _token_audience(grant: Any, granted: Sequence[str] | None) -> tuple[str, ...]:
    """The ``aud`` of the access token a token request asks for (RFC 8707 §2.2): the
    ``resource`` values it names, each known and within ``granted`` (``None``: any known one)."""
    resources = _issuance(grant).resources
    try:
        requested = resources.requested(grant.request.payload.datalist.get("resource", []))
        return requested if granted is None else resources.audience(requested, granted)
    except InvalidTarget as exc:
        raise InvalidTargetError(exc.description) from None


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]  # noqa: RUF012
    audience: tuple[str, ...] = ()  # RFC 8707: the access token's aud; empty: the default

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

    def validate_token_request(self) -> None:
        super().validate_token_request()
        # RFC 8707 §2.2: refused before the code is consumed, so the client may ask again.
        code: CodeRecord = self.request.authorization_code
        self.audience = _token_audience(self, code.resources or ())

    def query_authorization_code(self, code: str, client: ClientAdapter) -> Any:
        return _issuance(self).find_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code: Any) -> None:
        """Nothing to do: :meth:`generate_token` consumed it atomically."""

    def authenticate_user(self, authorization_code: Any) -> User | None:
        user: User = authorization_code.user
        return user

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        code = self.request.authorization_code
        assert user is not None
        extra = None
        if code.authorization_details is not None:
            # RFC 9396 §7: the token response carries the authorization_details granted; §9.1:
            # so does the access token — as the CIBA grant issues them (provider.ciba_grant).
            extra = {"authorization_details": code.authorization_details}
        return _issuance(self).issue(
            client=self.request.client,
            user=user,
            scope=scope or "",
            context=AuthContext(code.acr, tuple(code.amr), code.auth_time),
            nonce=code.nonce,
            family=None,
            code_id=code.id,
            audience=self.audience,
            grant_resources=code.resources,
            dpop_jkt=_dpop_jkt(self.request),
            extra_claims=extra,
        )


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True
    # The understood part of the requested scope; empty: as omitted, the refresh token's scope.
    requested_scope = ""
    # The access token's aud (RFC 8707), set when the refresh token is found.
    audience: tuple[str, ...] = ()

    def authenticate_refresh_token(self, refresh_token: str) -> Any:
        issuance = _issuance(self)
        client = self.request.client
        # Values not understood are ignored, as at /authorize, where they were dropped: a client
        # that sends its original scope string again is not refused for them.
        requested = understood_scope(self.server, client, self.request.payload.scope)
        self.requested_scope = " ".join(requested)
        record = issuance.find_refresh_token(refresh_token, client.client_id)
        # RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by
        # the resource owner". Refused before the rotation, so the refresh token stays usable
        # instead of making its next use look like theft.
        if (
            record is not None
            and requested
            and not set(requested) <= set(record.get_scope().split())
        ):
            raise InvalidScopeError("The scope asked for was not granted to this refresh token.")
        if record is not None:
            # RFC 8707 §2.2: a refresh may narrow the grant's resources, never widen them.
            self.audience = _token_audience(self, record.row.resources or ())
        return record

    def _validate_token_scope(self, token: Any) -> None:
        """Done by :meth:`authenticate_refresh_token`, before the rotation and without the
        values it ignores (Authlib's check comes after the rotation and counts them)."""

    def authenticate_user(self, refresh_token: Any) -> User | None:
        return refresh_token.user  # type: ignore[no-any-return]

    def revoke_old_credential(self, refresh_token: Any) -> None:
        """Nothing to do: :meth:`generate_token` rotated it atomically."""

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        old = self.request.refresh_token
        assert user is not None
        # RFC 9396 §6 and §11.2 expect a refresh to keep the grant's authorization_details; here
        # it never does: the grant keeps none, so the approval of one transaction lives in the
        # access token issued with the code, and a refreshed token approves nothing
        # (docs/transactional.md).
        # DESIGN.md: refresh never upgrades — the new tokens keep the original acr, amr, auth_time.
        # RFC 6749 §6: "If a new refresh token is issued, the refresh token scope MUST be
        # identical to that of the refresh token included by the client in the request" — a
        # narrower scope applies to the new access token only.
        return _issuance(self).issue(
            client=self.request.client,
            user=user,
            scope=self.requested_scope or old.get_scope(),
            grant_scope=old.get_scope(),
            context=AuthContext(old.row.acr, tuple(old.row.amr or ()), old.row.auth_time),
            nonce=None,
            family=old.row.family,
            code_id=old.row.code_id,
            rotated_from=old.row.id,
            audience=self.audience,
            grant_resources=old.row.resources,
            dpop_jkt=_dpop_jkt(self.request),
        )


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    # The understood part of the requested scope; empty: as omitted, the registered scope.
    requested_scope = ""
    audience: tuple[str, ...] = ()  # RFC 8707: the access token's aud; empty: the default

    def validate_requested_scope(self) -> None:
        """Authlib passes the requested scope through unfiltered. Values not understood are
        ignored (see :func:`understood_scope`); a machine client gets only the scope registered
        for it, and asking for one of ours that is not is ``invalid_scope`` (RFC 6749 §5.2:
        "exceeds the scope granted by the resource owner")."""
        client: ClientAdapter = self.request.client
        requested = understood_scope(self.server, client, self.request.payload.scope)
        registered = client.row.scope.split()
        if any(s not in registered for s in requested):
            raise InvalidScopeError("The scope asked for is not registered for this client.")
        self.requested_scope = " ".join(requested)
        # RFC 8707 §2: any resource this provider knows; none named, the default audience.
        self.audience = _token_audience(self, None)

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        client: ClientAdapter = self.request.client
        # RFC 6749 §3.3: "If the client omits the scope parameter when requesting authorization,
        # the authorization server MUST either process the request using a pre-defined default
        # value or fail the request indicating an invalid scope" — the default is the registered
        # scope.
        return _issuance(self).issue(
            client=client,
            user=None,
            scope=self.requested_scope or client.row.scope,
            context=None,
            nonce=None,
            family=None,
            code_id=None,
            audience=self.audience,
            dpop_jkt=_dpop_jkt(self.request),
        )


def _dpop_jkt(request: Any) -> str | None:
    """The DPoP key (thumbprint) :meth:`Server.create_token_response` found for this request."""
    jkt: str | None = getattr(request, "dpop_jkt", None)
    return jkt


class GrantRecord:
    """A stored grant as Authlib's token endpoints ask about it."""

    def __init__(
        self, row: Grant, now: int, claims: dict[str, Any] | None = None, user: User | None = None
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
        return self.repeated() or client_auth.several_methods(self)


class Server(FlaskAuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask server, able to finish an authorization request saved earlier."""

    context: Issuance  # set by build_server
    dpop: ProviderDPoP  # set by build_server

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

    def create_token_response(self, request: Any = None) -> Any:
        oauth_request = self.create_oauth2_request(request)
        try:
            if isinstance(oauth_request, FormRequest) and (error := oauth_request.invalid()):
                raise error
            # RFC 6749 §5.2 invalid_request: "The request is missing a required parameter";
            # Authlib answers a missing grant_type with unsupported_grant_type.
            if not oauth_request.payload.grant_type:
                raise InvalidRequestError("Missing grant_type.")
            grant = self.get_token_grant(oauth_request)
            grant.validate_token_request()
            proofs = flask_request.headers.getlist("DPoP")
            oauth_request.dpop_jkt = self._dpop_binding(oauth_request, grant, proofs)
            status, body, headers = grant.create_token_response()
            if proofs and (nonce := self.dpop.current_nonce()) is not None:
                # RFC 9449 §8.2: a new nonce may come with any response; the current one does,
                # so clients move on to it before the one they hold expires.
                headers = [*headers, ("DPoP-Nonce", nonce)]
            return self.handle_response(status, body, headers)
        except OAuth2Error as error:
            return self.handle_error_response(oauth_request, error)

    def _dpop_binding(self, request: Any, grant: Any, proofs: list[str]) -> str | None:
        """RFC 9449 §5, §10: the key to bind the tokens to, after the grant validated the
        request: the code or refresh token presented may already be bound to one."""
        bound_to, what = None, ""
        if isinstance(grant, AuthorizationCodeGrant):
            bound_to, what = request.authorization_code.row.dpop_jkt, "authorization code"
        elif isinstance(grant, RefreshTokenGrant) and not request.client.is_confidential:
            # §5: only a public client's refresh token is bound to its DPoP key.
            bound_to, what = request.refresh_token.row.dpop_jkt, "refresh token"
        return self.dpop.token_request(proofs, request.client, bound_to=bound_to, what=what)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        if isinstance(error, InvalidClientError):
            # Authlib answers an unknown client_id in the body with 400 and a wrong secret with
            # 401, and names the client's methods: the difference tells an attacker which
            # client ids exist. Every failed client authentication gets the same answer, the 401
            # with a challenge that RFC 6749 §5.2 requires when the header was used.
            error.status_code = 401
            error.description = "Client authentication failed."
        elif isinstance(error, UnsupportedTokenTypeError):
            # Authlib makes this a 401; RFC 7009 §2.2.1 and RFC 7662 §2.3 answer it as an
            # RFC 6749 §5.2 error response, which is a 400.
            error = OAuth2Error(
                error=error.error,
                description="token_type_hint must be access_token or refresh_token.",
                status_code=400,
            )
        # RFC 6749 §5.2: the description leaves in the allowed characters, never as raw input.
        error.description = describe(error.error, error.description)
        return super().handle_error_response(request, error)

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


def build_server(context: Any, issuer: str, scopes: list[str], dpop: ProviderDPoP) -> Server:
    server = Server()
    server.context = context
    server.dpop = dpop
    server._query_client = context.query_client
    server._save_token = lambda token, request: None  # tokens are recorded when minted
    server.scopes_supported = scopes
    server.register_client_auth_method("client_secret_basic", client_auth.client_secret_basic)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(StepupIntrospection)
    server.register_endpoint(StepupRevocation)
    server.register_extension(StepupIssuer(issuer))
    return server


__all__ += ["GrantRecord", "InvalidGrantError"]
