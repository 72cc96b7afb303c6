"""The step-up core: one pure step machine that both HTTP adapters drive.

Like httpx's ``Auth.auth_flow``, :func:`step_up_flow` is a generator with no I/O. It yields
actions and receives their results:

- :class:`Send` — send the API request with this token (or, to discover the issuer, without one);
  the result is an :class:`ApiReply`;
- :class:`GetToken` — a token for this route (cached, refreshed or from a first login); ``None``
  when the client has no issuer yet;
- :class:`ResourceMetadata` — read the API's RFC 9728 metadata at this URL: learn the issuer from
  it, or check that the issuer is one it lists; the result is ``None``;
- :class:`Refresh` — refresh this rejected token; the result is a :class:`TokenSet` or ``None``;
- :class:`StepUp` — obtain a token for this requirement (a new authorization); a :class:`TokenSet`;
- :class:`DPoPNonce` — remember the nonce this API gave (RFC 9449 §9, ``DPoP-Nonce``) for the
  next proof to it; the result is ``None``.

Its rules (DESIGN "semantics"; RFC 9470 §4-5; RFC 6750 §3.1; RFC 9728 §5):

0. No issuer configured: the request goes without credentials; the ``401``'s ``resource_metadata``
   names the metadata, whose ``authorization_servers`` give the issuer; then the request is sent
   with a token.
1. ``401`` with ``error="invalid_token"``: refresh once if the token has a refresh token, resend.
2. A challenge of one of the :mod:`client_sdk.dialects` — ``insufficient_user_authentication``,
   ``insufficient_scope``, ``insufficient_claims`` — is answered by one new authorization for
   :func:`requirement_for` it (after reading its ``resource_metadata``, if any), and the request
   is resent once. Never a refresh to answer one: refresh never upgrades the authentication
   (OIDC Core §12.2 keeps ``acr`` and ``auth_time``), nor widens scope (RFC 6749 §6).
3. A challenge to the new token raises :class:`StepUpFailed` carrying both challenges — the
   subclass of the second challenge's dialect (:class:`ScopeNotGranted`,
   :class:`ClaimsNotSatisfied`).

4. DPoP (RFC 9449 §9): a ``401`` whose ``DPoP`` challenge is ``use_dpop_nonce``, to a request
   with a DPoP-bound token, is answered by sending the same request once more with the nonce of
   its ``DPoP-Nonce`` (a new proof). That retry belongs to the send it answers: it consumes
   neither the refresh nor the step-up, and a second ``use_dpop_nonce`` right after it raises
   :class:`DPoPNonceRejected`. The new token of a step-up is bound to the same key.

So a request is sent at most four times (without credentials, initial, after refresh, after the
new authorization), plus at most one nonce retry for each of the last three: never a loop.
:class:`Driver` runs the machine against a :class:`TokenSource` and leaves only :class:`Send` to
the adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, MutableMapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from client_sdk.challenges import StepUpChallenge, parse_www_authenticate
from client_sdk.dialects import (
    INSUFFICIENT_CLAIMS,
    INSUFFICIENT_SCOPE,
    authorization_challenge,
    canonical_claims,
    resource_metadata_url,
)
from client_sdk.dpop_client import resource_nonce_request, valid_nonce
from client_sdk.errors import (
    ChallengeParseError,
    ClaimsNotSatisfied,
    DPoPNonceRejected,
    InvalidClaimsChallenge,
    ResourceMetadataError,
    ScopeNotGranted,
    StepUpFailed,
)
from client_sdk.hooks import ApiRequestSent, ApiResponseReceived, Event
from client_sdk.protocol import Requirement, union_scope
from client_sdk.tokens import TokenSet

__all__ = [
    "Action",
    "ApiReply",
    "DPoPNonce",
    "Driver",
    "GetToken",
    "Reading",
    "Refresh",
    "ResourceMetadata",
    "Route",
    "Send",
    "StepUp",
    "TokenSource",
    "read_reply",
    "requirement_for",
    "resolve",
    "set_authorization",
    "step_up_flow",
]


@dataclass(frozen=True)
class Route:
    """Where a request goes: the SDK remembers which requirement each route asked for."""

    method: str
    origin: str
    path: str

    @classmethod
    def of(cls, method: str, url: str) -> Route:
        parts = urlsplit(url)
        return cls(method.upper(), f"{parts.scheme}://{parts.netloc}".lower(), parts.path or "/")


@dataclass(frozen=True)
class ApiReply:
    """What the core needs of an API response: its status, ``WWW-Authenticate`` values and
    ``DPoP-Nonce`` (RFC 9449 §9), if any."""

    status: int
    www_authenticate: tuple[str, ...] = ()
    dpop_nonce: str | None = None


@dataclass(frozen=True)
class Send:
    """Send the request with ``token``; ``None``: without credentials (issuer discovery)."""

    token: TokenSet | None
    attempt: int
    reason: str

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` value; ``None``: the request goes without one."""
        return None if self.token is None else self.token.authorization()


