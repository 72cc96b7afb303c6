"""The token endpoint (RFC 6749 §3.2): one request in, one JSON answer out.

A token request is read once into a :class:`TokenRequest` (§3.2: the parameters in the body, none
repeated), then :meth:`TokenEndpoint.respond` does, in order, what the specifications ask:

1. authenticate the client with a method its grant allows (§2.3;
   :func:`provider.client_auth.authenticate`);
2. check the grant named by ``grant_type`` — the code and its PKCE verifier (§4.1.3, RFC 7636
   §4.6), the refresh token and the scope asked for (§6), the client's own scope (§4.4), or the
   CIBA ``auth_req_id`` (CIBA Core §10) — and the resources the token is for (RFC 8707 §2.2);
3. check the ``DPoP`` proof, if any, against the key the code or refresh token is bound to
   (RFC 9449 §5);
4. mint and record the tokens (:class:`provider.issuance.Issuance`, which also spends the code or
   rotates the refresh token in the same transaction).

Each grant is one method that reads top to bottom in that order. Errors are RFC 6749 §5.2 error
responses: Authlib's ``OAuth2Error`` classes, the type the rest of the provider raises too, given
their final form by :func:`provider.oauth.public_error`.

Why not Authlib's grant classes, which did this before: a token costs the provider about 0.7 ms of
Python beside its RS256 signatures, and Authlib's grant machinery (request wrappers, hooks, client
authentication through a method registry) was a third of it (docs/benchmarks.md, "The token
endpoint against node-oidc-provider"). The authorization endpoint still uses Authlib.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)

from . import client_auth
from .ciba_grant import ciba_token
from .ciba_request import GRANT_TYPE as CIBA
from .clients import ClientAdapter
from .dpop import ProviderDPoP
from .error_text import repeated_parameter
from .issuance import CodeRecord, Issuance
from .oauth import InvalidTargetError, public_error, understood_scope
from .resource_indicators import InvalidTarget
from .tokens import AuthContext

__all__ = ["TokenEndpoint", "TokenRequest"]

#: RFC 6749 §5.1: "Cache-Control: no-store" and "Pragma: no-cache" on every answer.
JSON_HEADERS = (
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
)

#: §2.3: the client authentication methods each grant accepts. A public client (no secret)
#: authenticates with ``none``: its code is protected by PKCE, its refresh token by rotation.
USER_GRANT_METHODS = ("client_secret_basic", "client_secret_post", "none")
CLIENT_METHODS = ("client_secret_basic", "client_secret_post")

#: RFC 7636 §4.1: code_verifier = 43*128unreserved.
CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")

Answer = tuple[int, dict[str, Any], list[tuple[str, str]]]


@dataclass(frozen=True)
class TokenRequest:
    """What a token request says: its body's parameters, and two headers."""

    #: Each parameter once; RFC 6749 §3.2: "Parameters sent without a value MUST be treated as
    #: if they were omitted from the request."
    params: Mapping[str, str]
    #: RFC 8707 §2: ``resource`` is the one parameter that may be repeated.
    resources: tuple[str, ...] = ()
    #: The ``Authorization`` header, for HTTP Basic (§2.3.1).
    authorization: str | None = None
    #: The ``DPoP`` headers (RFC 9449 §4).
    dpop_proofs: tuple[str, ...] = ()
    #: Why the request is ``invalid_request`` before any grant looks at it, if it is.
    problem: InvalidRequestError | None = None

    @classmethod
    def read(
        cls, form: Iterable[tuple[str, str]], authorization: str | None, dpop: Sequence[str]
    ) -> TokenRequest:
        """The request from the pairs of its form body. RFC 6749 §3.2 puts the token request in
        the entity-body, and §2.3.1 keeps client credentials out of the URI: nothing is read from
        the query string."""
        values: dict[str, list[str]] = {}
        for name, value in form:
            if value:
                values.setdefault(name, []).append(value)
        params = {name: given[0] for name, given in values.items()}
        # §3.2: "Request and response parameters MUST NOT be included more than once."
        repeated = next(
            (name for name, given in values.items() if len(given) > 1 and name != "resource"),
            None,
        )
        problem = (
            InvalidRequestError(repeated_parameter(repeated))
            if repeated is not None
            else client_auth.several_methods(authorization, params)
        )
        resources = tuple(values.get("resource", ()))
        return cls(params, resources, authorization, tuple(dpop), problem)


