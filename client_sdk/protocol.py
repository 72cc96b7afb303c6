"""The OpenID Connect client steps, without I/O: plain data in, plain data out.

Each operation is a *build request* / *process response* pair (the oauth4webapi shape):

- discovery: :func:`parse_provider_metadata` (OIDC Discovery 1.0 §4.3);
- the authorization request: :func:`new_authorization`, :func:`authorization_url` — PKCE S256
  (RFC 7636 §4.1-4.3), ``state`` (RFC 6749 §10.12), ``nonce`` (OIDC Core §3.1.2.1), ``acr_values``
  and ``max_age`` as RFC 9470 §4 asks, ``prompt``, ``login_hint``, an essential ``acr`` through
  ``claims`` (OIDC Core §5.5.1.1), RFC 9396 ``authorization_details`` (§2);
- the callback: :func:`parse_callback` — ``state``, RFC 9207 ``iss``, RFC 6749 §4.1.2.1 errors;
- the code exchange and refresh: :func:`code_token_request`, :func:`refresh_token_request`,
  :func:`parse_token_response` (RFC 6749 §4.1.3, §5.1, §5.2, §6; RFC 7636 §4.5).

ID token validation (OIDC Core §3.1.3.7) is in :mod:`client_sdk.id_token`. Nothing here imports an
HTTP library: requests are :class:`HttpRequest` values the caller sends however it likes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from client_sdk.dialects import canonical_claims, merge_claims
from client_sdk.errors import (
    AuthorizationError,
    InvalidCallback,
    ProviderError,
    TokenTypeMismatch,
    UnmetAuthenticationRequirements,
)

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "PendingAuthorization",
    "ProviderMetadata",
    "Requirement",
    "TokenResponse",
    "authorization_params",
    "authorization_url",
    "code_challenge_s256",
    "code_token_request",
    "new_authorization",
    "new_code_verifier",
    "parse_callback",
    "parse_provider_metadata",
    "parse_token_response",
    "refresh_token_request",
    "union_scope",
]


@dataclass(frozen=True)
class HttpRequest:
    """A request to send: the form body is already encoded."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    """A response as plain data. ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Requirement:
    """What a token must show: one of ``acr_values`` and an ``auth_time`` within ``max_age``;
    the ``scope`` values it must carry (beyond the client's own); and, from a claims challenge,
    the ``claims`` request it was obtained with (canonical JSON, see
    :func:`client_sdk.dialects.canonical_claims`).

    The default ``Requirement()`` asks for nothing: it is the everyday token's key in the cache.
    """

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    scope: tuple[str, ...] = ()
    claims: str | None = None
    #: RFC 9396: the transaction the user must approve, canonical JSON of the array a
    #: transaction-bound challenge named (docs/transactional.md); only a token approved for exactly
    #: it meets the requirement.
    authorization_details: str | None = None

    @property
    def is_default(self) -> bool:
        return self == Requirement()

    @property
    def single_use(self) -> bool:
        """Whether a token obtained for this requirement goes with one API request only: the
        approval of a transaction, which the API spends (docs/sdk.md, "Which token is sent")."""
        return self.authorization_details is not None

    def describe(self) -> str:
        parts = []
        if self.acr_values:
            parts.append("acr_values=" + " ".join(self.acr_values))
        if self.max_age is not None:
            parts.append(f"max_age={self.max_age}")
        if self.scope:
            parts.append("scope=" + " ".join(self.scope))
        if self.claims is not None:
            parts.append("claims=" + self.claims)
        if self.authorization_details is not None:
            parts.append("authorization_details=" + self.authorization_details)
        return ", ".join(parts) or "no requirement"


