"""What must the user do now? The provider's authentication decision, as a table of named checks.

The authorization endpoint asks one question, again after every factor the user verifies: *given
this request, this session and the time, may a code be issued, or must the user authenticate — and
with which factors?* :func:`decide` answers it with plain data in and plain data out:

* :class:`Issue` — issue, with the ``acr``, ``amr`` and ``auth_time`` the tokens carry;
* :class:`Authenticate` — show the login page for these factors (and enrol these first), and why;
* :class:`Fail` — answer the client with this OIDC error.

Specs: OpenID Connect Core 1.0 §3.1.2.1 (``prompt``, ``max_age``, ``acr_values``, ``login_hint``,
``id_token_hint``),
§5.5.1.1 (essential ``acr``), §2 (``acr``, ``amr``, ``auth_time``); RFC 8176 (``amr`` values);
OpenID Connect Core Error Code ``unmet_authentication_requirements``; RFC 9396 (a request with
``authorization_details`` is approved by a factor verified in the interaction). The model is
node-oidc-provider's interaction policy: small named checks in a table, the first that fires wins.
``docs/step-up-semantics.md`` explains every decision with worked examples.

Pure: no Flask, no storage, no clock — ``now`` is epoch seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from provider.acr import PASSKEY_QUALIFIERS, AcrLevel, AcrPolicy

__all__ = [
    "CHECKS",
    "REASONS",
    "Authenticate",
    "AuthnRequest",
    "Check",
    "CheckContext",
    "Decision",
    "FactorRecord",
    "Fail",
    "Issue",
    "Need",
    "SessionState",
    "amr_for",
    "amr_of_factors",
    "decide",
]


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorRecord:
    """A factor (``"pwd"``, ``"otp"``, ``"passkey"``...) the session's user verified, and when
    (epoch seconds)."""

    name: str
    verified_at: int


@dataclass(frozen=True)
class SessionState:
    """The browser's session at the provider. ``user_factors``: what the user has enrolled."""

    subject: str
    factors: tuple[FactorRecord, ...]
    user_factors: frozenset[str]


@dataclass(frozen=True)
class AuthnRequest:
    """The parts of an authorization request that decide how the user must authenticate.

    ``essential_acr``: the values of ``{"id_token": {"acr": {"essential": true, ...}}}`` from the
    ``claims`` parameter, ``None`` when ``acr`` is not essential. ``interaction_started_at``: when
    the current authorization interaction began; a factor verified at or after it was verified *in
    this interaction*, which is how ``prompt=login`` and ``max_age`` are met by the user's
    re-authentication.
    ``login_hint``: compared with the session's subject, so the caller passes it as a subject (after
    resolving a username or e-mail address).
    ``id_token_hint_subject``: the ``sub`` of the ``id_token_hint``, which the caller has verified
    is an ID token this provider signed.
    ``transaction``: the request carries RFC 9396 ``authorization_details``: the user approves a
    transaction, which needs a factor verified in this interaction (:func:`transaction_approval`).
    """

    acr_values: tuple[str, ...] = ()
    essential_acr: tuple[str, ...] | None = None
    max_age: int | None = None
    prompt: frozenset[str] = frozenset()
    interaction_started_at: int | None = None
    login_hint: str | None = None
    id_token_hint_subject: str | None = None
    transaction: bool = False


# --- decisions --------------------------------------------------------------------------------

# Why the user must authenticate: a fixed set of machine codes, each with a sentence for the page.
_REASON_TEXT: dict[str, str] = {
    "login_required": "Sign in to continue.",
    "login_hint": "The application asked for a different account; sign in with that account.",
    "id_token_hint": "The application asked for a different account; sign in with that account.",
    "prompt_login": "The application asked you to sign in again.",
    "max_age": "Your last sign-in is too long ago for this application; sign in again.",
    "step_up": "This action needs a stronger sign-in",
    "elevation_expired": "Your stronger sign-in has expired; confirm it again",
    "session_expired": "Your session has expired; sign in again.",
    "confirm_before_enrol": "Before you add a new way to sign in, confirm the ones you have",
    "approve_transaction": "To approve this transaction, confirm it is you.",
}
REASONS: frozenset[str] = frozenset(_REASON_TEXT)