def set_authorization(
    headers: MutableMapping[str, str], send: Send, dpop: str | None = None
) -> None:
    """Put ``send``'s credentials in ``headers`` (an adapter's request headers), or none; with
    ``dpop``, the proof for this very send (RFC 9449 §7.1: ``Authorization: DPoP <token>`` and
    a ``DPoP`` header), which replaces the proof of an earlier send of the same request."""
    value = send.authorization
    if value is None:
        headers.pop("Authorization", None)
    else:
        headers["Authorization"] = value
    if dpop is None:
        headers.pop("DPoP", None)
    else:
        headers["DPoP"] = dpop


@dataclass(frozen=True)
class GetToken:
    route: Route


@dataclass(frozen=True)
class ResourceMetadata:
    """Read the RFC 9728 metadata at ``url`` for a request to ``route``."""

    route: Route
    url: str


@dataclass(frozen=True)
class Refresh:
    rejected: TokenSet


@dataclass(frozen=True)
class StepUp:
    route: Route
    challenge: StepUpChallenge
    requirement: Requirement
    rejected: TokenSet


@dataclass(frozen=True)
class DPoPNonce:
    """Remember ``nonce``, which the API of ``route`` gave in ``DPoP-Nonce`` (RFC 9449 §9)."""

    route: Route
    nonce: str


Action = Send | GetToken | ResourceMetadata | Refresh | StepUp | DPoPNonce
Flow = Generator[Action, "TokenSet | ApiReply | None", None]


def requirement_for(challenge: StepUpChallenge, current: Requirement | None = None) -> Requirement:
    """The requirement of the new authorization that answers ``challenge``, for a token that was
    obtained for ``current``.

    - RFC 9470 §4: the challenge's ``acr_values`` and ``max_age``, when present, replace the
      current ones; its ``authorization_details`` (a transaction-bound challenge) are the
      transaction the new token must be approved for;
    - RFC 6750 §3.1 ``insufficient_scope``: the union of the current scope values and the
      required ones, at the current level;
    - ``insufficient_claims``: the decoded claims request, at the current level and scope.

    Scope values and a claims request the current token was obtained for are kept, so answering
    one challenge never drops what answered another.
    """
    current = current or Requirement()
    if challenge.error == INSUFFICIENT_SCOPE:
        scope = tuple(union_scope(current.scope, challenge.scope).split())
        return Requirement(current.acr_values, current.max_age, scope, current.claims)
    if challenge.error == INSUFFICIENT_CLAIMS and challenge.claims is not None:
        claims = canonical_claims(challenge.claims)
        return Requirement(current.acr_values, current.max_age, current.scope, claims)
    details = None
    if challenge.authorization_details is not None:
        # A transaction-bound challenge (RFC 9396 entries): the approval of exactly these.
        details = json.dumps(challenge.authorization_details, sort_keys=True, separators=(",", ":"))
    return Requirement(
        tuple(challenge.acr_values), challenge.max_age, current.scope, current.claims, details
    )


@dataclass(frozen=True)
class Reading:
    """What one reply says to the core, read once.

    ``challenge``: one a new authorization answers (:mod:`client_sdk.dialects`);
    ``invalid_token``: a ``401`` with ``error="invalid_token"``; ``resource_metadata``: the
    RFC 9728 §5.1 URL the first OAuth challenge names.
    """

    challenge: StepUpChallenge | None = None
    invalid_token: bool = False
    resource_metadata: str | None = None


