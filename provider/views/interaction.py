"""The authorization endpoint and the login pages it leads to.

``/authorize`` validates the request (client and redirect URI first: a bad one gets an error page,
never a redirect — RFC 6749 §4.1.2.1), saves it as an *interaction*, and asks
:func:`provider.authn_policy.decide` what the user must do. The pages under ``/interaction/<id>``
collect one factor each and come back to the same question until the answer is "issue" (a code is
sent to the client) or "fail" (an OIDC error is sent to the client). The views only translate HTTP;
the decisions live in ``authn_policy`` and the checks in ``login``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from .. import login, sandbox_clients, store
from ..app import Provider, current_provider
from ..authn_policy import (
    Authenticate,
    AuthnRequest,
    Decision,
    FactorRecord,
    Fail,
    SessionState,
    decide,
)
from ..authn_policy import Issue as IssueDecision
from ..authorization_details import (
    InvalidAuthorizationDetails,
    canonical_text,
    describe_entry,
    parse_authorization_details,
)
from ..authorization_request import (
    BadRequest,
    check_dpop_jkt,
    parse_authn_request,
    refuse_request_objects,
)
from ..clients import ClientAdapter
from ..error_text import describe, repeated_parameter
from ..factors import totp
from ..models import Interaction, LoginSession, User
from ..oauth import AuthenticatedUser
from ..resource_indicators import InvalidTarget
from ..sandbox_faults import FaultBoard
from ..sandbox_faults import redirect_error as fault_error
from ..sandbox_timeline import Timeline, asked
from ..tokens import AuthContext
from .errors import error_page

bp = Blueprint("interaction", __name__)


def see_other_after_post(response: BaseResponse) -> BaseResponse:
    """RFC 9700 §4.12: a redirect that answers a POST of these pages (a factor, a cancel, a
    form-posted authorization request) is a ``303``, so the browser follows it with a GET and
    never re-sends the form — credentials included — to where it leads; never a ``307``. The
    views build their redirects as for a GET (Authlib's ``302``); this is the one place that
    says what a POST gets."""
    if request.method == "POST" and response.status_code in (302, 307):
        response.status_code = 303
    return response


bp.after_request(see_other_after_post)

SESSION_COOKIE = "stepup_session"
MESSAGES = {
    login.Outcome.WRONG: "That is not right. Check it and try again.",
    login.Outcome.EXPIRED: "That code has expired. Enter the code your app shows now.",
    login.Outcome.REPLAYED: "That code was already used. Wait for the next code and enter it.",
}
PASSWORD_WRONG = "The username or password is incorrect."
FACTOR_LABELS = {"otp": "a one-time code", "passkey": "your passkey"}


# --- /authorize ------------------------------------------------------------------------------


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse:
    """OIDC Core §3.1.2.1: the authorization endpoint MUST support GET and POST."""
    op = current_provider()
    values = request.args if request.method == "GET" else request.form
    # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    # RFC 8707 §2 excepts ``resource``, repeated to name several resources.
    repeated = [k for k in values if k != "resource" and len(values.getlist(k)) > 1]
    # RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted".
    params = {k: values[k] for k in values if values[k]}
    resources = [v for v in values.getlist("resource") if v]
    params.pop("resource", None)

    client = op.issuance.query_client(params.get("client_id", ""))
    settings = op.config.provider
    if client is None:
        return error_page(
            400,
            "Unknown application",
            "The client_id is not registered here.",
            sandbox_details=sandbox_clients.unknown_client(
                params.get("client_id"),
                sorted(op.issuance.clients),
                loopback_clients=settings.loopback_clients,
            )
            if settings.sandbox
            else None,
        )
    # Every redirect from here on goes to a URI built from the registered one, never to the
    # presented text (which matches it exactly, but for a loopback URI's port).
    redirect_uri = client.redirect_target(params.get("redirect_uri", ""))
    if redirect_uri is None:
        return error_page(
            400,
            "Unregistered redirect URI",
            "The redirect_uri is missing or is not one registered for this application, so "
            "the provider will not send you there.",
            sandbox_details=sandbox_clients.unregistered_redirect_uri(
                client, params.get("redirect_uri")
            )
            if settings.sandbox
            else None,
        )
    params["redirect_uri"] = redirect_uri
    state = params.get("state")
    if repeated:
        return _redirect_error(
            op, redirect_uri, "invalid_request", repeated_parameter(repeated[0]), state
        )
    try:
        refuse_request_objects(params)
        check_dpop_jkt(params)
        if "authorization_details" in params:
            # RFC 9396 §2, §3: the transaction to approve, parsed as the CIBA request's is; kept
            # normalised, so the page, the code and the token all show the same entries.
            details = parse_authorization_details(params["authorization_details"])
            params["authorization_details"] = canonical_text(details)
        _validate_with_authlib(op, params)
        if resources:
            # RFC 8707 §2: an unknown or malformed resource is invalid_target, sent back to the
            # client. Saved space-separated (an absolute URI holds no space).
            params["resource"] = " ".join(op.issuance.resources.requested(resources))
        authn = parse_authn_request(params, started_at=op.clock.now())
        if authn.prompt & {"none"} and authn.prompt != {"none"}:
            raise BadRequest("invalid_request", "prompt=none cannot be combined with other values")
        id_token_hint_subject(op, params)
    except OAuth2Error as exc:
        return _redirect_error(op, redirect_uri, exc.error, exc.description or exc.error, state)
    except (BadRequest, InvalidTarget) as exc:
        return _redirect_error(op, redirect_uri, exc.error, exc.description, state)
    except InvalidAuthorizationDetails as exc:
        # RFC 9396 §5: "The AS MUST abort processing and respond with an error
        # invalid_authorization_details to the client" — a redirect, as every error here.
        return _redirect_error(op, redirect_uri, exc.error, str(exc), state)

    browser_id = session.setdefault("browser", store.new_secret(16))
    with op.db.session() as s:
        current, _ = _current_login(op)
        interaction_id = store.start_interaction(
            s,
            browser_id=browser_id,
            client_id=client.client_id,
            params=params,
            now=store.interaction_start(current, op.clock.now()),
        )
        interaction = s.get(Interaction, interaction_id)
        assert interaction is not None
    return _proceed(op, interaction, client, at_authorize=True)


def _validate_with_authlib(op: Provider, params: dict[str, str]) -> None:
    oauth_request = saved_request(op, params)
    grant = op.server.get_authorization_grant(oauth_request)
    grant.validate_authorization_request()


def saved_request(op: Provider, params: dict[str, str]) -> OAuth2Request:
    """Rebuild the authorization request for Authlib from the saved parameters."""
    # Authlib reads the parameters from the payload; of the URI it checks only the scheme and host
    # (secure transport), so the query string is not built.
    oauth_request = OAuth2Request("GET", f"{op.issuer}/authorize")
    oauth_request.payload = BasicOAuth2Payload(params)
    return oauth_request


# --- the interaction ---------------------------------------------------------------------------


def _load(
    op: Provider, interaction_id: str, s: Session | None = None
) -> tuple[Interaction, ClientAdapter] | BaseResponse:
    """The browser's interaction and its client, else the error page. ``s``: the request's
    database session, whose transaction the read then opens (the password page goes on to admit
    the guess in it); without one, a session of its own."""
    if s is None:
        with op.db.session() as own:
            return _load(op, interaction_id, own)
    interaction = store.find_interaction(s, interaction_id, session.get("browser"), op.clock.now())
    client = op.issuance.query_client(interaction.client_id) if interaction else None
    if interaction is None or client is None:
        return error_page(
            400,
            "This sign-in page has expired",
            "It was opened in another browser, finished already, or waited too long. Go back to "
            "the application and start again.",
        )
    return interaction, client


def _current_login(op: Provider) -> tuple[LoginSession | None, User | None]:
    with op.db.session() as s:
        row = store.load_session(s, request.cookies.get(SESSION_COOKIE), op.clock.now())
        user = s.get(User, row.user_id) if row else None
    return row, user


Login = tuple[LoginSession | None, User | None]


def _decide(
    op: Provider,
    interaction: Interaction,
    current: Login | None = None,
    enrolled: frozenset[str] | None = None,
) -> tuple[Decision, LoginSession | None, User | None]:
    """The policy's decision for ``interaction`` and the browser's login (``current``: one just
    recorded, which the request's cookie does not name yet; ``enrolled``: its user's factors,
    when the caller read them already)."""
    row, user = current if current is not None else _current_login(op)
    state = None
    if row is not None and user is not None:
        if enrolled is None:
            with op.db.session() as s:
                enrolled = login.enrolled_factors(s, user)
        state = SessionState(
            subject=user.subject,
            factors=tuple(FactorRecord(k, int(v)) for k, v in row.factors.items()),
            user_factors=enrolled,
        )
    authn = parse_authn_request(interaction.params, started_at=interaction.started_at)
    authn = _resolve_hints(op, authn, interaction.params)
    settings = op.config.provider
    enrollable = [
        name
        for name, allowed in (
            ("otp", settings.allow_totp_enrolment),
            ("passkey", settings.allow_passkey_enrolment),
        )
        if allowed
    ]
    decision = decide(authn, state, op.policy, op.clock.now(), allow_enrolment=enrollable)
    return decision, row, user


# Stands for a hinted user that does not exist: it equals no subject (subjects are URL-safe
# base64), so an unknown login_hint is treated exactly like another user's.
NO_SUCH_SUBJECT = "!unknown"


def id_token_hint_subject(op: Provider, params: dict[str, str]) -> str | None:
    """The ``sub`` of the request's ``id_token_hint``, or ``None`` without one.

    OIDC Core §3.1.2.2: "If an id_token_hint is present, the OP MUST validate that it was the
    issuer of the ID Token." It must be an ID token this provider signed (a ``typ: JWT`` token
    with our ``iss`` and a key of ours); §3.1.2.1 allows an expired one ("The OP SHOULD accept
    ID Tokens when the RP identified by the ID Token is an audience of the ID Token, even if
    [...] expired"), so ``exp`` is not checked. Anything else is ``invalid_request``.
    """
    hint = params.get("id_token_hint")
    if not hint:
        return None
    claims = op.signer.verify(hint, typ="JWT")
    subject = claims.get("sub") if claims is not None else None
    if not isinstance(subject, str) or not subject:
        raise BadRequest("invalid_request", "id_token_hint is not an ID token this provider issued")
    return subject


def _resolve_hints(op: Provider, authn: AuthnRequest, params: dict[str, str]) -> AuthnRequest:
    """The policy compares hints with subjects: ``login_hint`` is a username, ``id_token_hint``
    an ID token. An unknown username becomes :data:`NO_SUCH_SUBJECT`, so ``prompt=none`` answers
    it exactly as it answers another user's name: no way to tell which usernames exist."""
    try:
        hinted = id_token_hint_subject(op, params)
    except BadRequest:
        hinted = NO_SUCH_SUBJECT  # checked at /authorize; a key retired since: fail closed
    login_hint = None
    if authn.login_hint is not None:
        with op.db.session() as s:
            user = s.scalar(
                select(User).where(func.lower(User.username) == authn.login_hint.lower())
            )
        login_hint = user.subject if user else NO_SUCH_SUBJECT
    return replace(authn, login_hint=login_hint, id_token_hint_subject=hinted)


def _hinted_username(op: Provider, params: dict[str, str]) -> str | None:
    """Who the login page is for: the user the ``id_token_hint`` names, else ``login_hint``."""
    try:
        subject = id_token_hint_subject(op, params)
    except BadRequest:
        subject = None
    if subject is not None:
        with op.db.session() as s:
            user = s.scalar(select(User).where(User.subject == subject))
        return user.username if user else None
    return params.get("login_hint")


def _faults() -> FaultBoard | None:
    """The sandbox's armed faults (provider/sandbox_faults.py); ``None`` outside sandbox mode."""
    board: FaultBoard | None = current_app.extensions.get("sandbox_faults")
    return board


@dataclass
class Outcome:
    """Where an interaction stands once the policy decided on the browser's login."""

    decision: Decision
    row: LoginSession | None
    user: User | None
    #: A sandbox fault armed for the user that ends this login (taken: it fires once).
    fault: str | None
    #: Whether this request ended the interaction (its single use); ``None`` while it goes on.
    finished: bool | None = None

    @property
    def ends(self) -> bool:
        """Whether the interaction ends here: a code or an error goes back to the client."""
        return self.fault is not None or not isinstance(self.decision, Authenticate)


def _outcome(
    op: Provider,
    interaction: Interaction,
    current: Login | None = None,
    enrolled: frozenset[str] | None = None,
) -> Outcome:
    """:func:`_decide`, and the sandbox fault that ends the login, if one is armed."""
    decision, row, user = _decide(op, interaction, current, enrolled)
    board = _faults()
    fault = board.take(user.username, ("cancel", "unmet")) if board and user else None
    return Outcome(decision, row, user, fault)


def _proceed(
    op: Provider,
    interaction: Interaction,
    client: ClientAdapter,
    *,
    at_authorize: bool = False,
) -> BaseResponse:
    """Answer the interaction: the page of the next factor, or the client's redirect (a code or
    an error). ``at_authorize``: from a request that must not render a page (``/authorize``, a
    posted factor), so a step still needed is a redirect to the interaction page."""
    outcome = _outcome(op, interaction)
    if outcome.ends:
        with op.db.session() as s:
            outcome.finished = store.finish_interaction(s, interaction.id)
    return _answer(op, interaction, client, outcome, at_authorize=at_authorize)


def _answer(
    op: Provider,
    interaction: Interaction,
    client: ClientAdapter,
    outcome: Outcome,
    *,
    at_authorize: bool,
) -> BaseResponse:
    """:func:`_proceed`'s answer, once the interaction was ended if the outcome ends it."""
    params = interaction.params
    decision, user = outcome.decision, outcome.user
    if outcome.fault is not None:
        error, text = fault_error(outcome.fault)
        return _redirect_error(op, params["redirect_uri"], error, text, params.get("state"))
    if isinstance(decision, Authenticate):
        if at_authorize:
            return redirect(url_for("interaction.page", interaction_id=interaction.id), 303)
        return _render_step(op, interaction, client, decision, user)
    if not outcome.finished:
        return error_page(400, "Already finished", "This sign-in was completed already.")
    if isinstance(decision, Fail):
        return _redirect_error(
            op, params["redirect_uri"], decision.error, decision.description, params.get("state")
        )
    assert isinstance(decision, IssueDecision)
    assert user is not None
    assert outcome.row is not None
    granted = AuthenticatedUser(
        user, AuthContext(decision.acr, decision.amr, decision.auth_time), outcome.row.id
    )
    oauth_request = saved_request(op, params)
    grant = op.server.get_authorization_grant(oauth_request)
    response: Response = op.server.create_authorization_response(
        request=oauth_request, grant_user=granted, grant=grant
    )
    return response


@bp.get("/interaction/<interaction_id>")
def page(interaction_id: str) -> BaseResponse:
    op = current_provider()
    loaded = _load(op, interaction_id)
    if isinstance(loaded, BaseResponse):
        return loaded
    interaction, client = loaded
    return _proceed(op, interaction, client)


def _render_step(
    op: Provider,
    interaction: Interaction,
    client: ClientAdapter,
    decision: Authenticate,
    user: User | None,
    *,
    error: str | None = None,
    invalid: frozenset[str] = frozenset(),
    error_code: str | None = None,
    status: int = 200,
    username: str | None = None,
) -> BaseResponse:
    """The page for the next factor. ``error`` is shown in a ``role="alert"`` element that every
    input names in ``aria-describedby``; the inputs in ``invalid`` (by name) get
    ``aria-invalid="true"``."""
    timeline: Timeline | None = current_app.extensions.get("sandbox_timeline")
    if timeline is not None:  # sandbox only: what the provider asked, for /sandbox/timeline
        timeline.add(
            asked(
                op.clock.now(),
                decision.factors,
                decision.target.value,
                decision.reason,
                again=error is not None,
            )
        )
    common: dict[str, Any] = {
        "client_name": client.row.name or client.client_id,
        "decision": decision,
        "level": decision.target,
        "interaction_id": interaction.id,
        "error": error,
        "invalid": invalid,
        # A machine code next to the message (data-error), for scripts that drive these pages.
        "error_code": error_code,
        "essential": parse_authn_request(interaction.params, started_at=0).essential_acr
        is not None,
        # RFC 9396: what the user approves, in words, on every page of the interaction.
        "transaction": transaction_lines(interaction.params),
    }
    from . import passkeys  # the passkey pages, apart: this module is long enough

    passkey_first = user is None and "pwd" not in decision.factors
    if passkey_first and request.args.get("with") != "password":
        # A level without a password, and nobody signed in: a sign-in without a username.
        return passkeys.assertion_page(op, interaction, decision, None, common, status)
    if "pwd" in decision.factors or user is None:
        hint = (
            username or _hinted_username(op, interaction.params) or (user.username if user else "")
        )
        # The password page asks for the password only; say what comes after it.
        later = [FACTOR_LABELS[f] for f in decision.factors if f in FACTOR_LABELS]
        if passkey_first:
            common["passkey_url"] = url_for("interaction.page", interaction_id=interaction.id)
        html = render_template("login.html", username=hint, then=" and ".join(later), **common)
    elif "otp" in decision.enrol:
        secret = _pending_secret(op, interaction)
        uri = totp.provisioning_uri(secret, account=user.username, issuer=_issuer_label(op))
        import segno  # here: only enrolment draws a QR code (start-up time)

        qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP enrolment QR code")
        html = render_template(
            "enrol.html", otpauth_uri=uri, secret=secret, qr_svg=qr_svg, user=user, **common
        )
    elif "passkey" in decision.enrol:
        return passkeys.registration_page(op, interaction, decision, user, common, status)
    elif "otp" in decision.factors:
        html = render_template("otp.html", user=user, **common)
    else:
        return passkeys.assertion_page(op, interaction, decision, user, common, status)
    return Response(html, status=status, mimetype="text/html")


def transaction_lines(params: dict[str, str]) -> list[str]:
    """The saved request's ``authorization_details`` in words ("Pay 1500.00 EUR to acc_bob");
    empty without them. The saved text was validated and normalised at /authorize."""
    text = params.get("authorization_details")
    return [describe_entry(e) for e in parse_authorization_details(text)] if text else []


def _issuer_label(op: Provider) -> str:
    return "Stepup sandbox" if op.config.provider.sandbox else op.issuer


def _pending_secret(op: Provider, interaction: Interaction) -> str:
    if interaction.pending_totp_secret:
        return interaction.pending_totp_secret
    with op.db.session() as s:
        row = s.get(Interaction, interaction.id)
        assert row is not None
        row.pending_totp_secret = totp.generate_secret()
        s.commit()
        interaction.pending_totp_secret = row.pending_totp_secret
        return row.pending_totp_secret


# --- the forms ---------------------------------------------------------------------------------


def _form_step(
    interaction_id: str, s: Session | None = None
) -> tuple[Provider, Interaction, ClientAdapter] | BaseResponse:
    op = current_provider()
    loaded = _load(op, interaction_id, s)
    if isinstance(loaded, BaseResponse):
        return loaded
    interaction, client = loaded
    if request.form.get("action") == "cancel":
        return _cancel(op, interaction)
    return op, interaction, client


def _cancel(op: Provider, interaction: Interaction) -> BaseResponse:
    """The user declined. OIDC Unmet Authentication Requirements §3: when the essential acr
    cannot be met the OP returns ``unmet_authentication_requirements``; otherwise the user
    simply denied the request (RFC 6749 §4.1.2.1 ``access_denied``) — as does a user who
    declines to approve a transaction (``authorization_details``), whatever else was asked."""
    params = interaction.params
    with op.db.session() as s:
        store.finish_interaction(s, interaction.id)
    essential = parse_authn_request(params, started_at=0).essential_acr is not None
    if params.get("authorization_details"):
        # RFC 9396 §5 names no error of its own for a refusal: RFC 6749's access_denied.
        error, text = "access_denied", "The user did not approve the transaction."
    elif essential:
        error, text = "unmet_authentication_requirements", "The user did not complete the step-up."
    else:
        error, text = "access_denied", "The user cancelled the sign-in."
    return _redirect_error(op, params["redirect_uri"], error, text, params.get("state"))


def _factor_verified(
    op: Provider,
    interaction: Interaction,
    user: User,
    factor: str | tuple[str, ...],
    *,
    enrolled: frozenset[str] | None = None,
    uncleared: str | None = None,
    s: Session | None = None,
) -> BaseResponse:
    """Record the factor in the browser's login session (a new one, or the user's own renewed
    with a new id), then answer the interaction at once: the client's redirect when the policy
    is met, else a redirect to the page of the next factor (post/redirect/get, so that
    reloading a page never posts a factor again).

    The policy decides on the session as it will be once recorded, so that one transaction
    records it, clears the attempt record the check left (``uncleared``: a throttle key), and
    ends the interaction when the decision does (its single use: of two posts racing, the one
    whose ``DELETE`` finds no row answers "Already finished", as before — each with its session).
    ``enrolled``: the user's factors, when the check read them with the user. ``s``: the
    request's database session, if it has one (its last transaction committed)."""
    if s is None:
        with op.db.session() as own:
            return _factor_verified(
                op, interaction, user, factor, enrolled=enrolled, uncleared=uncleared, s=own
            )
    client = op.issuance.query_client(interaction.client_id)
    now = op.clock.now()
    current = store.load_session(s, request.cookies.get(SESSION_COOKIE), now)
    if enrolled is None and client is not None:
        enrolled = login.enrolled_factors(s, user)
    sid, recorded = store.renewed_session(
        current,
        user,
        factor,
        now,
        op.config.provider.session_lifetime,
        not_before=interaction.started_at,
    )
    outcome = None
    if client is not None:
        outcome = _outcome(op, interaction, (recorded, user), enrolled)
    # The writes last, together: SQLite holds its write lock from the first to the commit.
    store.save_session(s, current, recorded)
    if uncleared is not None:
        op.throttling.clear(s, uncleared)
    if outcome is not None and outcome.ends:
        outcome.finished = store.finish_interaction(s, interaction.id, commit=False)
    s.commit()
    if client is None or outcome is None:  # the client left the configuration mid-login
        response = redirect(url_for("interaction.page", interaction_id=interaction.id), 303)
    else:
        response = _answer(op, interaction, client, outcome, at_authorize=True)
    return set_session_cookie(op, response, sid)


def set_session_cookie(op: Provider, response: BaseResponse, sid: str) -> BaseResponse:
    """The provider session's cookie: HttpOnly, SameSite=Lax, Secure on an https issuer."""
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=op.config.provider.session_lifetime,
        httponly=True,
        samesite="Lax",
        secure=op.secure_cookies,
    )
    return response


