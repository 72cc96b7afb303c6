"""CIBA over HTTP: the backchannel authentication endpoint and the authentication device's pages.

- ``POST /backchannel`` (CIBA Core 1.0 §7): a confidential client registered for the CIBA grant
  asks that a user approve a login or a transaction; the answer (§7.3) is ``auth_req_id``,
  ``expires_in`` and ``interval``, then the client polls the token endpoint
  (:mod:`provider.ciba_grant`). Errors are §13's JSON.
- ``GET /sandbox/device/<user>`` (sandbox mode): the user's "phone" — the requests waiting for
  them, each with its client, binding message and RFC 9396 details, and a form that asks the
  factors of the requested level and approves or denies. ``POST /sandbox/device/<user>/approve``
  and ``…/deny`` (JSON, what ``stepup approve`` / ``stepup deny`` call) decide the user's oldest
  pending request without a form: the sandbox vouches for the user, as ``/sandbox/token`` does.

The views translate HTTP; the request's rules are :mod:`provider.ciba_request`, its states
:mod:`provider.ciba_states`, its storage :mod:`provider.ciba_store`.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error, UnauthorizedClientError
from flask import Blueprint, Response, abort, jsonify, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from .. import ciba_store, login, store
from ..app import Provider, current_provider
from ..authn_policy import amr_for
from ..authorization_details import describe_entry
from ..ciba_request import GRANT_TYPE, BackchannelError, parse_backchannel_request
from ..ciba_states import DEFAULT_INTERVAL, Answer, Event
from ..models import User
from ..oauth import FormRequest, understood_scope

bp = Blueprint("ciba", __name__)

BACKCHANNEL_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


@bp.record_once
def _exempt(state: BlueprintSetupState) -> None:
    csrf = state.app.extensions["csrf"]
    # Clients authenticate themselves; the device's JSON decisions are sandbox tools called by
    # the CLI with a JSON body (a cross-site form cannot send application/json).
    csrf.exempt(backchannel)
    csrf.exempt(decide_oldest)


# --- the backchannel authentication endpoint -----------------------------------------------------


@bp.post("/backchannel")
def backchannel() -> BaseResponse:
    op = current_provider()
    oauth_request = op.server.create_oauth2_request(None)
    assert isinstance(oauth_request, FormRequest)
    try:
        if error := oauth_request.invalid():
            raise error
        # §7.1: "The Client MUST authenticate to the Backchannel Authentication Endpoint using
        # the authentication method registered for its client_id".
        client = op.server.authenticate_client(
            oauth_request, BACKCHANNEL_AUTH_METHODS, endpoint="backchannel"
        )
        if not client.check_grant_type(GRANT_TYPE):
            raise UnauthorizedClientError("This client is not registered for CIBA.")
        params = oauth_request.params
        known = set(understood_scope(op.server.scopes_supported, client, params.get("scope")))
        parsed = parse_backchannel_request(params, op.policy, known)
        user = _hinted_user(op, *parsed.hint)
    except BackchannelError as exc:
        error = OAuth2Error(
            error=exc.error, description=exc.description, status_code=exc.status_code
        )
        return op.server.handle_error_response(oauth_request, error)  # type: ignore[no-any-return]
    except OAuth2Error as exc:
        return op.server.handle_error_response(oauth_request, exc)  # type: ignore[no-any-return]
    now = op.clock.now()
    # §7.3: "auth_req_id ... MUST contain sufficient entropy (a minimum of 128 bits while 160
    # bits is recommended)" — 256 here.
    auth_req_id = store.new_secret(32)
    ciba_store.create(
        op.db,
        auth_req_id=auth_req_id,
        client_id=client.client_id,
        user_id=user.id,
        scope=parsed.scope,
        acr=parsed.acr,
        binding_message=parsed.binding_message,
        authorization_details=parsed.authorization_details,
        interval=DEFAULT_INTERVAL,
        now=now,
        expires_at=now + parsed.expires_in,
    )
    response = jsonify(
        auth_req_id=auth_req_id, expires_in=parsed.expires_in, interval=DEFAULT_INTERVAL
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _hinted_user(op: Provider, kind: str, value: str) -> User:
    """§7.1 hints: ``login_hint`` is a username; ``id_token_hint`` an ID token this provider
    issued (an expired one too: it only names the user). §13 ``unknown_user_id``: "The OpenID
    Provider is not able to identify which end-user the Client wishes to be authenticated by
    means of the hint provided in the request"."""
    with op.db.session() as s:
        if kind == "login_hint":
            user = s.scalar(select(User).where(func.lower(User.username) == value.lower()))
        else:
            claims = op.signer.verify(value, typ="JWT")
            subject = claims.get("sub") if claims is not None else None
            if not isinstance(subject, str) or not subject:
                raise BackchannelError(
                    "invalid_request", "id_token_hint is not an ID token this provider issued."
                )
            user = s.scalar(select(User).where(User.subject == subject))
    if user is None:
        raise BackchannelError("unknown_user_id", "No user matches the hint.")
    return user