_FACTOR_TEXT: dict[str, str] = {"pwd": "your password", "otp": "a one-time code"}
# What a user enrols for a factor the level needs and they lack (``uv`` comes with the passkey).
ENROLLABLE: tuple[str, ...] = ("otp", "passkey")
_ENROL_TEXT: dict[str, str] = {
    "otp": "First set up an authenticator app for one-time codes.",
    "passkey": "Create a passkey for this account.",
}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class Issue:
    """Authentication is complete: issue a code whose tokens carry these claims (OIDC Core §2)."""

    acr: str
    amr: tuple[str, ...]
    auth_time: int


@dataclass(frozen=True)
class Authenticate:
    """Show the login page: the user must verify ``factors`` now (after enrolling ``enrol``)."""

    factors: tuple[str, ...]
    reason: str
    target: AcrLevel
    enrol: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """One or two sentences for the page: why, which level, and what to enter."""
        why = _REASON_TEXT[self.reason]
        if not why.endswith("."):
            why += f" ({self.target.description or self.target.value})."
        typed = [_FACTOR_TEXT[f] for f in self.factors if f in _FACTOR_TEXT]
        passkey = [f for f in self.factors if f == "passkey" or f in PASSKEY_QUALIFIERS]
        use = ""
        if passkey and "passkey" not in self.enrol:
            use = "a hardware security key" if passkey == ["hwk"] else "your passkey"
        if typed:
            text = f"{why} Enter {_join(typed)}" + (f", then use {use}." if use else ".")
        else:
            text = f"{why} Use {use}." if use else why
        for factor in self.enrol:
            text += " " + _ENROL_TEXT.get(factor, f"First set up {factor}.")
        return text


@dataclass(frozen=True)
class Fail:
    """Answer the client with an OIDC error (``error`` code, safe ``description``)."""

    error: str
    description: str


Decision = Issue | Authenticate | Fail


# --- the checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """What a check asks for: the factors to verify now, in order, and the reason code."""

    factors: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at, for one candidate ``target`` level."""

    request: AuthnRequest
    session: SessionState | None
    policy: AcrPolicy
    now: int
    target: AcrLevel
    verified: Mapping[str, int] = field(default_factory=dict)

    @cached_property
    def reached(self) -> AcrLevel | None:
        """The strongest level the session's fresh factors give (elevations fall back)."""
        return self.policy.level_reached(self.verified, self.now)

    def in_interaction(self, factor: str) -> bool:
        """Whether ``factor`` was verified in this interaction (at or after it started)."""
        started = self.request.interaction_started_at
        return started is not None and self.verified.get(factor, started - 1) >= started

    def not_reverified(self) -> tuple[str, ...]:
        """The target's factors the user has not verified in this interaction, in order."""
        return tuple(f for f in self.target.factors if not self.in_interaction(f))


Check = Callable[[CheckContext], Need | None]


def no_session(ctx: CheckContext) -> Need | None:
    """Nobody is signed in: ask for every factor of the target level."""
    if ctx.session is None:
        return Need(ctx.target.factors, "login_required")
    return None


def id_token_hint_names_another_user(ctx: CheckContext) -> Need | None:
    """``id_token_hint`` names someone else than the session's user: that user signs in (§3.1.2.1).

    "If the End-User identified by the ID Token is logged in or is logged in by the request, then
    the Authorization Server returns a positive response; otherwise, it SHOULD return an error,
    such as login_required." Unlike ``login_hint`` this is no mere hint: a sign-in as anyone else
    ends in ``login_required`` (see :func:`decide`), never in a code for another user.
    """
    hinted = ctx.request.id_token_hint_subject
    if not hinted or ctx.session is None or hinted == ctx.session.subject:
        return None
    return Need(ctx.target.factors, "id_token_hint")


def login_hint_names_another_user(ctx: CheckContext) -> Need | None:
    """``login_hint`` names someone else than the session's user: sign in again (§3.1.2.1).

    "Hint to the Authorization Server about the login identifier the End-User might use to log in
    (if necessary)." It is a hint: once the user has signed in during this interaction, whoever they
    chose to be stands — otherwise a user who picks another account would be asked forever.
    """
    hint = ctx.request.login_hint
    if not hint or ctx.session is None or hint == ctx.session.subject:
        return None
    if any(ctx.in_interaction(f) for f in ctx.verified):
        return None
    return Need(ctx.target.factors, "login_hint")


