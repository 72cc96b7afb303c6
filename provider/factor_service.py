"""The factor API's operations on the database, apart from HTTP (:mod:`provider.views.factors`).

Who a ``<user>`` reference names, whether a factor can be challenged, and a passcode's
verification with its audit row: the login pages' own check (:func:`provider.login.check_totp`:
the attempt counted and the lock applied before the code is verified, a TOTP step spent by one
atomic statement), with the audit row written in the transaction that settles the outcome — a
step is never spent without its row, and no outcome is told without one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import factor_api, factor_audit, login
from .factor_api import Reason, TransactionRefused, Transactions
from .models import User
from .store import Throttling

__all__ = ["AuditUnavailable", "Verification", "factor_problem", "find_user", "verify_passcode"]

LONGEST_REF = 255  # op_users.username
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OUTCOMES = {
    login.Outcome.OK: Reason.VERIFIED,
    login.Outcome.WRONG: Reason.WRONG,
    login.Outcome.EXPIRED: Reason.EXPIRED,
    login.Outcome.REPLAYED: Reason.REPLAYED,
    login.Outcome.THROTTLED: Reason.THROTTLED,
}


class AuditUnavailable(Exception):
    """The audit row could not be written, so the verification did not take place: its
    transaction was rolled back, no TOTP step spent."""


@dataclass(frozen=True)
class Verification:
    """How a verification ended: the audit's reason, and what the answer may add to it."""

    reason: Reason
    description: str = ""
    retry_after: int = 0
    subject: str | None = None


def printable(value: str, longest: int) -> str:
    """What the audit can store of a value the caller chose: no control characters (PostgreSQL
    text cannot hold NUL), at most ``longest`` characters."""
    return _CONTROL.sub("\ufffd", value)[:longest]


def find_user(s: Session, ref: str) -> User | None:
    """The user whose ``sub`` is ``ref``, else whose username is (case-insensitive, as the login
    form compares them)."""
    if not ref or len(ref) > LONGEST_REF or _CONTROL.search(ref):
        return None
    user = s.scalar(select(User).where(User.subject == ref))
    if user is None:
        user = s.scalar(select(User).where(func.lower(User.username) == ref.lower()))
    return user


def factor_problem(s: Session, user: User, factor: str) -> Reason | None:
    """Why ``factor`` cannot be challenged for ``user``, if it cannot."""
    if factor not in factor_api.KNOWN:
        return Reason.UNKNOWN_FACTOR
    if factor not in login.enrolled_factors(s, user):
        return Reason.NOT_ENROLLED
    if factor not in factor_api.VERIFIABLE:
        return Reason.UNSUPPORTED_FACTOR
    return None


def verify_passcode(
    s: Session,
    *,
    throttling: Throttling,
    transactions: Transactions,
    client_id: str,
    user_ref: str,
    factor: str,
    transaction_id: str,
    passcode: str,
    now: int,
    allow_reuse: bool,
) -> Verification:
    """Verify ``passcode`` for the open transaction ``transaction_id``, recording the audit row
    of every outcome; :class:`AuditUnavailable` when the row could not be written."""
    user = find_user(s, user_ref)
    subject = user.subject if user is not None else None

    def entry(reason: Reason, opened: str | None = None) -> factor_audit.AuditEntry:
        return factor_audit.AuditEntry(
            at=now,
            client_id=client_id,
            user_ref=printable(user_ref, LONGEST_REF),
            subject=subject,
            factor=printable(factor, 32),
            reason=reason,
            transaction_id=opened,
        )

    def refused(reason: Reason, description: str = "") -> Verification:
        """A refusal decided before any code is checked: it writes nothing else."""
        try:
            factor_audit.record(s, entry(reason))
            s.commit()
        except SQLAlchemyError as exc:
            s.rollback()
            raise AuditUnavailable from exc
        return Verification(reason, description, subject=subject)

    problem = Reason.UNKNOWN_USER if user is None else factor_problem(s, user, factor)
    if problem is not None or user is None or subject is None:
        return refused(problem or Reason.UNKNOWN_USER)
    try:
        transaction = transactions.check(
            transaction_id, client_id=client_id, subject=subject, factor=factor, now=now
        )
    except TransactionRefused as refusal:
        return refused(refusal.reason, refusal.description)

    def record(session: Session, outcome: login.Outcome) -> None:
        factor_audit.record(session, entry(_OUTCOMES[outcome], transaction.id))

    try:
        result = login.check_totp(
            s, throttling, user, passcode, now, allow_reuse=allow_reuse, record=record
        )
    except SQLAlchemyError as exc:
        raise AuditUnavailable from exc
    return Verification(_OUTCOMES[result.outcome], retry_after=result.retry_after, subject=subject)