# --- the authentication device (sandbox) ----------------------------------------------------------


def _sandbox_only(op: Provider) -> None:
    if not op.config.provider.sandbox:
        abort(404)


def _device_user(op: Provider, username: str) -> User:
    with op.db.session() as s:
        user = s.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        abort(404)
    return user


def _view(op: Provider, row: ciba_store.RequestRow) -> dict[str, Any]:
    level = op.policy.resolve(row.acr) or op.policy.weakest
    client = op.issuance.query_client(row.client_id)
    return {
        "id": row.id,
        "client_name": (client.row.name if client else None) or row.client_id,
        "binding_message": row.binding_message,
        "details": [describe_entry(e) for e in row.authorization_details or ()],
        "level": level,
        "factors": level.factors,
        "expires_in": max(0, row.snapshot.expires_at - op.clock.now()),
    }


def _render_device(
    op: Provider,
    user: User,
    *,
    status: int = 200,
    message: str | None = None,
    error: str | None = None,
    error_code: str | None = None,
    failed: int | None = None,
) -> BaseResponse:
    with op.db.engine.connect() as conn:
        rows = ciba_store.pending_for(conn, user.id, op.clock.now())
    html = render_template(
        "device.html",
        user=user,
        requests=[_view(op, r) for r in rows],
        has_otp=user.totp_secret is not None,
        message=message,
        error=error,
        error_code=error_code,
        failed=failed,
    )
    return Response(html, status=status, mimetype="text/html")


@bp.get("/sandbox/device/<username>")
def device(username: str) -> BaseResponse:
    op = current_provider()
    _sandbox_only(op)
    return _render_device(op, _device_user(op, username))


@bp.post("/sandbox/device/<username>/<int:request_id>")
def decide(username: str, request_id: int) -> BaseResponse:
    """The device's form: deny, or verify the level's factors and approve."""
    op = current_provider()
    _sandbox_only(op)
    user = _device_user(op, username)
    with op.db.engine.connect() as conn:
        row = ciba_store.find_by_id(conn, request_id)
    if row is None or row.user_id != user.id:
        abort(404)
    now = op.clock.now()
    if request.form.get("action") == "deny":
        answer = _apply(op, row, Event.DENY, now, None)
        return _after(op, user, answer, request_id)
    level = op.policy.resolve(row.acr) or op.policy.weakest
    verified = _verify_factors(op, user, level.factors, now)
    if isinstance(verified, login.Result):
        message = {
            login.Outcome.THROTTLED: "Too many failed attempts. Try again in "
            f"{verified.retry_after} seconds.",
            login.Outcome.EXPIRED: "That code has expired. Enter the code your app shows now.",
            login.Outcome.REPLAYED: "That code was already used. Wait for the next code.",
        }.get(verified.outcome, "That is not right. Check it and try again.")
        status = 429 if verified.outcome is login.Outcome.THROTTLED else 401
        return _render_device(
            op, user, status=status, error=message, error_code=verified.outcome.value,
            failed=request_id,
        )  # fmt: skip
    decision = ciba_store.Decision(amr=amr_for(level.factors), auth_time=now)
    answer = _apply(op, row, Event.APPROVE, now, decision)
    return _after(op, user, answer, request_id)


