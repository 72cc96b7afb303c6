"""Flask integration: validate the bearer token, apply the route's requirement, challenge.

The protocol lives elsewhere (:mod:`.step_up` decides, :mod:`.challenges` formats,
:mod:`.validation` verifies); this module is the thin glue. It implements:

- RFC 6750 §2.1 — the token comes in ``Authorization: Bearer <b64token>``. The form-body (§2.2) and
  query (§2.3) methods are not accepted (the latter "SHOULD NOT be used"); a request that uses them,
  or more than one method, is ``400 invalid_request`` (§3.1: "uses more than one method for
  including an access token").
- RFC 6750 §3 — "If the request lacks any authentication information ..., the resource server SHOULD
  NOT include an error code or other error information": a bare ``Bearer`` challenge. Otherwise
  ``400 invalid_request``, ``401 invalid_token``, ``403 insufficient_scope`` (with ``scope``).
- RFC 9470 §3 — ``401`` with ``error="insufficient_user_authentication"``, ``acr_values``,
  ``max_age`` when the authentication behind the token is too weak or too old.
- RFC 9449 §7 — ``Authorization: DPoP <token>`` with a ``DPoP`` proof for a DPoP-bound token
  (:class:`resource_api.dpop.DPoPVerifier`); a bound token sent as ``Bearer`` is refused. Every
  challenge to a DPoP request or a bound token — step-up ones included — is on the ``DPoP``
  scheme, with ``algs``.

What a route requires is decided by the policy engine (:mod:`resource_api.policy`): rules from the
config (``[[api.routes]]``, ``[[api.rules]]`` with CEL conditions) and from decorators on the view
(``@require``, whose ``when=`` callable computes a requirement in Python) all become rules of one
policy. A ``deny`` rule, or a rule that cannot be evaluated (fail closed), is ``403 access_denied``.

Every error also has a JSON body with the same ``error`` and ``error_description``.

Usage::

    step_up = StepUp(app, validator=JwtAccessTokenValidator(issuer, audience),
                     acr_order=["urn:stepup:loa:1", "urn:stepup:loa:2"])

    @app.post("/transfers")
    @step_up.require(acr_values=["urn:stepup:loa:2"], max_age=3600)
    def transfer(): ...

By default every view of the app needs a valid token (``protect_all=True``); mark open ones with
``@step_up.public`` (a public view is outside the policy: no rule applies to it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from flask import Flask, Request, Response, current_app, g, request

from .authorization_details import decode
from .bearer import is_b64token
from .challenges import bearer_challenge
from .dpop import Credentials, DPoPVerifier, bound_key
from .errors import (
    BearerError,
    ConfigurationError,
    DPoPNonceRequired,
    InvalidRequest,
    KeySetUnavailable,
)
from .flask_rules import DynamicRequirement, FlaskRequest, decorator_rules, serves
from .policy import (
    Denied,
    Policy,
    PolicyDecision,
    Refused,
    Rule,
    RuleConfig,
    RuleSet,
)
from .policy.engine import Verdict
from .resource_metadata import (
    PublishedPolicy,
    metadata_document,
    metadata_url,
    origin_of,
    publish,
)
from .settings import RouteSpec
from .step_up import (
    AcrOrder,
    Allow,
    AuthContext,
    Challenge,
    InsufficientScope,
    Requirement,
    combine,
)
from .validation import TokenValidator, wall_clock

__all__ = [
    "DynamicRequirement",
    "RouteSpec",
    "StepUp",
    "current_auth",
    "current_decision",
    "public",
    "require",
]

F = TypeVar("F", bound=Callable[..., Any])


_MARKS = "__stepup_marks__"
_PUBLIC = "__stepup_public__"
_G_KEY = "_stepup_auth"
_G_DECISION = "_stepup_decision"
#: What the policy let through, for current_auth() and current_decision() to make their objects
#: from when a view asks (most never do): (rule set, request facts, claims, now, verdict).
_G_ALLOWED = "_stepup_allowed"
_Allowed: TypeAlias = tuple[RuleSet, FlaskRequest, Mapping[str, Any], float, Verdict]

# RFC 9110 §11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
# The scheme the request's challenges go on (RFC 9449 §7.1), kept in the WSGI environ.
_SCHEME = "stepup.challenge_scheme"
_CREDENTIALS = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?", re.DOTALL)


@dataclass(frozen=True)
class _Plan:
    protected: bool | None  # None: protected when a rule matches the request's path
    rules: RuleSet


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    acr_values: tuple[str, ...]
    max_age: int | None
    scope: tuple[str, ...]


def current_auth() -> AuthContext:
    """The authentication context of the current call (only inside a protected view)."""
    ctx: AuthContext | None = g.get(_G_KEY)
    if ctx is None:
        allowed: _Allowed | None = g.get(_G_ALLOWED)
        if allowed is None:
            raise ConfigurationError("current_auth() called outside a view protected by StepUp")
        ctx = AuthContext(allowed[2], allowed[3])
        setattr(g, _G_KEY, ctx)
    return ctx


def current_decision() -> PolicyDecision:
    """The policy decision that let the current call through: which rules applied and why
    (``resource_api.policy.explain(current_decision())`` puts it in words). Only inside a
    protected view."""
    decision: PolicyDecision | None = g.get(_G_DECISION)
    if decision is None:
        allowed: _Allowed | None = g.get(_G_ALLOWED)
        if allowed is None:
            raise ConfigurationError("current_decision() called outside a view protected by StepUp")
        rules, facts, _, _, verdict = allowed
        decision = rules.record(facts.method, facts.path, verdict, current_auth())
        setattr(g, _G_DECISION, decision)
    return decision


def require(
    acr_values: Sequence[str] = (),
    max_age: int | None = None,
    scope: Sequence[str] = (),
    *,
    when: DynamicRequirement | None = None,
) -> Callable[[F], F]:
    """:meth:`StepUp.require` without the instance, for blueprints written before the app exists.

    The requirement is stored on the view function; whichever :class:`StepUp` guards the app reads
    it, so the order of decorators does not matter.
    """
    static = Requirement(tuple(acr_values), max_age, tuple(scope))

    def mark(view: F) -> F:
        marks: list[tuple[Requirement, DynamicRequirement | None]] = getattr(view, _MARKS, [])
        setattr(view, _MARKS, [*marks, (static, when)])
        return view

    return mark


def public(view: F) -> F:
    """Mark a view that needs no token, whatever ``protect_all`` says."""
    setattr(view, _PUBLIC, True)
    return view


class StepUp:
    """Bearer-token and step-up enforcement for one Flask app.

    ``acr_order``: levels weakest first — an :class:`AcrOrder` (levels with aliases) or plain
    values.
    ``routes``: requirements by method and path (the Flask rule such as ``/accounts/<account_id>``,
    or a literal path), typically ``config.api.routes``. ``rules``: policy rules
    (:class:`resource_api.policy.RuleConfig`, ``config.api.rules``), compiled here — a bad one
    raises :class:`resource_api.policy.PolicyError`. ``clock``: "now" for ``max_age``.
    ``resource_metadata``: every challenge carries ``resource_metadata`` (RFC 9728 §5.1), the
    request's origin + ``/.well-known/oauth-protected-resource`` — publish the document there
    (:func:`resource_api.resource_metadata.metadata_document`; the demo bank does).
    ``dpop``: the DPoP sender check (RFC 9449 §7; default: every algorithm, a ``jti`` cache in
    this process, no nonces). ``public_url``: the API's origin as clients see it
    (``https://api.example``), for the ``htu`` of DPoP proofs and ``resource_metadata``; default:
    the request's scheme and ``Host`` (behind a proxy, set it, or make the proxy's forwarded
    headers the request's with werkzeug's ``ProxyFix``).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        validator: TokenValidator,
        acr_order: AcrOrder | Sequence[str] = (),
        routes: Iterable[RouteSpec] = (),
        rules: Iterable[RuleConfig | Rule] = (),
        clock: Callable[[], float] | None = None,
        realm: str | None = None,
        protect_all: bool = True,
        resource_metadata: bool = False,
        dpop: DPoPVerifier | None = None,
        public_url: str | None = None,
    ) -> None:
        self.validator = validator
        self.order = (
            acr_order if isinstance(acr_order, AcrOrder) else AcrOrder.from_values(acr_order)
        )
        self.clock = clock or wall_clock
        self.realm = realm
        self.protect_all = protect_all
        self.resource_metadata = resource_metadata
        self.dpop = dpop or DPoPVerifier(clock=self.clock)
        self.public_url = public_url.rstrip("/") if public_url else None
        self._routes: dict[tuple[str, str], Requirement] = {}
        self._rules = tuple(r if isinstance(r, Rule) else Rule.compile(r) for r in rules)
        self._policy: Policy | None = None
        self._plans: dict[tuple[str, str, str], _Plan] = {}
        self._published: tuple[Policy, PublishedPolicy] | None = None
        for route in routes:
            self.add_route(route.method, route.path, Requirement(
                tuple(route.acr_values), route.max_age, tuple(route.scope)))  # fmt: skip
        self._policy = self._build_policy()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["stepup"] = self
        app.before_request(self._enforce)

    # -- declaring requirements -------------------------------------------------------------------

    def add_route(self, method: str, path: str, requirement: Requirement) -> None:
        """Require ``requirement`` on ``method path`` (combined with any decorator on the view)."""
        key = (method.upper(), path)
        self._routes[key] = combine((self._routes.get(key), requirement), self.order)
        self._plans.clear()
        self._policy = None

    @property
    def policy(self) -> Policy:
        """The compiled policy: the configured routes (each a rule without condition), then the
        configured rules. Decorators add their rules per view."""
        if self._policy is None:
            self._policy = self._build_policy()
        return self._policy

    def _build_policy(self) -> Policy:
        routes = [
            _Route(method, path, req.acr_values, req.max_age, req.scope)
            for (method, path), req in self._routes.items()
        ]
        return Policy.from_settings(routes, self._rules, self.order)

    def resource_metadata_document(
        self, resource: str, authorization_servers: Sequence[str]
    ) -> dict[str, Any]:
        """The RFC 9728 document of this API at ``resource`` (its origin): the issuers it trusts,
        the scope values of its routes and rules, and the requirements of its routes and of its
        rules without a condition (the ``stepup_route_requirements`` extension; see
        :mod:`resource_api.resource_metadata`). Requirements set by decorators are not listed."""
        policy = self.policy
        if self._published is None or self._published[0] is not policy:
            self._published = (policy, publish(policy.rules))  # once per policy, not per request
        return metadata_document(
            resource, authorization_servers, published=self._published[1],
            dpop_algorithms=self.dpop.algorithms,
        )  # fmt: skip

    def require(
        self,
        acr_values: Sequence[str] = (),
        max_age: int | None = None,
        scope: Sequence[str] = (),
        *,
        when: DynamicRequirement | None = None,
    ) -> Callable[[F], F]:
        """Decorate a view: it needs a valid token meeting this requirement, plus whatever ``when``
        returns for the request at hand. Stacks with other ``require`` and with config routes."""
        return require(acr_values, max_age, scope, when=when)

    def public(self, view: F) -> F:
        """Decorate a view that needs no token (e.g. a health check)."""
        return public(view)

    def check_routes(self, app: Flask) -> None:
        """Raise :class:`ConfigurationError` if a configured route or rule names a path that
        matches no view of ``app`` — a typo in a path must not silently switch a requirement off.
        """
        adapter = app.url_map.bind("localhost")
        views = [(r.rule, frozenset(r.methods or ())) for r in app.url_map.iter_rules()]
        unmatched = []
        for rule in self.policy.rules:
            if rule.path is not None and not serves(adapter, views, rule.path, rule.methods):
                methods = " ".join(sorted(rule.methods)) + " " if rule.methods else ""
                unmatched.append(
                    f"{methods}{rule.path.source}"
                    if rule.origin == "route"
                    else f"rule {rule.name!r} ({methods}{rule.path.source})"
                )
        if unmatched:
            raise ConfigurationError(
                "these configured routes match no endpoint of the API: " + ", ".join(unmatched)
            )

    # -- enforcement ------------------------------------------------------------------------------

    def _plan(self, endpoint: str, method: str, rule: str) -> _Plan:
        key = (endpoint, method, rule)
        plan = self._plans.get(key)
        if plan is None:
            view = current_app.view_functions.get(endpoint)
            marks = getattr(view, _MARKS, [])
            policy = self.policy
            if getattr(view, _PUBLIC, False):
                plan = _Plan(False, Policy.build((), policy.order).for_route(method, rule))
            else:
                extra = decorator_rules(endpoint, marks)
                rules = policy.for_route(method, rule, extra)
                protected = self.protect_all or bool(marks) or rules.always_applies
                plan = _Plan(True if protected else (None if not rules.empty else False), rules)
            self._plans[key] = plan
        return plan

    def _enforce(self) -> Response | None:
        # The proxy costs a lookup per attribute; this runs on every request.
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        rule = req.url_rule
        if rule is None or rule.endpoint is None:  # (req.endpoint is rule.endpoint, a property)
            return None  # 404/405: Flask answers
        method = "GET" if req.method == "HEAD" else req.method
        if method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
            return None
        plan = self._plans.get((rule.endpoint, method, rule.rule)) or self._plan(
            rule.endpoint, method, rule.rule
        )
        if not plan.protected and (plan.protected is False or not plan.rules.may_apply(req.path)):
            return None
        try:
            found = _credentials(req)
            if found is None:
                return self._response(
                    401, self._challenge(req),
                    {"error_description": "this API needs an access token: "
                     "send it as Authorization: Bearer <token>"},
                )  # fmt: skip
            if found.is_dpop:
                req.environ[_SCHEME] = "DPoP"
            claims = self.validator.validate(found.token)
            self._sender_check(req, found, claims)
        except BearerError as exc:
            if exc.scheme is not None:
                req.environ[_SCHEME] = exc.scheme
            response = self._response(
                exc.status_code,
                self._challenge(req, error=exc.error, error_description=exc.description),
                {"error": exc.error, "error_description": exc.description},
            )  # fmt: skip
            if isinstance(exc, DPoPNonceRequired):
                response.headers["DPoP-Nonce"] = exc.nonce  # RFC 9449 §9
            return response
        except KeySetUnavailable:
            response = self._response(None, None, {
                "error": "temporarily_unavailable",
                "error_description": "the API cannot verify tokens right now; try again shortly",
            })  # fmt: skip
            response.status_code = 503
            response.headers["Retry-After"] = "30"
            return response
        facts = FlaskRequest(req)
        now = self.clock()
        verdict = plan.rules.verdict(facts, claims, now)
        outcome = verdict[0]
        if not isinstance(outcome, Allow):
            return self._refuse(req, outcome)
        # The context and the decision record are made when the view asks for them.
        allowed: _Allowed = (plan.rules, facts, claims, now, verdict)
        setattr(g._get_current_object(), _G_ALLOWED, allowed)
        return None

    def challenge_response(self, outcome: Challenge) -> Response:
        """The ``401`` for a challenge a view decides on after the policy let the request in (the
        demo bank's spent approval): the same header and body as the policy's challenges."""
        return self._refuse(request._get_current_object(), outcome)  # type: ignore[attr-defined]

    def _refuse(
        self, req: Request, outcome: InsufficientScope | Challenge | Denied | Refused
    ) -> Response:
        if isinstance(outcome, InsufficientScope):
            return self._response(
                403,
                self._challenge(req, error=outcome.error,
                                error_description=outcome.description, scope=outcome.scope),
                {"error": outcome.error, "error_description": outcome.description,
                 "scope": " ".join(outcome.scope)},
            )  # fmt: skip
        if isinstance(outcome, Challenge):
            body: dict[str, Any] = {"error": outcome.error,
                                    "error_description": outcome.description}  # fmt: skip
            if outcome.acr_values:
                body["acr_values"] = " ".join(outcome.acr_values)
            if outcome.max_age is not None:
                body["max_age"] = outcome.max_age
            if outcome.authorization_details:
                body["authorization_details"] = decode(outcome.authorization_details)
            return self._response(
                401,
                self._challenge(req, error=outcome.error,
                                error_description=outcome.description,
                                acr_values=outcome.acr_values, max_age=outcome.max_age,
                                authorization_details=outcome.authorization_details),
                body,
            )  # fmt: skip
        # Denied or Refused. Not an RFC 6750 error: no new token helps, so no WWW-Authenticate
        # challenge.
        return self._response(
            outcome.status_code, None,
            {"error": outcome.error, "error_description": outcome.description},
        )  # fmt: skip

    def _origin(self, req: Request) -> str:
        return self.public_url or origin_of(req.scheme, req.host)

    def _sender_check(self, req: Request, found: Credentials, claims: Any) -> None:
        """RFC 9449 §7: a bound token comes on the DPoP scheme with its proof, a bearer token as
        Bearer; from here on, challenges about a bound token are on the DPoP scheme."""
        bound = bound_key(claims) is not None
        if bound:
            req.environ[_SCHEME] = "DPoP"
        elif not found.is_dpop:
            return  # a bearer token as Bearer: the fast path costs nothing more
        # The target as the client sent it (RFC 9110 §7.1): werkzeug's base_url quotes the path
        # back; htu_of compares it after RFC 3986 normalisation.
        url = self._origin(req) + req.base_url[len(req.host_url) - 1 :]
        self.dpop.check(found, claims, proofs=req.headers.getlist("DPoP"),
                        method=req.method, url=url)  # fmt: skip

    def _challenge(self, req: Request, **params: Any) -> str:
        # RFC 9728 §5.1: "resource_metadata: The URL of the protected resource metadata" — the
        # app's origin plus the well-known path, where the app publishes the document.
        metadata = metadata_url(self._origin(req)) if self.resource_metadata else None
        scheme = req.environ.get(_SCHEME, "Bearer")
        algs = self.dpop.algorithms if scheme == "DPoP" else ()
        return bearer_challenge(scheme=scheme, realm=self.realm, resource_metadata=metadata,
                                algs=algs, **params)  # fmt: skip

    @staticmethod
    def _response(status: int | None, challenge: str | None, body: dict[str, Any]) -> Response:
        response = Response(json.dumps(body), status=status or 200, mimetype="application/json")
        if challenge is not None:
            response.headers["WWW-Authenticate"] = challenge
        response.headers["Cache-Control"] = "no-store"
        return response