class TokenEndpoint:
    """``POST /token``: one per application, shared by its threads (it keeps no request state)."""

    def __init__(self, issuance: Issuance, dpop: ProviderDPoP, scopes: Sequence[str]) -> None:
        self.issuance = issuance
        self.dpop = dpop
        self.scopes = tuple(scopes)
        self.grants: dict[str, Callable[[TokenRequest], Answer]] = {
            "authorization_code": self.authorization_code,
            "refresh_token": self.refresh_token,
            "client_credentials": self.client_credentials,
            CIBA: self.ciba,
        }
        #: Told of every token response (its ``grant_type`` and body): the sandbox's timeline.
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []

    def respond(self, request: TokenRequest) -> Answer:
        """The status, JSON body and headers answering ``request``."""
        try:
            if request.problem is not None:
                raise request.problem
            grant_type = request.params.get("grant_type")
            if grant_type is None:
                # §5.2 invalid_request: "The request is missing a required parameter".
                raise InvalidRequestError("Missing grant_type.")
            grant = self.grants.get(grant_type)
            if grant is None:
                raise OAuth2Error(error="unsupported_grant_type", status_code=400)
            answer = grant(request)
            for observe in self.observers:
                observe(grant_type, answer[1])
            return answer
        except OAuth2Error as error:
            status, body, headers = public_error(error)()
            return status, body, headers

    # --- the grants ------------------------------------------------------------------------

    def authorization_code(self, request: TokenRequest) -> Answer:
        """RFC 6749 §4.1.3, with PKCE (RFC 7636 §4.6) and resource indicators (RFC 8707)."""
        params = request.params
        client = self._client(request, "authorization_code", USER_GRANT_METHODS)
        code = params.get("code")
        if code is None:
            raise InvalidRequestError("Missing 'code' in request.")
        # Unknown, expired, another client's or used already (which revokes what it issued).
        record = self.issuance.find_code(code, client.client_id)
        if record is None:
            raise InvalidGrantError("Invalid 'code' in request.")
        # §4.1.3: redirect_uri "MUST be identical" to the authorization request's.
        if params.get("redirect_uri") != record.get_redirect_uri():
            raise InvalidGrantError("Invalid 'redirect_uri' in request.")
        verify_pkce(record, params.get("code_verifier"), public=not client.is_confidential)
        # RFC 8707 §2.2: refused before the code is spent, so the client may ask again.
        audience = self._audience(request, record.resources or ())
        dpop_jkt = self._dpop(request, client, record.row.dpop_jkt, "authorization code")
        extra = None
        if record.authorization_details is not None:
            # RFC 9396 §7: the token response carries the authorization_details granted; §9.1:
            # so does the access token.
            extra = {"authorization_details": record.authorization_details}
        token = self.issuance.issue(
            client=client,
            user=record.user,
            scope=record.get_scope(),
            context=AuthContext(record.acr, tuple(record.amr), record.auth_time),
            nonce=record.nonce,
            family=None,
            code_id=record.id,
            audience=audience,
            grant_resources=record.resources,
            dpop_jkt=dpop_jkt,
            extra_claims=extra,
        )
        return self._answer(request, token)

    def refresh_token(self, request: TokenRequest) -> Answer:
        """RFC 6749 §6, rotating the refresh token (RFC 9700 §4.14.2)."""
        client = self._client(request, "refresh_token", USER_GRANT_METHODS)
        presented = request.params.get("refresh_token")
        if presented is None:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        # Values not understood are ignored, as at /authorize, where they were dropped: a client
        # that sends its original scope string again is not refused for them.
        requested = understood_scope(self.scopes, client, request.params.get("scope"))
        old = self.issuance.find_refresh_token(presented, client.client_id)
        if old is None:
            raise InvalidGrantError()
        # §6: "The requested scope MUST NOT include any scope not originally granted by the
        # resource owner". Refused before the rotation, so the refresh token stays usable instead
        # of making its next use look like theft.
        granted = old.get_scope()
        if requested and not set(requested) <= set(granted.split()):
            raise InvalidScopeError("The scope asked for was not granted to this refresh token.")
        # RFC 8707 §2.2: a refresh may narrow the grant's resources, never widen them.
        audience = self._audience(request, old.row.resources or ())
        # RFC 9449 §5: only a public client's refresh token is bound to its DPoP key.
        bound_to = None if client.is_confidential else old.row.dpop_jkt
        dpop_jkt = self._dpop(request, client, bound_to, "refresh token")
        row = old.row
        # A refresh token is a user's: find_refresh_token reads the user and context with it.
        assert old.user is not None
        assert row.acr is not None
        assert row.auth_time is not None
        # RFC 9396 §6 and §11.2 expect a refresh to keep the grant's authorization_details; here
        # it never does: the grant keeps none, so the approval of one transaction lives in the
        # access token issued with the code, and a refreshed token approves nothing
        # (docs/transactional.md).
        # DESIGN.md: refresh never upgrades — the new tokens keep the original acr, amr, auth_time.
        # §6: "If a new refresh token is issued, the refresh token scope MUST be identical to
        # that of the refresh token included by the client in the request" — a narrower scope
        # applies to the new access token only.
        token = self.issuance.issue(
            client=client,
            user=old.user,
            scope=" ".join(requested) or granted,
            grant_scope=granted,
            context=AuthContext(row.acr, tuple(row.amr or ()), row.auth_time),
            nonce=None,
            family=row.family,
            code_id=row.code_id,
            rotated_from=row.id,
            audience=audience,
            grant_resources=row.resources,
            dpop_jkt=dpop_jkt,
        )
        return self._answer(request, token)

    def client_credentials(self, request: TokenRequest) -> Answer:
        """RFC 6749 §4.4: a token for the client itself, within the scope registered for it."""
        client = self._client(request, "client_credentials", CLIENT_METHODS)
        requested = understood_scope(self.scopes, client, request.params.get("scope"))
        registered = client.row.scope.split()
        # §5.2 invalid_scope: "exceeds the scope granted by the resource owner".
        if any(s not in registered for s in requested):
            raise InvalidScopeError("The scope asked for is not registered for this client.")
        # RFC 8707 §2: any resource this provider knows; none named, the default audience.
        audience = self._audience(request, None)
        dpop_jkt = self._dpop(request, client, None, "")
        # §3.3: "If the client omits the scope parameter ... the authorization server MUST
        # either process the request using a pre-defined default value or fail the request" —
        # the default is the registered scope.
        token = self.issuance.issue(
            client=client,
            user=None,
            scope=" ".join(requested) or client.row.scope,
            context=None,
            nonce=None,
            family=None,
            code_id=None,
            audience=audience,
            dpop_jkt=dpop_jkt,
        )
        return self._answer(request, token)

    def ciba(self, request: TokenRequest) -> Answer:
        """CIBA Core §10.1: "The Client MUST authenticate to the token endpoint using the
        authentication method registered for its client_id"; the poll itself is
        :func:`provider.ciba_grant.ciba_token`'s."""
        client = client_auth.authenticate(
            self.issuance.query_client, request.params, request.authorization, CLIENT_METHODS
        )
        if not client.check_grant_type(CIBA):
            raise UnauthorizedClientError("This client is not registered for CIBA.")
        auth_req_id = request.params.get("auth_req_id")
        if auth_req_id is None:
            raise InvalidRequestError("Missing auth_req_id.")
        self._dpop(request, client, None, "")
        return self._answer(request, ciba_token(self.issuance, client, auth_req_id))

    # --- the steps they share --------------------------------------------------------------

    def _client(
        self, request: TokenRequest, grant_type: str, methods: Sequence[str]
    ) -> ClientAdapter:
        client = client_auth.authenticate(
            self.issuance.query_client, request.params, request.authorization, methods
        )
        if not client.check_grant_type(grant_type):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={grant_type}'"
            )
        return client

    def _audience(self, request: TokenRequest, granted: Sequence[str] | None) -> tuple[str, ...]:
        """The access token's ``aud`` (RFC 8707 §2.2): the ``resource`` values the request names,
        each known and within ``granted`` (``None``: any known one); none named, the default."""
        resources = self.issuance.resources
        try:
            requested = resources.requested(request.resources)
            return requested if granted is None else resources.audience(requested, granted)
        except InvalidTarget as exc:
            raise InvalidTargetError(exc.description) from None

    def _dpop(
        self, request: TokenRequest, client: ClientAdapter, bound_to: str | None, what: str
    ) -> str | None:
        """RFC 9449 §5, §10: the key to bind the tokens to, checked after the grant: the code or
        refresh token presented may already be bound to one (``what`` names it)."""
        return self.dpop.token_request(request.dpop_proofs, client, bound_to=bound_to, what=what)

    def _answer(self, request: TokenRequest, token: dict[str, Any]) -> Answer:
        headers = list(JSON_HEADERS)
        if request.dpop_proofs and (nonce := self.dpop.current_nonce()) is not None:
            # RFC 9449 §8.2: a new nonce may come with any response; the current one does, so
            # clients move on to it before the one they hold expires.
            headers.append(("DPoP-Nonce", nonce))
        return 200, token, headers


