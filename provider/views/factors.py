"""The factor API over HTTP, for server-side applications that do not speak OpenID Connect.

- ``GET  /api/v1/users/<user>/factors`` — the user's enrolled factors.
- ``POST /api/v1/users/<user>/factors/otp/challenge`` — opens a verification transaction
  (``transaction_id``, ``expires_at``).
- ``POST /api/v1/users/<user>/factors/otp/verify`` with ``{"transaction_id", "passcode"}`` —
  checks the code with the login pages' own code (:func:`provider.login.check_totp`): the same
  attempt counter and lock, and the same single use of each TOTP step, shared with the pages.
  Every verification leaves an ``op_factor_audit`` row (:mod:`provider.factor_audit`).

``<user>`` is the user's ``sub`` or, failing that, their username. The rules — who may call, what
a factor is, what a transaction binds — are :mod:`provider.factor_api`'s; this module translates
HTTP.

The caller authenticates with its own ``client_credentials`` access token (RFC 6750 §2, or
RFC 9449 DPoP), checked by the provider's own validation. RFC 6750 §3.1: a request without a
token is answered ``401`` with a challenge that carries no error code; an invalid, expired or
revoked token, or one whose ``aud`` is not this API (RFC 8707), ``401 invalid_token``; a token
without the scope ``stepup:factors``, a user's token, or a client no longer registered for the
scope, ``403 insufficient_scope`` — "The request requires higher privileges than provided by the
access token."

Unknown users: the caller is already allowed to list any user's factors, so that a user exists
is not a secret from it, and ``404 user_not_found`` tells it no more than it may know. Anyone
else gets the same ``401``/``403`` for every user, before any user is looked up.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from .. import factor_api, factor_audit, login
from ..app import Provider, current_provider
from ..bearer import bearer_error, dpop_error, presented_token, sender_check
from ..factor_api import ERRORS, SCOPE, Reason, TransactionRefused, Transactions
from ..models import User

bp = Blueprint("factors", __name__, url_prefix=factor_api.PATH)

REALM = "stepup-factor-api"
_OUTCOMES = {
    login.Outcome.OK: Reason.VERIFIED,
    login.Outcome.WRONG: Reason.WRONG,
    login.Outcome.EXPIRED: Reason.EXPIRED,
    login.Outcome.REPLAYED: Reason.REPLAYED,
    login.Outcome.THROTTLED: Reason.THROTTLED,
}
_LONGEST_REF = 255  # op_users.username
_LONGEST_PASSCODE = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- the caller ----------------------------------------------------------------------------------


def _admin(op: Provider) -> str | BaseResponse:
    """The calling client's id, if its token may call this API; else the RFC 6750 answer."""
    presented = presented_token()
    if isinstance(presented, BaseResponse):
        return presented
    if presented is None:
        response = jsonify(
            error="invalid_token",
            error_description="The factor API needs an access token (client_credentials, "
            f"scope {SCOPE}, resource {factor_api.resource_for(op.issuer)}).",
        )
        response.status_code = 401
        algs = " ".join(op.dpop.algorithms)
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="{REALM}", scope="{SCOPE}", DPoP algs="{algs}"'
        )
        return response
    scheme, token = presented

    def invalid(description: str) -> BaseResponse:
        if scheme == "dpop":
            return dpop_error("invalid_token", description)
        return bearer_error(401, "invalid_token", description)

    claims = op.signer.verify_access_token(token, now=op.clock.now())
    if claims is None or not op.issuance.grant_is_active(claims):
        return invalid("The access token is invalid or expired")
    # RFC 9449 §4.2 htu: this request's URI, the path in RFC 3986 pchar form (as a client
    # sends it; client_sdk.dpop.htu_of normalises both sides before they are compared).
    url = op.issuer.rstrip("/") + quote(request.path, safe="/!$&'()*+,;=:@~")
    refused = sender_check(scheme, token, claims, url=url)
    if refused is not None:
        return refused
    # RFC 8707 §2: the token must be for this resource, not for the bank API or another one.
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if factor_api.resource_for(op.issuer) not in audiences:
        return invalid("The access token is not for the factor API (ask for it as resource)")
    client_id = str(claims["client_id"])
    client = op.issuance.clients.get(client_id)
    if (
        SCOPE not in str(claims.get("scope", "")).split()
        or claims.get("sub") != client_id
        or "auth_time" in claims
        or client is None
        or SCOPE not in client.row.scope.split()
    ):
        description = f"The factor API needs a client_credentials token with the {SCOPE} scope"
        if scheme == "dpop":  # RFC 9449 §7.1: the challenge is on the scheme the request used
            algs = " ".join(op.dpop.algorithms)
            return bearer_error(
                403, "insufficient_scope", description, "DPoP", scope=SCOPE, algs=algs
            )
        return bearer_error(403, "insufficient_scope", description, scope=SCOPE)
    return client_id


# --- answers -------------------------------------------------------------------------------------


def _json(body: dict[str, Any], status: int = 200) -> BaseResponse:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, error: str, description: str) -> BaseResponse:
    return _json({"error": error, "error_description": description}, status)


def _refusal(reason: Reason, description: str = "", retry_after: int = 0) -> BaseResponse:
    status, error, fixed = ERRORS[reason]
    body: dict[str, Any] = {"error": error, "error_description": description or fixed}
    if reason is Reason.THROTTLED:
        body["retry_after"] = retry_after
    response = _json(body, status)
    if reason is Reason.THROTTLED:
        # RFC 9110 §10.2.3: the seconds until the lock ends, as the login page says them.
        response.headers["Retry-After"] = str(retry_after)
    return response


