"""The factor API over HTTP, for server-side applications that do not speak OpenID Connect.

- ``GET  /api/v1/users/<user>/factors`` — the user's enrolled factors.
- ``POST /api/v1/users/<user>/factors/otp/challenge`` — opens a verification transaction
  (``transaction_id``, ``expires_at``).
- ``POST /api/v1/users/<user>/factors/otp/verify`` with ``{"transaction_id", "passcode"}`` —
  checks the code with the login pages' own code (:func:`provider.login.check_totp`): the same
  attempt counter and lock, and the same single use of each TOTP step, shared with the pages.
  Every verification leaves an ``op_factor_audit`` row (:mod:`provider.factor_audit`), written
  in the transaction that settles its outcome.
- ``GET  /api/v1/users/<user>/factors/audit?limit=&cursor=`` — the user's audit rows, newest
  first, a page at a time.

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

from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.wrappers import Response as BaseResponse

from .. import factor_api, factor_audit, factor_service, login
from ..app import Provider, current_provider
from ..bearer import bearer_error, dpop_error, presented_token, sender_check
from ..factor_api import ERRORS, SCOPE, Reason, Transactions

bp = Blueprint("factors", __name__, url_prefix=factor_api.PATH)

REALM = "stepup-factor-api"
_LONGEST_PASSCODE = 64


# --- the caller ----------------------------------------------------------------------------------


@bp.before_request
def _authenticate() -> BaseResponse | None:
    """Every call of this API first: the caller's token, checked once for all its endpoints; the
    client id kept for the view (:func:`_caller`), else the RFC 6750 answer."""
    admin = _admin(current_provider())
    if isinstance(admin, BaseResponse):
        return admin
    g.factor_api_client = admin
    return None


def _caller() -> str:
    """The id of the client calling this API, authenticated by :func:`_authenticate`."""
    client_id: str = g.factor_api_client
    return client_id


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


def _unrecorded() -> BaseResponse:
    """The audit row could not be written, so the verification did not take place: its
    transaction was rolled back — no TOTP step spent — and no outcome is told (an answer nobody
    audited would be a verification that left no trace)."""
    current_app.logger.exception("factor API: the verification's audit row was not written")
    return _error(
        503,
        "temporarily_unavailable",
        "The verification could not be recorded, so it did not take place and the passcode "
        "was not spent: try again.",
    )


# --- users and factors ---------------------------------------------------------------------------


def _transactions() -> Transactions:
    return Transactions.from_shared_secret(str(current_app.config["SECRET_KEY"]))


# --- the endpoints -------------------------------------------------------------------------------


@bp.get("/users/<user_ref>/factors")
def list_factors(user_ref: str) -> BaseResponse:
    op = current_provider()
    with op.db.session() as s:
        user = factor_service.find_user(s, user_ref)
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
    now = op.clock.now()
    with op.db.session() as s:
        user = factor_service.find_user(s, user_ref)
        if user is None:
            return _refusal(Reason.UNKNOWN_USER)
        problem = factor_service.factor_problem(s, user, factor)
        subject = user.subject
    if problem is not None:
        return _refusal(problem)
    opened = _transactions().open(client_id=_caller(), subject=subject, factor=factor, now=now)
    body = {
        "status": "waiting",
        "transaction_id": opened.token,
        "sub": subject,
        "factor": factor,
        "expires_at": opened.expires_at,
        "expires_in": opened.expires_at - now,
    }
    return _json(body, 201)


def _page_query() -> tuple[int, factor_audit.Cursor | None] | BaseResponse:
    """``limit`` and ``cursor`` from the query string, or ``400 invalid_request``."""
    limits, cursors = request.args.getlist("limit"), request.args.getlist("cursor")
    if len(limits) > 1 or len(cursors) > 1:
        return _error(400, "invalid_request", "Send limit and cursor at most once each.")
    limit = factor_audit.parse_limit(limits[0]) if limits else factor_audit.DEFAULT_LIMIT
    if limit is None:
        most = factor_audit.MAX_LIMIT
        return _error(400, "invalid_request", f"limit must be a whole number from 1 to {most}.")
    cursor = None
    if cursors:
        cursor = factor_audit.Cursor.parse(cursors[0])
        if cursor is None:
            return _error(
                400,
                "invalid_request",
                "cursor must be the next_cursor of a previous page, as it was given.",
            )
    return limit, cursor


@bp.get("/users/<user_ref>/factors/audit")
def audit(user_ref: str) -> BaseResponse:
    """The user's verifications, newest first: ``limit`` rows (default 20, at most 100) from
    ``cursor`` (a previous page's ``next_cursor``). The next page's URL is also in a
    ``Link: <…>; rel="next"`` header (RFC 8288), as Okta's list endpoints give it."""
    op = current_provider()
    query = _page_query()
    if isinstance(query, BaseResponse):
        return query
    limit, cursor = query
    with op.db.session() as s:
        user = factor_service.find_user(s, user_ref)
        if user is None:
            return _refusal(Reason.UNKNOWN_USER)
        subject, username = user.subject, user.username
        page = factor_audit.page(s, subject, limit=limit, after=cursor)
    body = {
        "sub": subject,
        "username": username,
        "entries": [
            {
                "at": e.at,
                "client_id": e.client_id,
                "user_ref": e.user_ref,
                "factor": e.factor,
                "result": e.result,
                "reason": e.reason.value,
                "transaction_id": e.transaction_id,
            }
            for e in page.entries
        ],
        "next_cursor": None if page.next is None else str(page.next),
    }
    response = _json(body)
    if page.next is not None:
        path = quote(request.path, safe="/!$&'()*+,;=:@~")
        query_string = urlencode({"limit": limit, "cursor": str(page.next)})
        response.headers["Link"] = f'<{op.issuer.rstrip("/")}{path}?{query_string}>; rel="next"'
    return response


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
    parsed = _verify_body()
    if isinstance(parsed, BaseResponse):
        return parsed
    token, passcode = parsed
    now = op.clock.now()
    with op.db.session() as s:
        try:
            verification = factor_service.verify_passcode(
                s,
                throttling=op.throttling,
                transactions=_transactions(),
                client_id=_caller(),
                user_ref=user_ref,
                factor=factor,
                transaction_id=token,
                passcode=passcode,
                now=now,
                allow_reuse=op.config.provider.totp_reuse,
            )
        except factor_service.AuditUnavailable:
            return _unrecorded()
    reason, subject = verification.reason, verification.subject
    if reason is not Reason.VERIFIED:
        return _refusal(reason, verification.description, verification.retry_after)
    body = {
        "status": "verified",
        "sub": subject,
        "factor": factor,
        "transaction_id": token,
        "verified_at": now,
        "amr": ["otp"],
    }
    return _json(body)
