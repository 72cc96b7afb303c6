"""The OpenID Connect client that obtains tokens: the :class:`~client_sdk.flow.TokenSource` both
adapters use.

It runs the protocol steps of :mod:`client_sdk.protocol` over a
:class:`~client_sdk.transport.Transport`, lets an authenticator take the user through the login,
validates ID tokens (:mod:`client_sdk.id_token`, OIDC Core §3.1.3.7) and keeps tokens in a
:class:`~client_sdk.tokens.TokenCache`, one per requirement. It also remembers which requirement
each API route asked for (RFC 9470 §4-5), so a later call to that route is sent with the
stepped-up token while that token still meets the requirement.

Without a configured issuer it learns one from the API's RFC 9728 protected resource metadata
(:meth:`OIDCClient.resource_metadata`), and then also sends that metadata's ``resource`` as the
RFC 8707 resource indicator. With an issuer, metadata that does not list it is refused
(:class:`~client_sdk.errors.IssuerNotListed`).

With DPoP on (``dpop=``, RFC 9449) it holds one :class:`~client_sdk.dpop_client.DPoPSigner`:
every token request carries a proof (§5) and every authorization request the key's
``dpop_jkt`` (§10); the token response must then say ``token_type`` ``DPoP``; a ``400
use_dpop_nonce`` is answered once with the provider's nonce (§8). The adapters ask
:meth:`OIDCClient.dpop_proof` for the proof of each API call.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from client_sdk.authenticators.base import Authenticator, LoginRequest
from client_sdk.authenticators.ciba import BackchannelLogin, CibaAuthenticator
from client_sdk.challenges import StepUpChallenge
from client_sdk.dpop import DPoPKey
from client_sdk.dpop_client import DPoPSigner, key_for_provider
from client_sdk.errors import (
    AuthenticatorError,
    ConfigurationError,
    DPoPNonceRejected,
    IssuerNotListed,
    ProviderError,
    ResourceMetadataError,
    ScopeNotGranted,
    TokenTypeMismatch,
)
from client_sdk.flow import Route
from client_sdk.hooks import (
    AuthorizationRequested,
    Event,
    Hook,
    ProviderExchange,
    StepUpChallenged,
    TokenReused,
    TokensIssued,
    emit_all,
)
from client_sdk.id_token import DEFAULT_LEEWAY, UnknownKeyId, validate_id_token
from client_sdk.protocol import (
    HttpRequest,
    HttpResponse,
    PendingAuthorization,
    ProviderMetadata,
    Requirement,
    TokenResponse,
    authorization_params,
    authorization_url,
    code_token_request,
    new_authorization,
    parse_callback,
    parse_provider_metadata,
    parse_token_response,
    refresh_token_request,
)
from client_sdk.resource_metadata import (
    ProtectedResourceMetadata,
    parse_resource_metadata,
    resource_matches,
)
from client_sdk.tokens import TokenCache, TokenSet
from client_sdk.transport import Transport

__all__ = ["OIDCClient"]


def _now() -> float:
    return time.time()  # looked up at each call, so freezegun and monkeypatching apply


class OIDCClient:
    """Obtains, refreshes and steps up tokens for one client at one provider.

    ``issuer=None``: learn it from the first API that challenges (RFC 9728); the client then
    stays with that issuer, and with that API's ``resource`` (RFC 8707), unless ``resource`` is
    given. ``resource``: sent on every authorization, code and refresh request.

    ``dpop``: DPoP-bound tokens (RFC 9449) — a :class:`~client_sdk.dpop.DPoPKey` to sign every
    proof with, or ``True`` for a new key that lives as long as this client, made when the
    discovery document is read: ES256 if the provider lists it, else the first listed algorithm
    the SDK can make (RFC 9449 §5.1). Off by default.
    """

    def __init__(
        self,
        issuer: str | None,
        client_id: str,
        *,
        authenticator: Authenticator,
        transport: Transport,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        scope: str = "openid",
        hooks: Sequence[Hook] = (),
        cache: TokenCache | None = None,
        essential_acr: bool = False,
        login_hint: str | None = None,
        leeway: int = DEFAULT_LEEWAY,
        clock: Callable[[], float] | None = None,
        resource: str | None = None,
        dpop: DPoPKey | bool = False,
    ) -> None:
        if not client_id:
            raise ConfigurationError("client_id is required: the client registered at the provider")
        if "openid" not in scope.split():
            scope = "openid " + scope  # ID tokens carry acr and auth_time: OIDC needs "openid"
        self.issuer = issuer
        self.client_id = client_id
        self.authenticator = authenticator
        self.transport = transport
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.hooks: list[Hook] = list(hooks)
        self.cache = cache if cache is not None else TokenCache()
        self.essential_acr = essential_acr
        self.login_hint = login_hint
        self.leeway = leeway
        self._client_secret = client_secret
        self._clock = clock if clock is not None else _now
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._jwks: Mapping[str, Any] | None = None
        self._routes: dict[Route, Requirement] = {}
        self.resource = resource
        # The resource of the API the issuer was discovered from (None: issuer or resource given).
        self._discovered_resource: str | None = None
        self._resource_documents: dict[str, ProtectedResourceMetadata] = {}
        if not (isinstance(dpop, DPoPKey) or dpop is True or dpop is False or dpop is None):
            raise ConfigurationError("dpop must be a DPoPKey, True (make one) or False")
        #: DPoP is on (a key given, or one to make once the provider's algorithms are known).
        self.dpop_enabled = dpop is not False and dpop is not None
        self._dpop_key = dpop if isinstance(dpop, DPoPKey) else None
        #: The DPoP signer (one key for every token of this client), made with the discovery
        #: document (RFC 9449 §5.1: the key's algorithm must be one the provider lists);
        #: ``None`` before it, and for Bearer tokens.
        self.dpop: DPoPSigner | None = None

    def __repr__(self) -> str:
        return f"OIDCClient(issuer={self.issuer!r}, client_id={self.client_id!r})"

    def now(self) -> float:
        return self._clock()

    @property
    def dpop_key(self) -> DPoPKey | None:
        """The key DPoP proofs are signed with (keep it to keep using its tokens), or ``None``:
        DPoP off, or (``dpop=True``) the provider's discovery document not read yet."""
        return self.dpop.key if self.dpop is not None else self._dpop_key

    def dpop_proof(self, method: str, url: str, token: TokenSet | None) -> str | None:
        """The ``DPoP`` header of an API request sent with ``token`` (RFC 9449 §7): a new proof
        with ``ath`` and the API's latest nonce; ``None`` for a Bearer token or none."""
        if token is None or not token.is_dpop:
            return None
        if self.dpop is None and self.dpop_enabled:
            self.metadata()  # a token from a shared cache: the key is made with discovery
        if self.dpop is None:
            raise ConfigurationError(
                "this token is DPoP-bound, but the client has no DPoP key: pass dpop= to sign "
                "its proofs"
            )
        return self.dpop.proof(method, url, access_token=token.access_token)

    def remember_dpop_nonce(self, route: Route, nonce: str) -> None:
        """Keep the nonce an API gave (RFC 9449 §9) for the next proof to it."""
        if self.dpop is not None:
            self.dpop.remember(route.origin, nonce)

    def emit(self, event: Event) -> None:
        emit_all(self.hooks, event)

    # --- provider documents -----------------------------------------------------------------

    def _send(self, request: HttpRequest, purpose: str) -> HttpResponse:
        response = self.transport(request)
        self.emit(ProviderExchange(request.method, request.url, response.status, purpose))
        return response

    def _get_json(self, url: str, purpose: str) -> dict[str, Any]:
        response = self._send(HttpRequest("GET", url, {"Accept": "application/json"}), purpose)
        try:
            document = response.json() if response.status == 200 else None
        except (ValueError, UnicodeDecodeError):
            document = None
        if not isinstance(document, dict):
            raise ProviderError(
                f"{purpose} at {url} answered {response.status}, not a JSON object",
                status_code=response.status,
            )
        return document

    def metadata(self) -> ProviderMetadata:
        """The provider's discovery document (OIDC Discovery §4), fetched once."""
        with self._lock:
            if self._metadata is None:
                issuer = self.issuer
                if issuer is None:
                    raise ConfigurationError(
                        "no issuer yet: pass issuer=, or call the API first so that the SDK "
                        "learns it from the API's resource_metadata (RFC 9728)"
                    )
                url = issuer.rstrip("/") + "/.well-known/openid-configuration"
                metadata = parse_provider_metadata(self._get_json(url, "discovery"), issuer)
                if self.dpop_enabled:
                    # RFC 9449 §5.1: proofs signed with an algorithm the provider does not list
                    # would be refused: refuse the key now (or make one it lists).
                    key = key_for_provider(self._dpop_key, metadata.dpop_signing_algs)
                    self.dpop = DPoPSigner(key, self.now)
                self._metadata = metadata
            return self._metadata

    def resource_metadata(self, route: Route, url: str) -> None:
        """RFC 9728: read the API's metadata at ``url`` (once per URL) for a request to ``route``.

        Without an issuer, take the first of its ``authorization_servers`` (and its ``resource``
        as the RFC 8707 resource indicator, unless one was given). With one, refuse metadata that
        does not list it (:class:`IssuerNotListed`).
        """
        with self._lock:
            known = self._resource_documents.get(url)
        if known is None:
            try:
                document = self._get_json(url, "resource_metadata")
            except ProviderError as exc:
                raise ResourceMetadataError(
                    f"the API's protected resource metadata could not be read: {exc}", url=url
                ) from None
            known = parse_resource_metadata(document, url)
        # RFC 9728 §3.3: metadata for another resource "MUST NOT be used".
        if not resource_matches(known.resource, route.origin, route.path):
            raise ResourceMetadataError(
                f"the protected resource metadata at {url} is for {known.resource!r}, not for "
                f"{route.origin}{route.path} (RFC 9728 §3.3)",
                url=url,
            )
        with self._lock:
            self._resource_documents[url] = known
            if self.issuer is None:
                self.issuer = known.authorization_servers[0]
                if self.resource is None:
                    self.resource = self._discovered_resource = known.resource
            issuer = self.issuer
            bound = self._discovered_resource
        if issuer not in known.authorization_servers:
            raise IssuerNotListed(
                f"the API at {route.origin} trusts {', '.join(known.authorization_servers)}, "
                f"not {issuer}: a token from {issuer} would not be accepted there",
                url=url,
                issuer=issuer,
                listed=known.authorization_servers,
            )
        if bound is not None and known.resource != bound:
            raise ResourceMetadataError(
                f"this client learned its issuer from {bound} and asks for tokens for it; "
                f"{known.resource} is another API: use one client per API, or pass issuer= "
                "and resource=",
                url=url,
            )

    def _keys(self, *, refetch: bool = False) -> Mapping[str, Any]:
        metadata = self.metadata()
        with self._lock:
            if self._jwks is None or refetch:
                self._jwks = self._get_json(metadata.jwks_uri, "jwks")
            return self._jwks

    def _validate(self, id_token: str, **checks: Any) -> dict[str, Any]:
        metadata = self.metadata()
        args = dict(
            issuer=metadata.issuer,
            client_id=self.client_id,
            algorithms=metadata.id_token_signing_algs,
            leeway=self.leeway,
            **checks,
        )
        try:
            return validate_id_token(id_token, jwks=self._keys(), now=self.now(), **args)
        except UnknownKeyId:
            # The provider rotated its keys: fetch the JWKS once more, then give up.
            return validate_id_token(
                id_token, jwks=self._keys(refetch=True), now=self.now(), **args
            )

    # --- TokenSource: what the step-up core asks for ---------------------------------------

    def token_for(self, route: Route) -> TokenSet | None:
        """The token for ``route``: a remembered requirement's token, else the everyday one;
        ``None`` while the issuer is unknown (the core then discovers it)."""
        if self.issuer is None:
            return None
        known = self._routes.get(route)
        if known is not None:
            tokens = self.cache.find(known, self.now())
            if tokens is not None:
                self.emit(TokenReused(known, tokens.acr))
                return tokens
        return self.login()

    def login(self, requirement: Requirement | None = None) -> TokenSet:
        """A token for ``requirement``: cached if still good, refreshed, or from a new login."""
        requirement = requirement or Requirement()

        def fetch() -> TokenSet:
            current = self.cache.get(requirement)
            if current is not None and current.refresh_token is not None:
                refreshed = self._refresh(current)
                if refreshed is not None:
                    return refreshed
            return self._authorize(requirement, None, previous_sub=None)

        tokens = self.cache.obtain(
            requirement, reuse=lambda t: t.satisfies(requirement, self.now()), fetch=fetch
        )
        assert tokens is not None
        return tokens

    def refresh(self, rejected: TokenSet) -> TokenSet | None:
        """Refresh a token the API called ``invalid_token``; ``None`` when it cannot be."""
        requirement = rejected.requirement
        return self.cache.obtain(
            requirement,
            reuse=lambda t: (
                t.access_token != rejected.access_token and not t.is_expired(self.now())
            ),
            fetch=lambda: self._refresh(rejected),
        )

    def step_up(
        self, route: Route, challenge: StepUpChallenge, requirement: Requirement, rejected: TokenSet
    ) -> TokenSet:
        """Authorize again for ``requirement``: RFC 9470 §4-5 (the challenge's ``acr_values`` and
        ``max_age``), or the scope values or the claims another dialect asked for.

        Concurrent callers challenged for the same requirement share one step-up — except for a
        transaction's approval, which the cache hands to one request only
        (:attr:`Requirement.single_use`): the same payment made again is approved again.
        """
        if not requirement.single_use:
            # A transaction's approval is for that transaction only: the route's next request
            # (another transfer) goes with the everyday token and gets its own challenge.
            with self._lock:
                self._routes[route] = requirement
        self.emit(StepUpChallenged(challenge, requirement))

        def reuse(t: TokenSet) -> bool:
            return t.access_token != rejected.access_token and t.satisfies(requirement, self.now())

        tokens = self.cache.obtain(
            requirement,
            reuse=reuse,
            fetch=lambda: self._authorize(requirement, challenge, previous_sub=rejected.sub),
        )
        assert tokens is not None
        return tokens

    def complete_authorization(self, callback_url: str, pending: PendingAuthorization) -> TokenSet:
        """Finish an authorization started elsewhere (:class:`StepUpRequired`); cache the tokens."""
        tokens = self._finish(callback_url, pending)
        self.cache.put(pending.requirement, tokens)
        return tokens

    # --- the grants ----------------------------------------------------------------------------

    def _build(
        self, redirect_uri: str, requirement: Requirement, previous_sub: str | None
    ) -> tuple[str, PendingAuthorization]:
        metadata = self.metadata()
        pending = new_authorization(
            issuer=metadata.issuer,
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            scope=self.scope,
            requirement=requirement,
            now=self.now(),
            login_hint=self.login_hint,
            essential_acr=self.essential_acr,
            previous_sub=previous_sub,
            resource=self.resource,
            dpop_jkt=self.dpop.jkt if self.dpop is not None else None,
        )
        url = authorization_url(metadata, pending)
        params = authorization_params(pending)
        self.emit(AuthorizationRequested(url, params, requirement))
        return url, pending

    def _authorize(
        self,
        requirement: Requirement,
        challenge: StepUpChallenge | None,
        *,
        previous_sub: str | None,
    ) -> TokenSet:
        if isinstance(self.authenticator, CibaAuthenticator):
            return self._backchannel(requirement, challenge, previous_sub=previous_sub)
        login = LoginRequest(
            issuer=self.metadata().issuer,
            requirement=requirement,
            redirect_uri=self.redirect_uri,
            build=lambda uri: self._build(uri, requirement, previous_sub),
            emit=self.emit,
            challenge=challenge,
        )
        callback_url = self.authenticator.authenticate(login)
        if login.pending is None:
            raise AuthenticatorError("the authenticator returned without an authorization request")
        return self._finish(callback_url, login.pending)

    def _backchannel(
        self,
        requirement: Requirement,
        challenge: StepUpChallenge | None,
        *,
        previous_sub: str | None,
    ) -> TokenSet:
        """CIBA poll mode (:class:`CibaAuthenticator`): the user approves on their device; the
        ID token is checked as for a code grant, without a nonce (CIBA §10.1.1 has none)."""
        assert isinstance(self.authenticator, CibaAuthenticator)
        metadata = self.metadata()
        response = self.authenticator.backchannel(BackchannelLogin(
            metadata, self.client_id, self._client_secret, self.scope, requirement, challenge,
            self._send, self.resource,
        ))  # fmt: skip
        if response.id_token is None:
            raise ProviderError("the CIBA token response has no id_token", status_code=200)
        claims = self._validate(
            response.id_token,
            nonce=None,
            requirement=requirement,
            previous_sub=previous_sub,
            access_token=response.access_token,
        )
        now = self.now()
        tokens = TokenSet(
            access_token=response.access_token,
            expires_at=None if response.expires_in is None else now + response.expires_in,
            refresh_token=response.refresh_token,
            id_token=response.id_token,
            scope=response.scope if response.scope is not None else self.scope,
            claims=claims,
            requirement=requirement,
        )
        self.emit(TokensIssued(
            "urn:openid:params:grant-type:ciba", requirement, claims,
            _peek(response.access_token), response.scope, response.expires_in,
        ))  # fmt: skip
        return tokens

    def _finish(self, callback_url: str, pending: PendingAuthorization) -> TokenSet:
        metadata = self.metadata()
        code = parse_callback(callback_url, pending, metadata)
        request = code_token_request(metadata, pending, code, self._client_secret)
        response = self._token_request(request, "token")
        if response.id_token is None:
            raise ProviderError("the token response has no id_token", status_code=200)
        claims = self._validate(
            response.id_token,
            nonce=pending.nonce,
            requirement=pending.requirement,
            previous_sub=pending.previous_sub,
            access_token=response.access_token,
        )
        # RFC 6749 §5.1: scope is "OPTIONAL, if identical to the scope requested by the client".
        granted = response.scope if response.scope is not None else pending.scope
        missing = [v for v in pending.requirement.scope if v not in granted.split()]
        if missing:
            # RFC 6749 §3.3 lets the provider grant less; the API would refuse the token again.
            raise ScopeNotGranted(
                f"the provider did not grant {' '.join(missing)} (granted: {granted or 'none'}); "
                "the API requires it",
                missing=missing,
            )
        now = self.now()
        tokens = TokenSet(
            access_token=response.access_token,
            token_type=response.token_type,
            expires_at=None if response.expires_in is None else now + response.expires_in,
            refresh_token=response.refresh_token,
            id_token=response.id_token,
            scope=granted,
            claims=claims,
            requirement=pending.requirement,
        )
        self.emit(
            TokensIssued(
                "authorization_code",
                pending.requirement,
                claims,
                _peek(response.access_token),
                response.scope,
                response.expires_in,
            )
        )
        return tokens

    def _token_request(self, request: HttpRequest, purpose: str) -> TokenResponse:
        """Send a token request and read its answer; with DPoP, with proofs (RFC 9449 §5, §8)."""
        if self.dpop is None:
            return parse_token_response(self._send(request, purpose))
        response = self.dpop.token_request(request, lambda r: self._send(r, purpose))
        return parse_token_response(response, token_type="DPoP")

    def _refresh(self, current: TokenSet) -> TokenSet | None:
        if current.refresh_token is None:
            return None
        metadata = self.metadata()
        request = refresh_token_request(
            metadata, self.client_id, current.refresh_token, self._client_secret, self.resource
        )
        try:
            response = self._token_request(request, "refresh")
        except (TokenTypeMismatch, DPoPNonceRejected):
            raise  # not a spent refresh token: a login would meet the same answer
        except ProviderError:
            # invalid_grant and friends: this refresh token is spent; a login will be needed.
            self.cache.discard(current.requirement, current)
            return None
        claims: Mapping[str, Any] = current.claims
        if response.id_token is not None:
            # OIDC Core §12.2: a refreshed ID token keeps iss, sub, aud and auth_time; its nonce,
            # if present, is the original one.
            claims = self._validate(
                response.id_token,
                nonce=current.claims.get("nonce"),
                refreshed=True,
                previous_sub=current.sub,
                access_token=response.access_token,
            )
        now = self.now()
        tokens = TokenSet(
            access_token=response.access_token,
            token_type=response.token_type,
            expires_at=None if response.expires_in is None else now + response.expires_in,
            # RFC 6749 §6: "The authorization server MAY issue a new refresh token, in which case
            # the client MUST discard the old refresh token and replace it with the new refresh
            # token."
            refresh_token=response.refresh_token or current.refresh_token,
            id_token=response.id_token or current.id_token,
            scope=response.scope or current.scope,
            claims=claims,
            requirement=current.requirement,
        )
        self.emit(
            TokensIssued(
                "refresh_token",
                current.requirement,
                claims,
                _peek(response.access_token),
                tokens.scope,
                response.expires_in,
            )
        )
        return tokens


def _peek(token: str) -> dict[str, Any]:
    """Decode a JWT's payload *without verifying it* — for display in hooks only."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