def _retry(
    op: Provider,
    interaction: Interaction,
    client: ClientAdapter,
    result: login.Result,
    message: str,
    username: str | None = None,
    *,
    invalid: frozenset[str],
) -> BaseResponse:
    """The same page again with the refusal; ``invalid``: the inputs whose value was wrong."""
    decision, _, user = _decide(op, interaction)
    if not isinstance(decision, Authenticate):
        return _proceed(op, interaction, client)
    if result.outcome is login.Outcome.THROTTLED:
        message = f"Too many failed attempts. Try again in {result.retry_after} seconds."
        invalid = frozenset()  # nothing typed was wrong: the account is locked for a while
    status = 429 if result.outcome is login.Outcome.THROTTLED else 401
    return _render_step(
        op,
        interaction,
        client,
        decision,
        user,
        error=message,
        invalid=invalid,
        error_code=result.outcome.value,
        status=status,
        username=username,
    )


@bp.post("/interaction/<interaction_id>/password")
def password(interaction_id: str) -> BaseResponse:
    # One database session for the request: the interaction's read opens the transaction that
    # admits the guess and reads the user (committed before argon2); the settling one follows.
    with current_provider().db.session() as s:
        return _password(interaction_id, s)


def _password(interaction_id: str, s: Session) -> BaseResponse:
    step = _form_step(interaction_id, s)
    if isinstance(step, BaseResponse):
        return step
    op, interaction, client = step
    username = request.form.get("username", "")
    pw = request.form.get("password", "")
    if not username or not pw:
        return _retry(
            op,
            interaction,
            client,
            login.Result(login.Outcome.WRONG),
            "Enter your username and password.",
            username,
            invalid=frozenset(
                name for name, value in [("username", username), ("password", pw)] if not value
            ),
        )
    board = _faults()
    if board is not None and board.refuses(interaction.id, username):
        result = login.Result(login.Outcome.WRONG)  # a sandbox fault: nothing is checked
    else:
        result = login.check_password(s, op.throttling, username, pw, op.clock.now(), clear=False)
    if not result.ok:
        return _retry(
            op,
            interaction,
            client,
            result,
            PASSWORD_WRONG,
            username,
            invalid=frozenset({"username", "password"}),
        )
    assert result.user is not None
    return _factor_verified(
        op,
        interaction,
        result.user,
        "pwd",
        enrolled=result.enrolled,
        uncleared=result.uncleared,
        s=s,
    )