def prompt_login(ctx: CheckContext) -> Need | None:
    """``prompt=login`` (and ``select_account``): every factor of the target, verified anew.

    OIDC Core §3.1.2.1, ``prompt=login``: "The Authorization Server SHOULD prompt the End-User for
    reauthentication. If it cannot reauthenticate the End-User, it MUST return an error, typically
    login_required." We always re-authenticate: a factor counts only when verified in this
    interaction. ``select_account`` is treated the same way — signing in again is how an account is
    chosen here. ``consent`` needs nothing (registered clients have no consent screen); other
    values are ignored.
    """
    if not ctx.request.prompt & {"login", "select_account"}:
        return None
    todo = ctx.not_reverified()
    return Need(todo, "prompt_login") if todo else None


def max_age_exceeded(ctx: CheckContext) -> Need | None:
    """``max_age``: an authentication older than that is done again, with all the target's factors.

    OIDC Core §3.1.2.1: "Specifies the allowable elapsed time in seconds since the last time the
    End-User was actively authenticated by the OP. If the elapsed time is greater than this value,
    the OP MUST attempt to actively re-authenticate the End-User."

    ``auth_time`` is measured over the factors the session held *before* this interaction (those of
    the level it would be issued at), so a re-authentication that has begun is finished with every
    factor of the target, not just the first. ``max_age=0`` is ``prompt=login``.
    """
    max_age = ctx.request.max_age
    if max_age is None or ctx.session is None:
        return None
    todo = ctx.not_reverified()
    if not todo:
        return None
    if max_age <= 0:
        return Need(todo, "max_age")
    reached = ctx.reached
    basis = reached if reached is not None and reached.rank >= ctx.target.rank else ctx.target
    earlier = [
        t
        for f, t in ctx.verified.items()
        if f in basis.factors
        and ctx.policy.is_fresh(basis, f, t, ctx.now)
        and not ctx.in_interaction(f)
    ]
    if earlier and ctx.now - max(earlier) > max_age:
        return Need(todo, "max_age")
    return None


def factors_missing_or_stale(ctx: CheckContext) -> Need | None:
    """Step-up: ask only for the target's factors that are missing or stale.

    A factor is stale for a level once its elevation lifetime has passed (``provider.acr``): the
    session then falls back to the level its fresh factors give, and the step-up asks for the rest.
    """
    target, verified = ctx.target, ctx.verified
    # "A higher level satisfies a request for a lower one", also one with other factors: a
    # session signed in with a passkey alone meets a request for the password level.
    if ctx.reached is not None and ctx.reached.rank >= target.rank:
        return None
    missing = [f for f in target.factors if f not in verified]
    stale = [
        f
        for f in target.factors
        if f in verified and not ctx.policy.is_fresh(target, f, verified[f], ctx.now)
    ]
    if not missing and not stale:
        return None
    todo = tuple(f for f in target.factors if f in missing or f in stale)
    if ctx.reached is None:
        return Need(todo, "session_expired")
    return Need(todo, "step_up" if missing else "elevation_expired")


def transaction_approval(ctx: CheckContext) -> Need | None:
    """RFC 9396 ``authorization_details``: approving a transaction is a user action *in this
    interaction*, never granted from an existing session.

    The user approves what the page shows by verifying the last factor of the level again (the
    one-time code for ``pwd`` + ``otp``; the passkey for a passkey level), whatever the session
    holds: as if ``max_age=0`` applied to that one factor. It is the factor that proves possession
    of a device, verified while the transaction is on the screen — the shape of PSD2's dynamic
    linking (the authentication is made for this amount and payee), with the session's earlier
    factor standing for the other element. Runs last: missing or stale factors are asked for
    first, and when the step-up already asked for that factor in this interaction nothing more
    is needed. The level is the one the session reaches, when that is above the target (a
    passkey session approves with its passkey, not with a code it may not have).
    """
    if not ctx.request.transaction:
        return None
    reached = ctx.reached
    level = reached if reached is not None and reached.rank >= ctx.target.rank else ctx.target
    factors = [f for f in level.factors if f not in PASSKEY_QUALIFIERS]
    if not factors or ctx.in_interaction(factors[-1]):
        return None
    return Need((factors[-1],), "approve_transaction")