def read_reply(reply: ApiReply) -> Reading:
    """Read ``reply``'s challenges. A malformed ``WWW-Authenticate`` is not one the SDK can act
    on (the caller gets the response as it came), except a claims challenge whose ``claims``
    cannot be decoded: :class:`InvalidClaimsChallenge`."""
    if reply.status not in (401, 403) or not reply.www_authenticate:
        return Reading()
    try:
        challenges = parse_www_authenticate(list(reply.www_authenticate))
    except ChallengeParseError:
        return Reading()
    try:
        challenge = authorization_challenge(reply.status, challenges)
    except InvalidClaimsChallenge:
        raise
    except ChallengeParseError:
        challenge = None  # e.g. an RFC 9470 max_age that is not an integer
    invalid_token = reply.status == 401 and any(
        c.scheme in ("bearer", "dpop") and c.params.get("error") == "invalid_token"
        for c in challenges
    )
    return Reading(challenge, invalid_token, resource_metadata_url(challenges))


def _token(value: TokenSet | ApiReply | None) -> TokenSet:
    assert isinstance(value, TokenSet), f"expected a TokenSet, got {value!r}"
    return value


def _reply(value: TokenSet | ApiReply | None) -> ApiReply:
    assert isinstance(value, ApiReply), f"expected an ApiReply, got {value!r}"
    return value


def _exchange(
    route: Route, token: TokenSet, attempt: int, reason: str
) -> Generator[Action, TokenSet | ApiReply | None, tuple[ApiReply, int]]:
    """Send with ``token`` and return the reply and the attempt number it had; for a DPoP-bound
    token, remember the API's nonce and answer its ``use_dpop_nonce`` once (RFC 9449 §9)."""
    reply = _reply((yield Send(token, attempt, reason)))
    if not token.is_dpop:
        return reply, attempt
    if (nonce := valid_nonce(reply.dpop_nonce)) is not None:
        # §9: "the resource server MAY supply a new nonce value ... in the DPoP-Nonce header";
        # the next proof to this API carries the latest one.
        yield DPoPNonce(route, nonce)
    if resource_nonce_request(reply.status, reply.www_authenticate, reply.dpop_nonce) is None:
        return reply, attempt
    # §9: the resource server "responds to requests that do not include a nonce with an HTTP 401
    # (Unauthorized) response ... with use_dpop_nonce": the request again, once, with a new
    # proof carrying that nonce.
    attempt += 1
    reply = _reply((yield Send(token, attempt, "dpop_nonce")))
    if (nonce := valid_nonce(reply.dpop_nonce)) is not None:
        yield DPoPNonce(route, nonce)
    if resource_nonce_request(reply.status, reply.www_authenticate, reply.dpop_nonce) is not None:
        raise DPoPNonceRejected(
            f"the API at {route.origin}{route.path} asked again for a DPoP nonce after the proof "
            "carried the one it had just given (RFC 9449 §9); not retrying again",
            url=f"{route.origin}{route.path}",
            status_code=reply.status,
        )
    return reply, attempt