def union_scope(*scopes: str | Sequence[str]) -> str:
    """Scope values of all ``scopes``, each once, in the order first seen (RFC 6749 §3.3)."""
    values: list[str] = []
    for scope in scopes:
        for value in scope.split() if isinstance(scope, str) else scope:
            if value not in values:
                values.append(value)
    return " ".join(values)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    iss_parameter_supported: bool = False
    token_endpoint_auth_methods: tuple[str, ...] = ("client_secret_basic",)
    id_token_signing_algs: tuple[str, ...] = ("RS256",)
    #: RFC 9449 §5.1 ``dpop_signing_alg_values_supported``; ``None`` when not advertised.
    dpop_signing_algs: tuple[str, ...] | None = None
    #: CIBA Core §4: where backchannel authentication requests go; ``None``: no CIBA.
    backchannel_authentication_endpoint: str | None = None
    backchannel_token_delivery_modes: tuple[str, ...] = ()


def parse_provider_metadata(document: Mapping[str, Any], issuer: str) -> ProviderMetadata:
    """Read the discovery document fetched from ``{issuer}/.well-known/openid-configuration``."""
    # OIDC Discovery §4.3: "The issuer value returned MUST be identical to the Issuer URL that was
    # used as the prefix to /.well-known/openid-configuration to retrieve the configuration
    # information."
    if document.get("issuer") != issuer:
        raise ProviderError(
            f"discovery document names issuer {document.get('issuer')!r}, expected {issuer!r}"
        )
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(name), str):
            raise ProviderError(f"discovery document has no {name}")
    methods = document.get("code_challenge_methods_supported")
    # RFC 7636 §4.2: "If the client is capable of using "S256", it MUST use "S256"". A provider
    # that says it lacks S256 cannot be used; we never fall back to "plain".
    if isinstance(methods, list) and "S256" not in methods:
        raise ProviderError("the provider does not support PKCE S256 (code_challenge_methods)")
    auth_methods = document.get("token_endpoint_auth_methods_supported")
    algs = document.get("id_token_signing_alg_values_supported")
    dpop_algs = document.get("dpop_signing_alg_values_supported")
    backchannel = document.get("backchannel_authentication_endpoint")
    modes = document.get("backchannel_token_delivery_modes_supported")
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        userinfo_endpoint=document.get("userinfo_endpoint"),
        end_session_endpoint=document.get("end_session_endpoint"),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
        token_endpoint_auth_methods=tuple(auth_methods)
        if isinstance(auth_methods, list)
        else ("client_secret_basic",),
        id_token_signing_algs=tuple(a for a in algs if a != "none")
        if isinstance(algs, list)
        else ("RS256",),
        dpop_signing_algs=tuple(a for a in dpop_algs if isinstance(a, str))
        if isinstance(dpop_algs, list)
        else None,
        backchannel_authentication_endpoint=backchannel if isinstance(backchannel, str) else None,
        backchannel_token_delivery_modes=tuple(m for m in modes if isinstance(m, str))
        if isinstance(modes, list)
        else (),
    )


def new_code_verifier() -> str:
    """RFC 7636 §4.1: 32 random octets, base64url-encoded: 43 unreserved characters."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def code_challenge_s256(verifier: str) -> str:
    """RFC 7636 §4.2: ``code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PendingAuthorization:
    """Everything needed to finish an authorization request when its callback arrives.

    It holds secrets (``code_verifier``, ``nonce``): keep it server-side (e.g. in a signed,
    server-side session), never in a URL.
    """

    issuer: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str
    nonce: str
    code_verifier: str
    requirement: Requirement = field(default_factory=Requirement)
    prompt: str | None = None
    login_hint: str | None = None
    essential_acr: bool = False
    previous_sub: str | None = None
    created_at: float = 0.0
    resource: str | None = None
    dpop_jkt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "requirement"}
        data["acr_values"] = list(self.requirement.acr_values)
        data["max_age"] = self.requirement.max_age
        data["required_scope"] = list(self.requirement.scope)
        data["claims"] = self.requirement.claims
        data["authorization_details"] = self.requirement.authorization_details
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingAuthorization:
        # A dict stored by an older version has no required_scope, claims, resource or
        # authorization_details.
        requirement_keys = (
            "acr_values", "max_age", "required_scope", "claims", "authorization_details",
        )  # fmt: skip
        fields = {k: v for k, v in data.items() if k not in requirement_keys}
        requirement = Requirement(
            tuple(data.get("acr_values") or ()),
            data.get("max_age"),
            tuple(data.get("required_scope") or ()),
            data.get("claims"),
            data.get("authorization_details"),
        )
        return cls(requirement=requirement, **fields)


