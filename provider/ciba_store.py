"""Storage of CIBA requests: create, read, and apply :mod:`provider.ciba_states` transitions.

Every transition is written by one conditional ``UPDATE … WHERE id = :id AND version = :read``:
the row count says whether the state the decision was made on is still the state in the database.
A writer that lost reads again and decides again (:func:`run`), so no two pollers, approvers or
deniers can both act on the same state, in one process or several, on SQLite or PostgreSQL.

The ISSUE transition is not written here but in the transaction that records the tokens
(:func:`consume_statement`, run by :meth:`provider.issuance.Issuance.issue`), so an approval is
spent exactly when its tokens exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update

from . import store
from .ciba_states import Answer, Event, Snapshot, State, Transition, step
from .db import Database
from .models import CibaRequest, User

__all__ = [
    "Decision",
    "RequestRow",
    "consume",
    "create",
    "find_by_auth_req_id",
    "find_by_id",
    "pending_for",
    "run",
]

_requests = cast(Table, CibaRequest.__table__)
_users = cast(Table, User.__table__)

#: How many times a writer that lost a race reads again before giving up (answering as if the
#: request were busy: slow_down for a poll). Each retry means another writer made progress.
MAX_RETRIES = 8


@dataclass(frozen=True)
class RequestRow:
    """A request as read, with its user's identity."""

    id: int
    client_id: str
    user_id: int
    subject: str
    username: str
    name: str | None
    email: str | None
    scope: str
    acr: str
    binding_message: str | None
    authorization_details: list[dict[str, Any]] | None
    amr: tuple[str, ...]
    auth_time: int | None
    created_at: int
    snapshot: Snapshot


@dataclass(frozen=True)
class Decision:
    """What the device's user decided: who, with which factors, when."""

    amr: tuple[str, ...]
    auth_time: int


_SELECT = select(
    _requests, _users.c.subject, _users.c.username, _users.c.name, _users.c.email
).join_from(_requests, _users, _requests.c.user_id == _users.c.id)


def _row(r: Any) -> RequestRow:
    return RequestRow(
        id=r.id,
        client_id=r.client_id,
        user_id=r.user_id,
        subject=r.subject,
        username=r.username,
        name=r.name,
        email=r.email,
        scope=r.scope,
        acr=r.acr,
        binding_message=r.binding_message,
        authorization_details=r.authorization_details,
        amr=tuple(r.amr or ()),
        auth_time=r.auth_time,
        created_at=r.created_at,
        snapshot=Snapshot(
            state=State(r.state),
            expires_at=r.expires_at,
            interval=r.interval,
            last_poll_at=r.last_poll_at,
            version=r.version,
        ),
    )


def create(
    db: Database,
    *,
    auth_req_id: str,
    client_id: str,
    user_id: int,
    scope: str,
    acr: str,
    binding_message: str | None,
    authorization_details: list[dict[str, Any]] | None,
    interval: int,
    now: int,
    expires_at: int,
) -> None:
    with db.engine.connect() as conn, db.writing():
        conn.execute(
            _requests.insert().values(
                auth_req_hash=store.digest(auth_req_id),
                client_id=client_id,
                user_id=user_id,
                scope=scope,
                acr=acr,
                binding_message=binding_message,
                authorization_details=authorization_details,
                state=State.PENDING.value,
                version=0,
                interval=interval,
                last_poll_at=None,
                created_at=now,
                expires_at=expires_at,
            )
        )
        conn.commit()


def find_by_auth_req_id(conn: Connection, auth_req_id: str) -> RequestRow | None:
    r = conn.execute(_SELECT.where(_requests.c.auth_req_hash == store.digest(auth_req_id))).first()
    conn.commit()
    return _row(r) if r is not None else None


def find_by_id(conn: Connection, request_id: int) -> RequestRow | None:
    r = conn.execute(_SELECT.where(_requests.c.id == request_id)).first()
    conn.commit()
    return _row(r) if r is not None else None


def pending_for(conn: Connection, user_id: int, now: int) -> list[RequestRow]:
    """The user's requests waiting for a decision, oldest first."""
    rows = conn.execute(
        _SELECT.where(
            _requests.c.user_id == user_id,
            _requests.c.state == State.PENDING.value,
            _requests.c.expires_at > now,
        ).order_by(_requests.c.id)
    ).all()
    conn.commit()
    return [_row(r) for r in rows]


_WRITE = (
    update(_requests)
    .where(_requests.c.id == bindparam("b_id"), _requests.c.version == bindparam("b_version"))
    .values(
        state=bindparam("state"),
        version=bindparam("version"),
        interval=bindparam("interval"),
        last_poll_at=bindparam("last_poll_at"),
    )
)


def _write(conn: Connection, row: RequestRow, new: Snapshot, extra: dict[str, Any]) -> bool:
    params = {
        "b_id": row.id,
        "b_version": row.snapshot.version,
        "state": new.state.value,
        "version": new.version,
        "interval": new.interval,
        "last_poll_at": new.last_poll_at,
    }
    statement = _WRITE.values(**extra) if extra else _WRITE
    return store._rowcount(conn.execute(statement, params)) == 1


def run(
    db: Database,
    read: Callable[[Connection], RequestRow | None],
    event: Event,
    now: int,
    *,
    decision: Decision | None = None,
) -> tuple[Transition, RequestRow] | None:
    """Apply ``event`` to the request ``read`` finds: decide on what was read, write it if the
    row still holds what was read, else read and decide again. ``None``: no such request.

    Returns the transition and the row it was decided on. An :attr:`Answer.ISSUE` is not
    written here: the caller consumes the approval with :func:`consume` when it records tokens.
    """
    row: RequestRow | None = None
    for _ in range(MAX_RETRIES):
        with db.engine.connect() as conn:
            row = read(conn)
            if row is None:
                return None
            transition = step(row.snapshot, event, now)
            if transition.write is None or transition.answer is Answer.ISSUE:
                return transition, row
            extra: dict[str, Any] = {}
            if event is not Event.POLL:
                extra["decided_at"] = now
                if decision is not None and event is Event.APPROVE:
                    extra.update(amr=list(decision.amr), auth_time=decision.auth_time)
            with db.writing():
                won = _write(conn, row, transition.write, extra)
                conn.commit()
            if won:
                return transition, row
    # Lost every race: others keep writing this request. Only polls get here in practice.
    busy = Answer.SLOW_DOWN if event is Event.POLL else Answer.ALREADY_DECIDED
    assert row is not None
    return Transition(busy, None), row


def consume(row: RequestRow, now: int) -> Callable[[Connection], bool]:
    """The ISSUE transition, for :func:`provider.store.record_issue`'s transaction: spends the
    approval if it is still the approval that was read (True) — else another poll spent it."""
    new = step(row.snapshot, Event.POLL, now).write
    assert new is not None
    assert new.state is State.ISSUED

    def statement(conn: Connection) -> bool:
        return _write(conn, row, new, {})

    return statement
