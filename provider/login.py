"""Verifying a factor the user typed: password or TOTP code, with throttling and replay checks.

Each function returns a :class:`Outcome` the login pages turn into a message; none of them raises
for a wrong credential. Guesses are throttled per account and factor in the database: each guess is
admitted (and counted) by one atomic statement *before* it is verified, so the limit holds for
guesses sent at the same moment, across browser sessions and provider processes
(:class:`provider.store.Throttling`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import String, Table, bindparam, func, select
from sqlalchemy.orm import Session

from client_sdk.wire import ascii_digits

from . import passkey_login, store
from .factors import password, totp
from .models import Passkey, User

__all__ = [
    "Outcome",
    "Recorder",
    "Result",
    "check_enrolment_code",
    "check_password",
    "check_totp",
    "enrolled_factors",
]

# How far back a code is recognised as "expired" (rather than simply wrong), for a clearer message.
EXPIRED_LOOKBACK_STEPS = 10


class Outcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    user: User | None = None
    retry_after: int = 0
    step: int | None = None
    #: The user's enrolled factors (:func:`enrolled_factors`), when the check read them.
    enrolled: frozenset[str] | None = None
    #: The attempt record a right guess leaves for the caller to clear
    #: (:meth:`provider.store.Throttling.clear`), in the transaction that records the login.
    uncleared: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def enrolled_factors(session: Session, user: User) -> frozenset[str]:
    """The factors ``user`` can verify: the password always, the one-time code once set up, and
    a passkey once registered (:func:`provider.passkey_login.user_passkey_factors`).

    The one place that says it: the authentication policy (which levels a user can reach) and the
    sandbox (its users page, its personas) both ask here. ``session``: for factors whose
    enrolment lives in a table of its own."""
    return _own_factors(user) | passkey_login.user_passkey_factors(session, user.id)


def _own_factors(user: User) -> frozenset[str]:
    return frozenset({"pwd", "otp"} if user.totp_secret else {"pwd"})


# The user a typed username names, with the kind of each of their passkeys (one row per passkey;
# one row with ``NULL`` without any): built once, and one statement whether the user exists or
# not, so an unknown username costs what a known one does (no enumeration by timing).
_users = cast(Table, User.__table__)
_passkeys = cast(Table, Passkey.__table__)
_USER_BY_NAME = (
    select(_users, _passkeys.c.hardware.label("passkey_hardware"))
    .outerjoin(_passkeys, _passkeys.c.user_id == _users.c.id)
    .where(func.lower(_users.c.username) == bindparam("username", type_=String))
)
_USER_COLUMNS = tuple(_users.c.keys())


def check_password(
    session: Session,
    throttling: store.Throttling,
    username: str,
    pw: str,
    now: int,
    *,
    clear: bool = True,
) -> Result:
    """``clear=False``: a right password leaves its attempt record for the caller to clear in
    the transaction that records the login (``Result.uncleared``), one transaction instead of two.

    The guess is admitted (counted) and the user read in one transaction, committed before
    argon2 runs: no transaction is held open while it does, and the guess counts even if the
    process dies during the verification. A right password's result carries the user's enrolled
    factors (read with the user, not after the hash)."""
    account = username.strip().lower()
    key = _throttle_key("pwd", account)
    wait = throttling.admit(session, key, now, commit=False)
    if wait:
        return Result(Outcome.THROTTLED, retry_after=wait)
    rows = session.connection().execute(_USER_BY_NAME, {"username": account}).all()
    session.commit()
    # A transient User (in no session), as the store's login-path reads give.
    user = User(**{c: getattr(rows[0], c) for c in _USER_COLUMNS}) if rows else None
    if user is None:
        password.verify_dummy(pw)  # same cost as a real check: no user enumeration by timing
    elif password.verify_password(user.password_hash, pw):
        kinds = {row.passkey_hardware for row in rows if row.passkey_hardware is not None}
        enrolled = _own_factors(user) | passkey_login.passkey_factors(kinds)
        if clear:
            throttling.success(session, key)
            return Result(Outcome.OK, user=user, enrolled=enrolled)
        return Result(Outcome.OK, user=user, enrolled=enrolled, uncleared=key)
    return Result(Outcome.WRONG)


def _throttle_key(factor: str, account: str) -> str:
    """A fixed-size key whatever the typed username (any length, any character)."""
    return f"{factor}:{store.digest(account)}"


#: Writes what a verification came to (the factor API's audit row), in the transaction
#: :func:`check_totp` gives it; it must not commit.
Recorder = Callable[[Session, Outcome], None]


def check_totp(
    session: Session,
    throttling: store.Throttling,
    user: User,
    code: str,
    now: int,
    *,
    allow_reuse: bool = False,
    record: Recorder | None = None,
) -> Result:
    """``allow_reuse`` (``[provider] sandbox_allow_totp_reuse``, sandbox mode only) accepts a
    code whose step was used already instead of refusing it as a replay.

    ``record(session, outcome)``, when given, is called once per call, in the transaction that
    settles the outcome, before it commits: for a code whose step is valid, the transaction of
    the conditional ``UPDATE`` that spends the step (:func:`provider.store.consume_totp_step`),
    which also clears the attempt record (:meth:`~provider.store.Throttling.clear`) — so a
    spent step and what ``record`` writes commit together or not at all, and a replay is
    recorded by the statement that found the step spent; for a wrong, expired or locked-out
    code, whose only write (the attempt counted by :meth:`~provider.store.Throttling.admit`) is
    committed before the code is checked, a transaction of its own right after. If ``record``
    raises, that transaction is rolled back (the step stays unspent) and the exception
    propagates: the caller answers with an error, never with the outcome. The login pages pass
    none."""
    if user.totp_secret is None:
        return _settled(session, record, Result(Outcome.WRONG))  # nothing to verify against
    key = _throttle_key("otp", str(user.id))
    wait = throttling.admit(session, key, now)
    if wait:
        return _settled(session, record, Result(Outcome.THROTTLED, retry_after=wait))
    step = totp.verify(user.totp_secret, code, now)
    if step is not None:

        def spent_or_replayed(spent: bool) -> Outcome:
            return Outcome.OK if spent or allow_reuse else Outcome.REPLAYED

        def settle(s: Session, spent: bool) -> None:
            # In the spending transaction: a right code's step is spent, its attempt record
            # cleared and its outcome recorded together, or none of them is.
            outcome = spent_or_replayed(spent)
            if outcome is Outcome.OK:
                throttling.clear(s, key)
            if record is not None:
                record(s, outcome)

        spent = store.consume_totp_step(session, user.id, step, then=settle)
        if spent_or_replayed(spent) is Outcome.OK:
            return Result(Outcome.OK, user=user, step=step)
        return Result(Outcome.REPLAYED)
    if _recently_valid(user.totp_secret, code, now):
        return _settled(session, record, Result(Outcome.EXPIRED))
    return _settled(session, record, Result(Outcome.WRONG))


def _settled(session: Session, record: Recorder | None, result: Result) -> Result:
    """``result``, once ``record`` has written it in a transaction of its own."""
    if record is not None:
        try:
            record(session, result.outcome)
        except BaseException:
            session.rollback()
            raise
        session.commit()
    return result


def check_enrolment_code(
    session: Session, throttling: store.Throttling, user: User, secret: str, code: str, now: int
) -> Result:
    """Confirm a new TOTP secret with one valid code, then store it (only if none is set)."""
    key = _throttle_key("otp", str(user.id))
    wait = throttling.admit(session, key, now)
    if wait:
        return Result(Outcome.THROTTLED, retry_after=wait)
    step = totp.verify(secret, code, now)
    if step is not None and store.enrol_totp(session, user.id, secret, step):
        throttling.success(session, key)
        return Result(Outcome.OK, user=user, step=step)
    return Result(Outcome.EXPIRED if _recently_valid(secret, code, now) else Outcome.WRONG)


def _recently_valid(secret: str, code: str, now: int) -> bool:
    code = code.strip().replace(" ", "")
    if not (len(code) == totp.DIGITS and ascii_digits(code)):
        return False
    current = totp.step_at(now)
    return any(
        totp.hotp(secret, current - back) == code for back in range(2, EXPIRED_LOOKBACK_STEPS + 1)
    )
