"""The factor API's audit trail: one ``op_factor_audit`` row per verification, written in a
transaction of its own once the outcome is known (:class:`provider.models.FactorAudit`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .factor_api import Reason
from .models import FactorAudit

__all__ = ["AuditEntry", "entries", "record"]


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
    session.commit()


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
