"""One decision for one HTTP request, whatever carried it: the gateway, nginx, Envoy, Traefik or the
JSON sideband API. Pure: plain values in, an :class:`Outcome` (status, headers, body, identity
headers, decision record) out.

The steps, in order:

1. **The path is in normal form** — no dot segments, no empty segments, no encoded ``/`` or
   ``\\``. Rules match the path as this module reads it; an upstream that normalises
   ``/accounts/../transfers`` into ``/transfers`` would otherwise run a transfer that no rule saw.
   Such a request is ``400 invalid_request``.
2. **The token** (RFC 6750 §2.1 or RFC 9449 §7.1, :func:`resource_api.bearer.credentials`) is
   verified (RFC 9068 §4, the same validator as the Flask library): no token → ``401`` with a bare
   challenge; a bad one → ``401 invalid_token``; keys unavailable → ``503`` with ``Retry-After``.
   A DPoP-bound token must come on the ``DPoP`` scheme with a proof for this request
   (:class:`resource_api.dpop.DPoPVerifier`); every challenge about such a request is on the
   ``DPoP`` scheme, with ``algs``.
3. **The policy** (:class:`RequestPolicy`) turns the request and the token into a decision: allow,
   a step-up challenge (RFC 9470 §3, ``401 insufficient_user_authentication``), ``403
   insufficient_scope`` (RFC 6750 §3.1) or ``403 access_denied``.

Every challenge carries ``resource_metadata`` (RFC 9728 §5.1) when the caller knows the URL. An
allowed request gets the identity headers of :mod:`.identity`; every refusal gets a JSON body with
``error`` and ``error_description``, like the Flask library's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import parse_qsl

from ..authorization_details import decode
from ..bearer import bearer_token, credentials
from ..challenges import bearer_challenge
from ..dpop import DPoPVerifier, bound_key
from ..errors import BearerError, DPoPNonceRequired, KeySetUnavailable
from ..resource_metadata import PublishedPolicy, metadata_document
from ..step_up import (
    AcrOrder,
    AuthContext,
    Challenge,
    Decision,
    InsufficientScope,
)
from ..validation import TokenValidator, wall_clock
from .identity import identity_headers, without_identity_headers

__all__ = [
    "Deny",
    "Enforcer",
    "Outcome",
    "PolicyResult",
    "RequestInfo",
    "RequestPolicy",
    "Validated",
    "path_problem",
]

decision_log = logging.getLogger("resource_api.decisions")

_JSON = ("Content-Type", "application/json")
_ALLOWED_SIZE = 10_000  # remembered allows; all forgotten at once when full
_NO_STORE = ("Cache-Control", "no-store")
# A dot segment, an empty segment, or an encoded "/", "\" or "." anywhere in the path.
_NOT_NORMAL = re.compile(r"(?:^|/)\.{1,2}(?:/|$)|//|\\|%2[fF]|%5[cC]|%2[eE]")


def path_problem(raw_path: str) -> str | None:
    """Why ``raw_path`` (as sent, percent-encoded) is not in normal form, or ``None``."""
    if not raw_path.startswith("/"):
        return "the request target must be an absolute path"
    if _NOT_NORMAL.search(raw_path):
        return (
            "the request path must be in normal form: no '.' or '..' segments, no '//', "
            "no encoded '/', '\\' or '.'"
        )
    return None


@dataclass(frozen=True)
class RequestInfo:
    """An HTTP request as a gateway sees it. ``path`` is percent-decoded; ``raw_path`` as sent;
    ``header_list`` the client's headers, identity headers already stripped by :meth:`build`.
    ``raw_body`` is the body when the carrier has it (``None`` otherwise).

    ``query``, ``headers`` and ``body`` are the policy engine's request description
    (``resource_api.policy.RequestFacts``: lower-case header names joined with ", ", the first
    value of each query parameter, the JSON body with numbers as floats or ``None``), computed
    only when a rule reads them.
    """

    method: str
    path: str
    raw_path: str
    query_string: str = ""
    header_list: tuple[tuple[str, str], ...] = ()
    raw_body: bytes | None = None

    @classmethod
    def build(
        cls,
        method: str,
        raw_target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None = None,
    ) -> RequestInfo:
        """From a method, a request target (``/path?query``, percent-encoded) and the headers."""
        from urllib.parse import unquote

        raw_path, _, query = raw_target.partition("?")
        return cls(
            method.upper(),
            unquote(raw_path, errors="replace"),
            raw_path,
            query,
            tuple(without_identity_headers(headers)),
            body,
        )

    def header_values(self, name: str) -> list[str]:
        lower = name.lower()
        return [v for k, v in self.header_list if k.lower() == lower]

    @cached_property
    def query(self) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for k, v in parse_qsl(self.query_string, keep_blank_values=True):
            out.setdefault(k, v)
        return out

    @cached_property
    def headers(self) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for k, v in self.header_list:
            lower = k.lower()
            out[lower] = f"{out[lower]}, {v}" if lower in out else v
        return out

    @cached_property
    def body(self) -> Any:
        if self.raw_body is None:
            return None
        media = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json" and not (
            media.startswith("application/") and media.endswith("+json")
        ):
            return None
        try:
            return json.loads(self.raw_body, parse_int=float)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None


@dataclass(frozen=True)
class Deny:
    """The policy refuses the request outright (``403 access_denied``)."""

    reason: str


@dataclass(frozen=True)
class PolicyResult:
    """The policy's decision and its record. ``stable_until``: until when (epoch seconds) the same
    token on the same method and request target gets the same decision, or ``None`` when that
    cannot be promised (see :meth:`resource_api.policy.PolicyDecision.stable_until`)."""

    decision: Decision | Deny
    record: Mapping[str, Any] = field(default_factory=dict)
    stable_until: float | None = None


class RequestPolicy(Protocol):
    """What the enforcer asks about a request whose token is valid: the seam to the rules."""

    def needs_body(self, method: str, path: str) -> bool:
        """Whether a rule that may apply to ``method path`` reads the request body."""
        ...

    def evaluate(self, request: RequestInfo, context: AuthContext) -> PolicyResult: ...


@dataclass(frozen=True)
class Outcome:
    """What to answer. ``allowed``: forward the request, adding ``identity``; otherwise answer
    ``status`` with ``headers`` and ``body``. ``record`` is the decision record."""

    allowed: bool
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    identity: tuple[tuple[str, str], ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)
    #: For an allowed request: until when (epoch seconds) the same token on the same method and
    #: request target is allowed the same way, or ``None``. What a gateway may cache it for.
    stable_until: float | None = None

    @property
    def error(self) -> str | None:
        error = self.record.get("error")
        return error if isinstance(error, str) else None


def _refusal(
    status: int,
    body: dict[str, Any],
    record: dict[str, Any],
    challenge: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> Outcome:
    headers = [_JSON, _NO_STORE, *extra]
    if challenge is not None:
        headers.append(("WWW-Authenticate", challenge))
    record = {**record, "decision": "refuse", "status": status, "error": body.get("error")}
    return Outcome(False, status, tuple(headers), json.dumps(body).encode(), (), record)


@dataclass(frozen=True, slots=True)
class Validated:
    """A request's bearer token and the claims the validator just verified for it: what
    :meth:`Enforcer.remembered` found when it remembered no decision."""

    token: str
    claims: Mapping[str, Any] = field(repr=False)


class Enforcer:
    """Validates the token, asks the policy, renders the answer. Thread-safe if its validator is.

    ``public_paths``: exact paths that need no token (a health check); they are forwarded
    without identity headers. CORS preflights (``OPTIONS`` with ``Access-Control-Request-Method``)
    carry no credentials by design and are forwarded the same way. ``published``: what the RFC 9728
    document says of the policy (:func:`resource_api.resource_metadata.publish`).
    """

    def __init__(
        self,
        *,
        validator: TokenValidator,
        policy: RequestPolicy,
        order: AcrOrder,
        issuer: str,
        clock: Callable[[], float] | None = None,
        realm: str | None = None,
        public_paths: Sequence[str] = (),
        published: PublishedPolicy | None = None,
        dpop: DPoPVerifier | None = None,
    ) -> None:
        self.validator = validator
        self.policy = policy
        self.order = order
        self.issuer = issuer
        self.clock = clock or wall_clock
        self.realm = realm
        self.public_paths = frozenset(public_paths)
        self.published = published
        self.dpop = dpop or DPoPVerifier(clock=self.clock)
        # Allowed decisions, remembered until their stable_until: by the token's verified claims
        # (their identity — the validator hands out one object per token, held here so that the
        # id stays theirs), the method and the request target as sent.
        self._allowed: dict[
            tuple[int, str, str, str], tuple[Mapping[str, Any], float, Outcome]
        ] = {}

    def metadata_document(self, origin: str) -> dict[str, Any]:
        """The RFC 9728 document of the protected resource at ``origin`` (DESIGN contract 12)."""
        return metadata_document(
            origin, [self.issuer], published=self.published, dpop_algorithms=self.dpop.algorithms
        )

    def needs_body(self, method: str, path: str) -> bool:
        return self.policy.needs_body(method.upper(), path)

    def check(
        self,
        request: RequestInfo,
        *,
        resource_metadata: str | Callable[[], str | None] | None = None,
        body_available: bool = True,
        url: str | None = None,
        validated: Validated | None = None,
    ) -> Outcome:
        """Decide on ``request``. ``resource_metadata``: the URL every challenge names, or a
        function that gives it (called only for a challenge). ``body_available=False``: the
        carrier cannot see bodies (nginx ``auth_request``); a request that a body-reading rule
        may apply to is then refused rather than judged as if it had no body. ``url``: the
        absolute URL the client used (its origin and the request target), which a DPoP proof's
        ``htu`` must name (RFC 9449 §4.3); ``None`` when the carrier cannot tell, and then a DPoP
        request is refused. ``validated``: what :meth:`remembered` just said of this request's
        token (used for that token only)."""
        outcome = self._check(request, resource_metadata, body_available, url, validated)
        if decision_log.isEnabledFor(logging.INFO):
            decision_log.info(json.dumps(outcome.record, sort_keys=True))
        return outcome

    def remembered(
        self, method: str, raw_target: str, authorization: Sequence[str]
    ) -> Outcome | Validated | None:
        """The allow :meth:`check` gave this token (``authorization``: every value of the
        request's ``Authorization``) on this method and request target, while it still holds.
        Otherwise ask :meth:`check`, handing it the :class:`Validated` token this returned, if
        any (so that it is not validated twice). The token is validated each time (its claims
        come from the validator's cache), so nothing outlives the token's ``exp``, its signing
        key, or the decision's :attr:`Outcome.stable_until`."""
        method = method.upper()
        if method == "OPTIONS":  # a CORS preflight is decided without a token
            return None
        raw_path, _, query = raw_target.partition("?")
        try:
            token = bearer_token(authorization, query)
            if token is None:
                return None
            claims = self.validator.validate(token)
        except (BearerError, KeySetUnavailable):
            return None
        hit = self._allowed.get((id(claims), method, raw_path, query))
        if bound_key(claims) is not None:
            # RFC 9449: a DPoP-bound token needs a fresh proof on every request; no allow is
            # remembered for it (and presented as Bearer, check refuses it).
            return Validated(token, claims)
        if hit is None or hit[0] is not claims or self.clock() >= hit[1]:
            return Validated(token, claims)
        outcome = hit[2]
        if decision_log.isEnabledFor(logging.INFO):
            decision_log.info(json.dumps(outcome.record, sort_keys=True))
        return outcome

    def _remember(self, request: RequestInfo, claims: Mapping[str, Any], outcome: Outcome) -> None:
        until = outcome.stable_until
        if until is None or request.method == "OPTIONS" or bound_key(claims) is not None:
            return  # a DPoP-bound token's proof is checked on every request, never remembered
        if len(self._allowed) >= _ALLOWED_SIZE:
            self._allowed.clear()
        key = (id(claims), request.method, request.raw_path, request.query_string)
        self._allowed[key] = (claims, until, outcome)

    def _check(
        self,
        request: RequestInfo,
        metadata: str | Callable[[], str | None] | None,
        body_available: bool,
        url: str | None = None,
        validated: Validated | None = None,
    ) -> Outcome:
        record: dict[str, Any] = {"method": request.method, "path": request.path}
        problem = path_problem(request.raw_path)
        if problem is not None:
            return _refusal(400, {"error": "invalid_request", "error_description": problem}, record)
        if request.path in self.public_paths or (
            request.method == "OPTIONS" and request.header_values("access-control-request-method")
        ):
            return Outcome(True, 200, record={**record, "decision": "allow", "public": True})

        scheme = "Bearer"  # RFC 9449 §7.1: "DPoP" for a DPoP request or a DPoP-bound token

        def challenge(**params: Any) -> str:
            url_of_metadata = metadata() if callable(metadata) else metadata
            algs = self.dpop.algorithms if scheme == "DPoP" else ()
            return bearer_challenge(scheme=scheme, realm=self.realm,
                                    resource_metadata=url_of_metadata, algs=algs,
                                    **params)  # fmt: skip

        try:
            found = credentials(request.header_values("authorization"), request.query_string)
            if found is None:
                description = (
                    "this API needs an access token: send it as Authorization: Bearer <token>"
                )
                return _refusal(401, {"error_description": description}, record, challenge())
            scheme = "DPoP" if found.is_dpop else scheme
            if validated is not None and validated.token == found.token and not found.is_dpop:
                claims = validated.claims
            else:
                claims = self.validator.validate(found.token)
            scheme = "DPoP" if bound_key(claims) is not None else scheme
            self.dpop.check(found, claims, proofs=request.header_values("dpop"),
                            method=request.method, url=url)  # fmt: skip
        except BearerError as exc:
            scheme = exc.scheme or scheme
            nonce = [("DPoP-Nonce", exc.nonce)] if isinstance(exc, DPoPNonceRequired) else []
            return _refusal(
                exc.status_code,
                {"error": exc.error, "error_description": exc.description},
                record,
                challenge(error=exc.error, error_description=exc.description),
                nonce,
            )
        except KeySetUnavailable:
            body: dict[str, Any] = {
                "error": "temporarily_unavailable",
                "error_description": "the API cannot verify tokens right now; try again shortly",
            }
            return _refusal(503, body, record, extra=[("Retry-After", "30")])

        now = self.clock()
        key = (id(claims), request.method, request.raw_path, request.query_string)
        hit = self._allowed.get(key)
        if hit is not None and hit[0] is claims and now < hit[1]:
            return hit[2]
        context = AuthContext.from_claims(claims, now)
        record.update(sub=context.sub or None, client_id=context.client_id,
                      acr=context.authentication_policy)  # fmt: skip
        if not body_available and self.policy.needs_body(request.method, request.path):
            # Unknown is not empty: judging the request as bodiless would silently skip the rule
            # (a large transfer through nginx would pass as a small one). Fail closed.
            reason = (
                "a rule on this request reads the request body, which this gateway does not send "
                "to the policy (nginx auth_request); route it through stepup gateway, Envoy or "
                "Traefik"
            )
            return _refusal(403, {"error": "access_denied", "error_description": reason}, record)
        result = self.policy.evaluate(request, context)
        record.update(result.record)
        decision = result.decision
        if isinstance(decision, Deny):
            body = {"error": "access_denied", "error_description": decision.reason}
            return _refusal(403, body, record)
        if isinstance(decision, InsufficientScope):
            body = {"error": decision.error, "error_description": decision.description,
                    "scope": " ".join(decision.scope)}  # fmt: skip
            return _refusal(
                403, body, record,
                challenge(error=decision.error, error_description=decision.description,
                          scope=decision.scope),
            )  # fmt: skip
        if isinstance(decision, Challenge):
            body = {"error": decision.error, "error_description": decision.description}
            if decision.acr_values:
                body["acr_values"] = " ".join(decision.acr_values)
            if decision.max_age is not None:
                body["max_age"] = decision.max_age
            if decision.authorization_details:
                body["authorization_details"] = decode(decision.authorization_details)
            return _refusal(
                401, body, record,
                challenge(error=decision.error, error_description=decision.description,
                          acr_values=decision.acr_values, max_age=decision.max_age,
                          authorization_details=decision.authorization_details),
            )  # fmt: skip
        # RFC 9449 §11.1: a proof is good for one request. An allow that rests on one is not
        # stable at all: no cache in front (nginx's, keyed by the token) may repeat it for a
        # request whose proof nobody checked.
        stable = None if bound_key(claims) is not None else result.stable_until
        allowed = Outcome(
            True, 200, identity=tuple(identity_headers(claims)),
            record={**record, "decision": "allow", "status": 200},
            stable_until=stable,
        )  # fmt: skip
        self._remember(request, claims, allowed)
        return allowed