def new_authorization(
    *,
    issuer: str,
    client_id: str,
    redirect_uri: str,
    scope: str,
    requirement: Requirement,
    now: float,
    prompt: str | None = None,
    login_hint: str | None = None,
    essential_acr: bool = False,
    previous_sub: str | None = None,
    resource: str | None = None,
    dpop_jkt: str | None = None,
    random: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> PendingAuthorization:
    """Create fresh ``state``, ``nonce`` and PKCE verifier for one authorization request.

    The request's ``scope`` is ``scope`` and the requirement's scope values together (an
    ``insufficient_scope`` answer asks for both); ``resource`` is sent as RFC 8707 §2 asks;
    ``dpop_jkt`` (RFC 9449 §10) binds the code to the client's DPoP key.
    """
    if essential_acr and not requirement.acr_values:
        essential_acr = False  # nothing to make essential
    return PendingAuthorization(
        issuer=issuer,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=union_scope(scope, requirement.scope),
        state=random(),
        nonce=random(),
        code_verifier=new_code_verifier(),
        requirement=requirement,
        prompt=prompt,
        login_hint=login_hint,
        essential_acr=essential_acr,
        previous_sub=previous_sub,
        created_at=now,
        resource=resource,
        dpop_jkt=dpop_jkt,
    )


def authorization_params(pending: PendingAuthorization) -> dict[str, str]:
    """The query parameters of the authorization request (OIDC Core §3.1.2.1, RFC 9470 §4)."""
    params = {
        "response_type": "code",
        "client_id": pending.client_id,
        "redirect_uri": pending.redirect_uri,
        "scope": pending.scope,
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": code_challenge_s256(pending.code_verifier),
        "code_challenge_method": "S256",
    }
    requirement = pending.requirement
    # RFC 9470 §4: the client uses the challenge's acr_values and max_age, when present, as the
    # OIDC authorization request parameters of the same names.
    if requirement.acr_values:
        params["acr_values"] = " ".join(requirement.acr_values)
    if requirement.max_age is not None:
        params["max_age"] = str(requirement.max_age)
    claims: dict[str, Any] = json.loads(requirement.claims) if requirement.claims else {}
    if pending.essential_acr:
        # OIDC Core §5.5.1.1: an essential acr request; the provider answers
        # unmet_authentication_requirements rather than issue a lower level. Merged into the
        # claims a claims challenge asked for; the challenge's own id_token.acr, if any, wins.
        acr = {"essential": True, "values": list(requirement.acr_values)}
        claims = merge_claims(claims, {"id_token": {"acr": acr}})
    if claims:
        # OIDC Core §5.5: the claims parameter, a JSON object (for a claims challenge, the claims
        # it named, decoded).
        params["claims"] = canonical_claims(claims)
    if requirement.authorization_details is not None:
        # RFC 9396 §2: "authorization_details ... a JSON array of objects" — the transaction a
        # transaction-bound challenge named, for the user to approve at the provider (the
        # redirect path of docs/transactional.md; CIBA sends the same text).
        params["authorization_details"] = requirement.authorization_details
    if pending.resource is not None:
        # RFC 8707 §2: "resource ... the target service or resource to which access is being
        # requested"; the access token's audience.
        params["resource"] = pending.resource
    if pending.dpop_jkt is not None:
        # RFC 9449 §10: "dpop_jkt: JWK Thumbprint [RFC7638] of the proof-of-possession public
        # key using the SHA-256 hash function"; the code can then be redeemed only with a proof
        # signed by that key, so a stolen code is of no use to another client.
        params["dpop_jkt"] = pending.dpop_jkt
    if pending.prompt is not None:
        params["prompt"] = pending.prompt
    if pending.login_hint is not None:
        params["login_hint"] = pending.login_hint
    return params


def authorization_url(metadata: ProviderMetadata, pending: PendingAuthorization) -> str:
    endpoint = metadata.authorization_endpoint
    separator = "&" if urlsplit(endpoint).query else "?"
    return endpoint + separator + urlencode(authorization_params(pending))


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
        raise InvalidCallback(f"the callback repeats the {name!r} parameter")
    return values[0]


def parse_callback(
    callback_url: str, pending: PendingAuthorization, metadata: ProviderMetadata
) -> str:
    """Check the authorization response and return its ``code``.

    Raises :class:`InvalidCallback` when ``state`` or ``iss`` do not match,
    :class:`UnmetAuthenticationRequirements` / :class:`AuthorizationError` for error responses.
    """
    parts = urlsplit(callback_url)
    expected = urlsplit(pending.redirect_uri)
    if (parts.scheme, parts.hostname, parts.path) != (
        expected.scheme,
        expected.hostname,
        expected.path,
    ):
        raise InvalidCallback("the callback URL is not the redirect URI of this request")
    query = parse_qs(parts.query, keep_blank_values=True)
    # RFC 6749 §10.12: the client "MUST implement CSRF protection for its redirection URI" — the
    # state value binds the response to this user agent's request.
    if _single(query, "state") != pending.state:
        raise InvalidCallback("the callback's state does not match the request (possible CSRF)")
    iss = _single(query, "iss")
    # RFC 9207 §2.4: "If the value does not match the expected issuer identifier, clients MUST
    # reject the authorization response and MUST NOT proceed with the authorization grant."
    if iss is not None and iss != metadata.issuer:
        raise InvalidCallback(f"the callback's iss {iss!r} is not the issuer {metadata.issuer!r}")
    # RFC 9207 §2.4: clients "MUST reject authorization responses without the iss parameter from
    # authorization servers that do support the parameter".
    if iss is None and metadata.iss_parameter_supported:
        raise InvalidCallback("the callback has no iss parameter, but the provider sends one")
    error = _single(query, "error")
    if error is not None:
        description = _single(query, "error_description")
        uri = _single(query, "error_uri")
        if error == "unmet_authentication_requirements":
            raise UnmetAuthenticationRequirements(error, description, uri)
        raise AuthorizationError(error, description, uri)
    code = _single(query, "code")
    if not code:
        raise InvalidCallback("the callback has neither code nor error")
    return code


def _client_auth(
    metadata: ProviderMetadata, client_id: str, client_secret: str | None, form: dict[str, str]
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    if client_secret is None:
        form["client_id"] = client_id  # RFC 6749 §4.1.3: a public client identifies itself
    elif "client_secret_basic" in metadata.token_endpoint_auth_methods:
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
        pair = f"{_form_escape(client_id)}:{_form_escape(client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    else:
        form["client_id"] = client_id
        form["client_secret"] = client_secret
    return headers


def _form_escape(value: str) -> str:
    return urlencode({"": value})[1:]


def code_token_request(
    metadata: ProviderMetadata,
    pending: PendingAuthorization,
    code: str,
    client_secret: str | None = None,
) -> HttpRequest:
    """RFC 6749 §4.1.3 with the RFC 7636 §4.5 ``code_verifier``."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        # RFC 6749 §4.1.3: redirect_uri is "REQUIRED, if the "redirect_uri" parameter was
        # included in the authorization request ... and their values MUST be identical."
        "redirect_uri": pending.redirect_uri,
        "code_verifier": pending.code_verifier,
    }
    if pending.resource is not None:
        form["resource"] = pending.resource  # RFC 8707 §2.2
    headers = _client_auth(metadata, pending.client_id, client_secret, form)
    return HttpRequest("POST", metadata.token_endpoint, headers, urlencode(form).encode())


def refresh_token_request(
    metadata: ProviderMetadata,
    client_id: str,
    refresh_token: str,
    client_secret: str | None = None,
    resource: str | None = None,
) -> HttpRequest:
    """RFC 6749 §6, with the RFC 8707 §2.2 ``resource`` the grant was for, if any."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if resource is not None:
        form["resource"] = resource
    headers = _client_auth(metadata, client_id, client_secret, form)
    return HttpRequest("POST", metadata.token_endpoint, headers, urlencode(form).encode())


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    token_type: str
    expires_in: int | None
    refresh_token: str | None
    id_token: str | None
    scope: str | None


def json_body(response: HttpResponse) -> Any:
    """The response's body as JSON, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def oauth_error(body: Any) -> tuple[str | None, str | None]:
    """RFC 6749 §5.2's ``error`` and ``error_description`` of an error body (the same in every
    endpoint that borrows it: CIBA §13, RFC 9449 §8); each ``None`` unless it is a string."""
    if not isinstance(body, dict):
        return None, None
    error, description = body.get("error"), body.get("error_description")
    return (
        error if isinstance(error, str) else None,
        description if isinstance(description, str) else None,
    )


def refusal(endpoint: str, status: int, error: str | None, description: str | None) -> str:
    """The message of an endpoint's refusal: its status, then its error code and description."""
    return (
        f"{endpoint} answered {status}"
        + (f": {error}" if error else "")
        + (f" ({description})" if description else "")
    )


def parse_token_response(
    response: HttpResponse,
    *,
    token_type: str = "Bearer",  # noqa: S107 - a token type, not a secret
) -> TokenResponse:
    """RFC 6749 §5.1 (success) and §5.2 (error). ``token_type``: the type asked for —
    ``Bearer``, or ``DPoP`` when the request carried a DPoP proof (RFC 9449 §5)."""
    body = json_body(response)
    if response.status != 200:
        error, description = oauth_error(body)
        raise ProviderError(
            refusal("the token endpoint", response.status, error, description),
            status_code=response.status,
            error=error,
            error_description=description,
        )
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise ProviderError("the token response has no access_token", status_code=200)
    received = body.get("token_type")
    # RFC 6749 §7.1: "The client MUST NOT use an access token if it does not understand the token
    # type." This SDK speaks Bearer (RFC 6750) and DPoP (RFC 9449); the comparison is
    # case-insensitive (§5.1).
    if not isinstance(received, str) or received.lower() not in ("bearer", "dpop"):
        raise ProviderError(f"unsupported token_type {received!r}", status_code=200)
    # RFC 9449 §5: "A token_type of DPoP MUST be included in the access token response to signal
    # to the client that the access token was bound to its DPoP key". A client that sent a proof
    # and gets a Bearer token refuses it rather than fall back to a token anyone who steals it
    # can use (the protection it was configured for); one that sent none cannot use a DPoP token.
    if received.lower() != token_type.lower():
        raise TokenTypeMismatch(
            f"the provider issued a token of type {received!r}, but {token_type} was asked for"
            + (
                ": it did not bind the token to the DPoP key (is DPoP supported there?)"
                if token_type.lower() == "dpop"
                else ""
            ),
            expected=token_type,
            received=received,
        )
    expires_in = body.get("expires_in")
    return TokenResponse(
        access_token=body["access_token"],
        token_type="DPoP" if received.lower() == "dpop" else "Bearer",
        expires_in=expires_in if isinstance(expires_in, int) and expires_in >= 0 else None,
        refresh_token=body.get("refresh_token")
        if isinstance(body.get("refresh_token"), str)
        else None,
        id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
        scope=body.get("scope") if isinstance(body.get("scope"), str) else None,
    )
