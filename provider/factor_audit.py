"""The factor API's audit trail: one ``op_factor_audit`` row per verification
(:class:`provider.models.FactorAudit`), and the admin's read of it, newest first, a page at a time.

:func:`record` writes a row in the caller's transaction and does not commit: the verify endpoint
has it written in the transaction that settles the outcome — for a right code, the one that spends
its TOTP step (:func:`provider.login.check_totp`), so the step is never spent without its row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from client_sdk.wire import ascii_digits

from .factor_api import Reason
from .models import FactorAudit

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AuditEntry",
    "Cursor",
    "Page",
    "entries",
    "page",
    "record",
]

#: Rows a page holds when the caller does not say; the most it may ask for.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class AuditEntry:
    at: int
    client_id: str
    user_ref: str
    subject: str | None
    factor: str
    reason: Reason
    transaction_id: str | None = None

    @property
    def result(self) -> str:
        return "success" if self.reason is Reason.VERIFIED else "failure"


def record(session: Session, entry: AuditEntry) -> None:
    """Add ``entry``'s row to the session's transaction (no commit: the caller's transaction
    decides)."""
    session.execute(
        insert(FactorAudit).values(
            at=entry.at,
            client_id=entry.client_id,
            user_ref=entry.user_ref,
            subject=entry.subject,
            factor=entry.factor,
            result=entry.result,
            reason=entry.reason.value,
            transaction_id=entry.transaction_id,
        )
    )


def entries(session: Session) -> list[AuditEntry]:
    """Every row, oldest first (for tests and tools; the API does not serve them)."""
    rows = session.scalars(select(FactorAudit).order_by(FactorAudit.id)).all()
    session.commit()
    return [
        AuditEntry(
            r.at,
            r.client_id,
            r.user_ref,
            r.subject,
            r.factor,
            Reason(r.reason),
            r.transaction_id,
        )
        for r in rows
    ]


# --- the admin's read: newest first, a page at a time --------------------------------------------


def parse_limit(value: str) -> int | None:
    """The page size ``value`` asks for, or ``None`` unless it is a whole number from 1 to
    :data:`MAX_LIMIT`."""
    if not (ascii_digits(value) and len(value) <= 3 and 1 <= int(value) <= MAX_LIMIT):
        return None
    return int(value)


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: just older than the row ``(at, id)``. Rows are ordered by
    ``(at, id)`` descending — keyset paging, so a row written meanwhile neither shifts a page nor
    repeats. Shown to the caller as ``"<at>.<id>"``, an opaque string to it."""

    at: int
    id: int

    def __str__(self) -> str:
        return f"{self.at}.{self.id}"

    @classmethod
    def parse(cls, value: str) -> Cursor | None:
        """The cursor ``value`` spells, or ``None`` when it spells none."""
        at, dot, id_ = value.partition(".")
        if not (dot and 0 < len(at) <= 12 and 0 < len(id_) <= 18):
            return None
        if not (ascii_digits(at) and ascii_digits(id_)):
            return None
        return cls(int(at), int(id_))


@dataclass(frozen=True)
class Page:
    entries: list[AuditEntry]
    next: Cursor | None  # None: this is the last page


def page(session: Session, subject: str, *, limit: int, after: Cursor | None = None) -> Page:
    """The user's rows, newest first: at most ``limit``, starting just older than ``after``."""
    query = select(FactorAudit).where(FactorAudit.subject == subject)
    if after is not None:
        older = or_(
            FactorAudit.at < after.at,
            and_(FactorAudit.at == after.at, FactorAudit.id < after.id),
        )
        query = query.where(older)
    query = query.order_by(FactorAudit.at.desc(), FactorAudit.id.desc()).limit(limit + 1)
    rows = session.scalars(query).all()
    session.commit()
    more = len(rows) > limit
    rows = rows[:limit]
    entries = [
        AuditEntry(
            r.at, r.client_id, r.user_ref, r.subject, r.factor, Reason(r.reason), r.transaction_id
        )
        for r in rows
    ]
    return Page(entries, Cursor(rows[-1].at, rows[-1].id) if more else None)