def _printable(value: str, longest: int) -> str:
    """What the audit can store of a value the caller chose: no control characters (PostgreSQL
    text cannot hold NUL), at most ``longest`` characters."""
    return _CONTROL.sub("\ufffd", value)[:longest]


# --- users and factors ---------------------------------------------------------------------------


def _user(s: Session, ref: str) -> User | None:
    """The user whose ``sub`` is ``ref``, else whose username is (case-insensitive, as the login
    form compares them)."""
    if not ref or len(ref) > _LONGEST_REF or _CONTROL.search(ref):
        return None
    user = s.scalar(select(User).where(User.subject == ref))
    if user is None:
        user = s.scalar(select(User).where(func.lower(User.username) == ref.lower()))
    return user


def _factor_problem(s: Session, user: User, factor: str) -> Reason | None:
    """Why ``factor`` cannot be challenged for ``user``, if it cannot."""
    if factor not in factor_api.KNOWN:
        return Reason.UNKNOWN_FACTOR
    if factor not in login.enrolled_factors(s, user):
        return Reason.NOT_ENROLLED
    if factor not in factor_api.VERIFIABLE:
        return Reason.UNSUPPORTED_FACTOR
    return None


def _transactions() -> Transactions:
    return Transactions.from_shared_secret(str(current_app.config["SECRET_KEY"]))


# --- the endpoints -------------------------------------------------------------------------------


@bp.get("/users/<user_ref>/factors")
def list_factors(user_ref: str) -> BaseResponse:
    op = current_provider()
    admin = _admin(op)
    if isinstance(admin, BaseResponse):
        return admin
    with op.db.session() as s:
        user = _user(s, user_ref)
        if user is None:
            return _refusal(Reason.UNKNOWN_USER)
        enrolled = login.enrolled_factors(s, user)
        body = {
            "sub": user.subject,
            "username": user.username,
            "factors": factor_api.describe_factors(enrolled),
        }
    return _json(body)


@bp.post("/users/<user_ref>/factors/<factor>/challenge")
def challenge(user_ref: str, factor: str) -> BaseResponse:
    op = current_provider()
    admin = _admin(op)
    if isinstance(admin, BaseResponse):
        return admin
    now = op.clock.now()
    with op.db.session() as s:
        user = _user(s, user_ref)
        if user is None:
            return _refusal(Reason.UNKNOWN_USER)
        problem = _factor_problem(s, user, factor)
        subject = user.subject
    if problem is not None:
        return _refusal(problem)
    opened = _transactions().open(client_id=admin, subject=subject, factor=factor, now=now)
    body = {
        "status": "waiting",
        "transaction_id": opened.token,
        "sub": subject,
        "factor": factor,
        "expires_at": opened.expires_at,
        "expires_in": opened.expires_at - now,
    }
    return _json(body, 201)


def _verify_body() -> tuple[str, str] | BaseResponse:
    """``transaction_id`` and ``passcode`` from the JSON body, or ``400 invalid_request``."""
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # nested deeper than the parser goes
        body = None
    if not isinstance(body, dict):
        return _error(
            400,
            "invalid_request",
            'Send a JSON object: {"transaction_id": "...", "passcode": "..."}.',
        )
    tid, passcode = body.get("transaction_id"), body.get("passcode")
    if not isinstance(tid, str) or not tid:
        return _error(400, "invalid_request", "transaction_id is missing: open a challenge first.")
    if not isinstance(passcode, str) or not passcode or len(passcode) > _LONGEST_PASSCODE:
        return _error(400, "invalid_request", "passcode must be the code the user typed.")
    return tid, passcode


@bp.post("/users/<user_ref>/factors/<factor>/verify")
def verify(user_ref: str, factor: str) -> BaseResponse:
    op = current_provider()
    admin = _admin(op)
    if isinstance(admin, BaseResponse):
        return admin
    parsed = _verify_body()
    if isinstance(parsed, BaseResponse):
        return parsed
    token, passcode = parsed
    now = op.clock.now()
    with op.db.session() as s:
        user = _user(s, user_ref)
        subject = user.subject if user is not None else None

        def audit(reason: Reason, transaction_id: str | None = None) -> None:
            entry = factor_audit.AuditEntry(
                at=now,
                client_id=admin,
                user_ref=_printable(user_ref, _LONGEST_REF),
                subject=subject,
                factor=_printable(factor, 32),
                reason=reason,
                transaction_id=transaction_id,
            )
            factor_audit.record(s, entry)

        problem = Reason.UNKNOWN_USER if user is None else _factor_problem(s, user, factor)
        if problem is not None or user is None or subject is None:
            reason = problem or Reason.UNKNOWN_USER
            audit(reason)
            return _refusal(reason)
        try:
            transaction = _transactions().check(
                token, client_id=admin, subject=subject, factor=factor, now=now
            )
        except TransactionRefused as refused:
            audit(refused.reason)
            return _refusal(refused.reason, refused.description)
        # The login pages' own check: the attempt is counted (and the lock applied) before the
        # code is verified, and a TOTP step is spent by one atomic statement (provider.login).
        result = login.check_totp(
            s, op.throttling, user, passcode, now, allow_reuse=op.config.provider.totp_reuse
        )
        reason = _OUTCOMES[result.outcome]
        audit(reason, transaction.id)
    if reason is not Reason.VERIFIED:
        return _refusal(reason, retry_after=result.retry_after)
    body = {
        "status": "verified",
        "sub": subject,
        "factor": factor,
        "transaction_id": token,
        "verified_at": now,
        "amr": ["otp"],
    }
    return _json(body)