def _verify_factors(
    op: Provider, user: User, factors: tuple[str, ...], now: int
) -> login.Result | None:
    """Each factor of the level, from the form, in order (password first, so a wrong password
    does not spend a one-time code). ``None``: all verified; else the first refusal."""
    for factor in factors:
        with op.db.session() as s:
            if factor == "pwd":
                result = login.check_password(
                    s, op.throttling, user.username, request.form.get("password", ""), now
                )
                if result.ok and result.user is not None and result.user.id != user.id:
                    result = login.Result(login.Outcome.WRONG)
            elif factor == "otp":
                fresh = s.get(User, user.id)
                assert fresh is not None
                result = login.check_totp(
                    s, op.throttling, fresh, request.form.get("code", ""), now,
                    allow_reuse=op.config.provider.totp_reuse,
                )  # fmt: skip
            else:
                result = login.Result(login.Outcome.WRONG)  # a factor this page cannot verify
        if not result.ok:
            return result
    return None


def _apply(
    op: Provider,
    row: ciba_store.RequestRow,
    event: Event,
    now: int,
    decision: ciba_store.Decision | None,
) -> Answer:
    result = ciba_store.run(
        op.db, lambda conn: ciba_store.find_by_id(conn, row.id), event, now, decision=decision
    )
    return Answer.ALREADY_DECIDED if result is None else result[0].answer


_OUTCOMES = {
    Answer.APPROVED: (200, "Approved. The application can continue."),
    Answer.DENIED: (200, "Denied. The application is told you said no."),
    Answer.EXPIRED: (409, "This request has expired; nothing was approved."),
    Answer.ALREADY_DECIDED: (409, "This request was decided already."),
}


def _after(op: Provider, user: User, answer: Answer, request_id: int) -> BaseResponse:
    status, text = _OUTCOMES[answer]
    if status == 200:
        return _render_device(op, user, message=text)
    return _render_device(op, user, status=status, error=text, error_code=answer.value)


@bp.post("/sandbox/device/<username>/<any(approve, deny):action>")
def decide_oldest(username: str, action: str) -> BaseResponse:
    """``stepup approve USER`` / ``stepup deny USER``: decide the user's oldest pending request
    (or the one ``{"request": id}`` names). The sandbox vouches for the user: an approval counts
    the requested level's factors as verified now, like ``/sandbox/token`` mints any claims."""
    op = current_provider()
    _sandbox_only(op)
    with op.db.session() as s:
        user = s.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        return _json_error(400, "invalid_request", f"no user {username!r}")
    body: Any = request.get_json(silent=True)
    if body is None:
        body = {}
    chosen = body.get("request") if isinstance(body, dict) else "invalid"
    if chosen is not None and (isinstance(chosen, bool) or not isinstance(chosen, int)):
        return _json_error(400, "invalid_request", 'send {} or {"request": <id>}')
    now = op.clock.now()
    with op.db.engine.connect() as conn:
        pending = ciba_store.pending_for(conn, user.id, now)
    row = next((r for r in pending if chosen is None or r.id == chosen), None)
    if row is None:
        return _json_error(409, "no_pending_request", f"{user.username} has no pending request")
    level = op.policy.resolve(row.acr) or op.policy.weakest
    decision = None
    if action == "approve":
        decision = ciba_store.Decision(amr=amr_for(level.factors), auth_time=now)
    answer = _apply(op, row, Event.APPROVE if action == "approve" else Event.DENY, now, decision)
    if answer not in (Answer.APPROVED, Answer.DENIED):
        return _json_error(409, answer.value, _OUTCOMES[answer][1])
    response = jsonify(
        request=row.id,
        user=user.username,
        outcome=answer.value,
        client_id=row.client_id,
        binding_message=row.binding_message,
        acr=row.acr if action == "approve" else None,
        authorization_details=row.authorization_details,
        device_page=url_for("ciba.device", username=user.username, _external=True),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_error(status: int, error: str, description: str) -> BaseResponse:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