# The table. Order matters: the first check that fires decides what the user is asked and why.
CHECKS: tuple[Check, ...] = (
    no_session,
    id_token_hint_names_another_user,
    login_hint_names_another_user,
    prompt_login,
    max_age_exceeded,
    factors_missing_or_stale,
    transaction_approval,
)


def _first_need(ctx: CheckContext) -> Need | None:
    for check in CHECKS:
        need = check(ctx)
        if need is not None:
            return need
    return None


# --- the decision -----------------------------------------------------------------------------


def _verified(session: SessionState | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for record in session.factors if session is not None else ():
        out[record.name] = max(record.verified_at, out.get(record.name, record.verified_at))
    return out


# RFC 8176 values in the order amr lists them; others follow in the order given.
_AMR_ORDER: tuple[str, ...] = ("pwd", "otp", "hwk", "swk", "pin", "user")


def amr_for(methods: Iterable[str]) -> tuple[str, ...]:
    """RFC 8176 ``amr`` for the methods used: known values in their usual order (``pwd`` before
    ``otp``), any others after, and ``mfa`` ("Multiple-factor authentication") when more than
    one factor was used. ``user`` ("User presence test") is no factor: it does not count."""
    used = [f for f in dict.fromkeys(methods) if f != "mfa"]
    ordered = tuple(
        sorted(
            used,
            key=lambda f: (
                _AMR_ORDER.index(f) if f in _AMR_ORDER else len(_AMR_ORDER),
                used.index(f),
            ),
        )
    )
    factors = [f for f in ordered if f != "user"]
    return (*ordered, "mfa") if len(factors) > 1 else ordered


def amr_of_factors(factors: Iterable[str]) -> tuple[str, ...]:
    """The RFC 8176 methods the session's factors stand for (``docs/provider.md``, "Passkeys").

    ``pwd`` and ``otp`` are their own names. A passkey is proof of possession of a key: ``hwk``
    ("hardware-secured key") when its attestation chains to a root trusted for hardware keys,
    else ``swk`` ("software-secured key": nothing shows the key is in hardware); with ``pin``
    when the authenticator verified the user (WebAuthn's UV flag: a PIN, pattern or biometric
    that "a user enters to unlock a key on the device" — which one, the flag does not say), else
    ``user`` (a "user presence test": the UP flag only).
    """
    used = list(dict.fromkeys(factors))
    out: list[str] = []
    for f in used:
        if f == "passkey":
            out.append("hwk" if "hwk" in used else "swk")
            out.append("pin" if "uv" in used else "user")
        elif f not in PASSKEY_QUALIFIERS:
            out.append(f)
    return tuple(out)


def _issue(ctx: CheckContext, requested: tuple[str, ...]) -> Issue:
    """The claims of OIDC Core §2 for the level the session reached.

    ``acr``: "the Authentication Context Class that the authentication performed satisfied" — the
    first requested value (client's order of preference) the reached level satisfies, else the
    reached level's own value. ``amr``: RFC 8176 names of the factors used, plus ``mfa`` ("Multiple-
    factor authentication") when there are several. ``auth_time``: "Time when the End-User
    authentication occurred" — the latest verification among the factors used.
    """
    reached = ctx.reached
    # The last check (factors_missing_or_stale) guarantees the session reaches the target.
    assert reached is not None
    assert reached.rank >= ctx.target.rank
    acr = next((v for v in requested if ctx.policy.satisfies(reached, v)), reached.value)
    used = list(reached.factors)
    if "passkey" in used:
        # How the passkey was used (hardware key, user verified) is recorded with it, at the
        # same time; a qualifier from an earlier use of a passkey says nothing about this one.
        at = ctx.verified["passkey"]
        used += [f for f in PASSKEY_QUALIFIERS if f not in used and ctx.verified.get(f) == at]
    amr = amr_for(amr_of_factors(used))
    return Issue(acr=acr, amr=amr, auth_time=max(ctx.verified[f] for f in reached.factors))


def _prompt_none_alone(request: AuthnRequest) -> Fail | None:
    """OIDC Core §3.1.2.1: "If this parameter contains none with any other value, an error is
    returned." The error is ``invalid_request``."""
    if "none" in request.prompt and len(request.prompt) > 1:
        return Fail("invalid_request", "prompt=none cannot be combined with other prompt values")
    return None


def _signed_in_as_another_than_hinted(
    request: AuthnRequest, session: SessionState | None
) -> Fail | None:
    """§3.1.2.1 ``id_token_hint``: the user signed in during this interaction, but not as the
    End-User the ID token identifies — "it SHOULD return an error, such as login_required"."""
    hinted, started = request.id_token_hint_subject, request.interaction_started_at
    if not hinted or session is None or session.subject == hinted or started is None:
        return None
    if not any(f.verified_at >= started for f in session.factors):
        return None
    return Fail("login_required", "the user who signed in is not the one id_token_hint names")


def _enrollable(allow_enrolment: bool | Iterable[str]) -> frozenset[str]:
    """The factors a user may enrol in the flow: all of :data:`ENROLLABLE`, none, or those named.
    ``uv`` comes with a passkey; ``hwk`` is never enrolled on demand (no one can promise that a
    passkey about to be made will show a hardware key)."""
    if allow_enrolment is True:
        names = frozenset(ENROLLABLE)
    elif allow_enrolment is False:
        names = frozenset()
    else:
        names = frozenset(allow_enrolment) & frozenset(ENROLLABLE)
    return names | ({"uv"} if "passkey" in names else set())


def _unmet_text(level: AcrLevel, have: frozenset[str]) -> str:
    missing = [f for f in level.factors if f not in have | {"pwd"}]
    if missing == ["otp"]:
        return "the user has no one-time code set up, and enrolment is turned off"
    if "hwk" in missing and "passkey" not in missing:
        return "none of the user's passkeys shows a hardware key this provider trusts"
    what = {"otp": "one-time code", "passkey": "passkey", "uv": "passkey", "hwk": "passkey"}
    names = list(dict.fromkeys(what.get(f, f) for f in missing))
    return f"the user has no {' or '.join(names)} set up, and enrolment is turned off"


def _candidates(
    request: AuthnRequest,
    session: SessionState | None,
    policy: AcrPolicy,
    enrollable: frozenset[str],
) -> tuple[tuple[str, ...], list[AcrLevel]] | Fail:
    """The requested values, and the levels worth aiming for, best first (the first is the target).

    Voluntary ``acr_values`` (§3.1.2.1): "Requested Authentication Context Class Reference values.
    Space-separated string that specifies the acr values that the Authorization Server is being
    requested to use for processing this Authentication Request, with the values appearing in order
    of preference. [...] The acr Claim is requested as a Voluntary Claim by this parameter." Unknown
    values are ignored; if none is known, nothing was requested. A level the user cannot reach (no
    OTP, enrolment off) is skipped, falling back to the strongest reachable level below.

    Essential ``acr`` (§5.5.1.1): "the Authorization Server MUST return an acr Claim Value that
    matches one of the requested values. [...] If this is an Essential Claim and the requirement
    cannot be met, then the Authorization Server MUST treat that outcome as a failed authentication
    attempt." — answered with ``unmet_authentication_requirements``, which the Unmet Authentication
    Requirements spec says "SHALL be used if the Relying Party wants the OP to conform to a certain
    Authentication Context Class Reference value using an essential claim acr claim".
    """
    essential = bool(request.essential_acr)
    requested = request.essential_acr if request.essential_acr else request.acr_values
    known: list[AcrLevel] = []
    for value in requested:
        level = policy.resolve(value)
        if level is not None and level not in known:
            known.append(level)
    if essential and not known:
        return Fail(
            "unmet_authentication_requirements",
            "none of the essential acr values is supported by this provider",
        )

    hints = [h for h in (request.id_token_hint_subject, request.login_hint) if h]
    knows_user = session is not None and all(h == session.subject for h in hints)

    def reachable(level: AcrLevel) -> bool:
        if session is None or not knows_user:
            return True
        return set(level.factors) <= session.user_factors | {"pwd"} | enrollable

    wanted = known or [policy.weakest]
    candidates = [lv for lv in wanted if reachable(lv)]
    if not candidates and not essential:
        ceiling = wanted[0].rank
        candidates = [lv for lv in reversed(policy.levels[: ceiling + 1]) if reachable(lv)][:1]
    if not candidates:
        assert session is not None  # with no session every level is reachable
        text = _unmet_text(wanted[0], session.user_factors)
        return Fail("unmet_authentication_requirements", text)
    return requested, candidates


def decide(
    request: AuthnRequest,
    session: SessionState | None,
    policy: AcrPolicy,
    now: int,
    *,
    allow_enrolment: bool | Iterable[str] = True,
) -> Decision:
    """Issue, ask the user to authenticate, or fail — see the module docstring and ``CHECKS``.

    ``allow_enrolment``: whether a user who lacks a factor the level needs may enrol it in the
    flow — ``True`` (every factor of :data:`ENROLLABLE`), ``False``, or the factors that may be.
    """
    invalid = _prompt_none_alone(request) or _signed_in_as_another_than_hinted(request, session)
    if invalid is not None:
        return invalid
    enrollable = _enrollable(allow_enrolment)
    found = _candidates(request, session, policy, enrollable)
    if isinstance(found, Fail):
        return found
    requested, candidates = found
    verified = _verified(session)

    def context(target: AcrLevel) -> CheckContext:
        return CheckContext(request, session, policy, now, target, verified)

    # prompt=none, §3.1.2.1: "The Authorization Server MUST NOT display any authentication or
    # consent user interface pages. An error is returned if an End-User is not already
    # authenticated [...]". Any requested level the session already meets will do; a needed
    # step-up is answered with login_required, as node-oidc-provider does.
    if "none" in request.prompt:
        reasons = []
        for target in candidates:
            ctx = context(target)
            need = _first_need(ctx)
            if need is None:
                return _issue(ctx, requested)
            reasons.append(need.reason)
        return Fail("login_required", _why_not_silent(reasons[0], candidates[0]))

    ctx = context(candidates[0])
    need = _first_need(ctx)
    if need is None:
        return _issue(ctx, requested)
    enrol: tuple[str, ...] = ()
    if session is not None and need.reason not in ("login_hint", "id_token_hint"):
        enrol = tuple(f for f in ENROLLABLE if f in need.factors and f not in session.user_factors)
    if enrol:
        assert session is not None
        first = _confirm_before_enrol(ctx, session)
        if first is not None:
            return Authenticate(first.factors, first.reason, candidates[0])
    return Authenticate(need.factors, need.reason, candidates[0], enrol)


def _confirm_before_enrol(ctx: CheckContext, session: SessionState) -> Need | None:
    """A new factor is added only by a user who has proved the factors they have: the session
    must be at the strongest level those give (else whoever has the password alone could add
    their own authenticator to an account that also has a one-time code, and step up with it)."""
    have = session.user_factors | {"pwd"}
    strongest = ctx.policy.level_for(have)
    if strongest is None:
        return None
    reached = ctx.reached
    if reached is not None and reached.rank >= strongest.rank:
        return None
    proof = replace(ctx, target=strongest)
    need = factors_missing_or_stale(proof)
    return Need(need.factors, "confirm_before_enrol") if need is not None else None


def _why_not_silent(reason: str, target: AcrLevel) -> str:
    what = {
        "login_required": "no user is signed in",
        "login_hint": "the login_hint names another user than the one signed in",
        "id_token_hint": "the id_token_hint names another user than the one signed in",
        "prompt_login": "re-authentication was requested",
        "max_age": "the last authentication is older than max_age",
        "step_up": f"a step-up to {target.value} is needed",
        "elevation_expired": f"the elevation to {target.value} has expired",
        "session_expired": "the session has expired",
        "confirm_before_enrol": "the user must confirm their factors",
        "approve_transaction": "approving authorization_details needs the user",
    }[reason]
    return f"prompt=none, but {what}"