def verify_pkce(code: CodeRecord, verifier: str | None, *, public: bool) -> None:
    """RFC 7636 §4.6 and RFC 9700 §2.1.1: a code issued with a challenge needs its verifier ("MUST
    enforce the correct usage of code_verifier at the token endpoint"), and a verifier for a code
    issued without one is refused (§4.8, the PKCE downgrade attack). Only ``S256`` challenges are
    accepted at /authorize (:class:`provider.oauth.S256CodeChallenge`)."""
    challenge = code.code_challenge
    if challenge is None:
        if verifier is not None:
            raise InvalidRequestError(
                "The authorization request had no 'code_challenge', "
                "but a 'code_verifier' was provided."
            )
        if public:
            raise InvalidRequestError("Missing 'code_verifier'")
        return  # a confidential client registered with require_pkce = false
    if verifier is None:
        raise InvalidRequestError("Missing 'code_verifier'")
    if not CODE_VERIFIER.fullmatch(verifier):
        raise InvalidRequestError("Invalid 'code_verifier'")
    # §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))); §4.6: "If the values are not equal,
    # an error response indicating "invalid_grant" ... MUST be returned."
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=")
    if not hmac.compare_digest(computed, challenge.encode("ascii")):
        raise InvalidGrantError("Code challenge failed.")