def step_up_flow(route: Route) -> Flow:
    """The step machine for one API request. Returns when the last reply is final."""
    attempt = 1
    found = yield GetToken(route)
    if found is None:
        # RFC 9728 §5: a request without credentials; the 401's challenge names the metadata.
        reply = _reply((yield Send(None, attempt, "initial")))
        if reply.status != 401:
            return  # the resource needs no token (or the answer is final anyway)
        url = read_reply(reply).resource_metadata
        if url is None:
            raise ResourceMetadataError(
                "no issuer was configured, and the API's 401 names no resource_metadata "
                "(RFC 9728 §5.1) to discover one from: pass the issuer"
            )
        yield ResourceMetadata(route, url)
        found = yield GetToken(route)
        attempt += 1
        token = _token(found)
        reply, attempt = yield from _exchange(route, token, attempt, "after_discovery")
    else:
        token = _token(found)
        reply, attempt = yield from _exchange(route, token, attempt, "initial")
    reading = read_reply(reply)

    if reading.invalid_token and token.refresh_token is not None:
        refreshed = yield Refresh(token)
        if refreshed is not None:
            token = _token(refreshed)
            reply, attempt = yield from _exchange(route, token, attempt + 1, "after_refresh")
            reading = read_reply(reply)

    first = reading.challenge
    if first is None:
        return
    if first.resource_metadata is not None:
        # RFC 9728: the API says which issuers it trusts; an issuer it does not list cannot
        # produce a token it accepts, so the user is not sent there (IssuerNotListed).
        yield ResourceMetadata(route, first.resource_metadata)
    requirement = requirement_for(first, token.requirement)
    token = _token((yield StepUp(route, first, requirement, token)))
    reply, attempt = yield from _exchange(route, token, attempt + 1, "after_step_up")

    second = read_reply(reply).challenge
    if second is not None:
        # RFC 9470 §4 lets the client step up; nothing in it makes a second round useful: the
        # provider already answered this requirement. One retry, then a typed error.
        raise _failure(first, second)


def _failure(first: StepUpChallenge, second: StepUpChallenge) -> StepUpFailed:
    message = (
        f"the API challenged the stepped-up token again ({_describe(second)}); "
        f"the first challenge asked for {_describe(first)}"
    )
    if second.error == INSUFFICIENT_SCOPE:
        return ScopeNotGranted(message, missing=second.scope, challenges=(first, second))
    if second.error == INSUFFICIENT_CLAIMS:
        return ClaimsNotSatisfied(message, challenges=(first, second))
    return StepUpFailed(message, challenges=(first, second))


def _describe(challenge: StepUpChallenge) -> str:
    return requirement_for(challenge).describe()


class TokenSource(Protocol):
    """What resolves the core's token actions (the SDK's :class:`~client_sdk.oidc.OIDCClient`)."""

    def token_for(self, route: Route) -> TokenSet | None: ...

    def resource_metadata(self, route: Route, url: str) -> None: ...

    def refresh(self, rejected: TokenSet) -> TokenSet | None: ...

    def step_up(
        self, route: Route, challenge: StepUpChallenge, requirement: Requirement, rejected: TokenSet
    ) -> TokenSet: ...

    def remember_dpop_nonce(self, route: Route, nonce: str) -> None: ...


def resolve(
    source: TokenSource, action: GetToken | ResourceMetadata | Refresh | StepUp | DPoPNonce
) -> TokenSet | None:
    if isinstance(action, DPoPNonce):
        source.remember_dpop_nonce(action.route, action.nonce)
        return None
    if isinstance(action, GetToken):
        return source.token_for(action.route)
    if isinstance(action, ResourceMetadata):
        source.resource_metadata(action.route, action.url)
        return None
    if isinstance(action, Refresh):
        return source.refresh(action.rejected)
    return source.step_up(action.route, action.challenge, action.requirement, action.rejected)


class Driver:
    """Runs :func:`step_up_flow` for one request; the adapter only performs :class:`Send`.

    ``start()`` returns the first :class:`Send`; ``feed(reply)`` returns the next one, or ``None``
    when the reply just fed is the final response.
    """

    def __init__(
        self,
        source: TokenSource,
        method: str,
        url: str,
        emit: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self._source = source
        self._method = method.upper()
        self._url = url
        self._emit = emit
        self._flow = step_up_flow(Route.of(method, url))

    def start(self) -> Send:
        send = self._advance(None, first=True)
        assert send is not None
        return send

    def feed(self, reply: ApiReply) -> Send | None:
        self._emit(
            ApiResponseReceived(self._method, self._url, reply.status, reply.www_authenticate)
        )
        return self._advance(reply)

    def _advance(self, value: TokenSet | ApiReply | None, *, first: bool = False) -> Send | None:
        try:
            action = next(self._flow) if first else self._flow.send(value)
            while not isinstance(action, Send):
                action = self._flow.send(resolve(self._source, action))
        except StopIteration:
            return None
        acr = None if action.token is None else action.token.acr
        self._emit(ApiRequestSent(self._method, self._url, action.attempt, action.reason, acr))
        return action