def _credentials(req: Request) -> Credentials | None:
    """The token from ``Authorization: Bearer`` or ``DPoP`` (RFC 9449 §7.1) with its scheme,
    ``None`` when the request carries no credentials we support, :class:`InvalidRequest` when it
    is malformed or uses several methods."""
    header: str | None = req.environ.get("HTTP_AUTHORIZATION")
    # The common cases, "Bearer <b64token>" (RFC 6750 §2.1) and "DPoP <b64token>" (RFC 9449
    # §7.1); anything else takes the long way.
    if header is not None and not req.query_string and req.method in ("GET", "HEAD"):
        if header[:7] in ("Bearer ", "bearer ") and is_b64token(token := header[7:]):
            return Credentials("bearer", token)
        if header[:5] in ("DPoP ", "dpop ") and is_b64token(token := header[5:]):
            return Credentials("dpop", token)
    in_query = b"access_token" in req.query_string and "access_token" in req.args
    in_body = (
        req.method not in ("GET", "HEAD", "OPTIONS")
        and req.mimetype == "application/x-www-form-urlencoded"
        and "access_token" in req.form
    )
    if (header is not None and (in_query or in_body)) or (in_query and in_body):
        raise InvalidRequest("the access token must be sent one way only, not in several places")
    if in_query or in_body:
        raise InvalidRequest(
            "send the access token in the Authorization header (Bearer); "
            "tokens in the URI or the form body are not accepted"
        )
    if header is None:
        return None
    match = _CREDENTIALS.fullmatch(header.strip())
    if match is None:
        raise InvalidRequest("the Authorization header is malformed")
    scheme, rest = match.group(1), match.group(2)
    if "," in header:
        raise InvalidRequest("the request carries more than one set of credentials")
    name = scheme.lower()
    if name not in ("bearer", "dpop"):
        return None  # another scheme: "lacks any authentication information" we support (§3)
    if rest is None or not is_b64token(rest.strip()):
        shown = "DPoP" if name == "dpop" else "Bearer"
        raise InvalidRequest(f"the Authorization header does not hold a valid {shown} token")
    return Credentials(name, rest.strip())