@bp.post("/interaction/<interaction_id>/otp")
def otp(interaction_id: str) -> BaseResponse:
    def check(s: Session, op: Provider, user: User, code: str, _: Interaction) -> login.Result:
        return login.check_totp(
            s,
            op.throttling,
            user,
            code,
            op.clock.now(),
            allow_reuse=op.config.provider.totp_reuse,
        )

    return _one_time_code(interaction_id, check)


@bp.post("/interaction/<interaction_id>/enrol")
def enrol(interaction_id: str) -> BaseResponse:
    def check(
        s: Session, op: Provider, user: User, code: str, interaction: Interaction
    ) -> login.Result | None:
        secret = interaction.pending_totp_secret
        if secret is None or user.totp_secret is not None:
            return None  # nothing to confirm (already enrolled, or no secret offered)
        return login.check_enrolment_code(s, op.throttling, user, secret, code, op.clock.now())

    return _one_time_code(interaction_id, check)


CodeCheck = Callable[[Session, Provider, User, str, Interaction], "login.Result | None"]


def _one_time_code(interaction_id: str, check: CodeCheck) -> BaseResponse:
    """A posted one-time code: verify it for the session's user, then record the OTP factor."""
    step = _form_step(interaction_id)
    if isinstance(step, BaseResponse):
        return step
    op, interaction, client = step
    row, user = _current_login(op)
    result = None
    board = _faults()
    if board is not None and user is not None and board.refuses(interaction.id, user.username):
        result = login.Result(login.Outcome.WRONG)  # a sandbox fault: nothing is checked
    elif row is not None and user is not None:
        with op.db.session() as s:
            result = check(s, op, user, request.form.get("code", ""), interaction)
    if result is None or user is None:
        # No session, or nothing to verify: the interaction page shows what is needed now.
        return redirect(url_for("interaction.page", interaction_id=interaction.id), 303)
    if not result.ok:
        message = MESSAGES.get(result.outcome, "")
        return _retry(op, interaction, client, result, message, invalid=frozenset({"code"}))
    return _factor_verified(op, interaction, user, "otp")


# --- errors sent to the client ----------------------------------------------------------------


def _redirect_error(
    op: Provider, redirect_uri: str, error: str, description: str, state: str | None
) -> BaseResponse:
    """RFC 6749 §4.1.2.1 error response; RFC 9207 §2: the ``iss`` parameter is included in
    error responses too. ``redirect_uri`` is the one built from the registered URI."""
    params = MultiDict([("error", error), ("error_description", describe(error, description))])
    if state is not None:
        params.add("state", state)
    params.add("iss", op.issuer)
    sep = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + sep + urlencode(list(params.items(multi=True))), 302)
