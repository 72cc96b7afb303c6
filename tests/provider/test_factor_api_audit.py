"""The factor API's audit is written with what it records (issue 15): a verification's row is
written in the transaction that settles its outcome — for a right code, the one that spends the
TOTP step — so a process that dies between the two loses neither half alone. And the admin's read
of it, ``GET /api/v1/users/{user}/factors/audit``: newest first, a page at a time. On SQLite and
PostgreSQL, at a frozen time."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from provider import factor_audit, login
from provider.factor_api import Reason
from provider.factor_audit import AuditEntry
from provider.factors import totp
from provider.models import Throttle, User

from .conftest import T0_EPOCH
from .factor_api_support import FactorApi, audit, code_now, error_of, op_of, subject_of

UNRECORDED = {
    "error": "temporarily_unavailable",
    "error_description": "The verification could not be recorded, so it did not take place and "
    "the passcode was not spent: try again.",
}


def last_step(app: Flask, username: str = "alice") -> int | None:
    with op_of(app).db.session() as s:
        return s.scalar(select(User.totp_last_step).where(User.username == username))


def failing_audit(
    monkeypatch: pytest.MonkeyPatch, *, on: Reason, after_insert: bool
) -> list[Reason]:
    """Make the audit row of a verification ending in ``on`` fail: the INSERT itself, or — as a
    process that dies between its statements and its COMMIT — after it. Returns the reasons
    that failed."""
    real = factor_audit.record
    failed: list[Reason] = []

    def record(session: Session, entry: AuditEntry) -> None:
        if entry.reason is not on:
            real(session, entry)
            return
        if after_insert:
            real(session, entry)
        failed.append(entry.reason)
        raise OperationalError("INSERT INTO op_factor_audit", {}, ConnectionError("gone"))

    monkeypatch.setattr(factor_audit, "record", record)
    return failed


@pytest.mark.parametrize("after_insert", [False, True], ids=["insert-fails", "dies-before-commit"])
def test_a_success_whose_audit_row_fails_spends_no_code(
    app: Flask, monkeypatch: pytest.MonkeyPatch, after_insert: bool
) -> None:
    api = FactorApi(app)
    tid = api.transaction("alice")
    code = code_now(app)
    assert last_step(app) is None
    failed = failing_audit(monkeypatch, on=Reason.VERIFIED, after_insert=after_insert)

    response = api.verify("alice", code, tid)
    assert failed == [Reason.VERIFIED]  # the code was right: the failure came at the spend
    assert response.status_code == 503
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == UNRECORDED
    # Rolled back together: the step is not spent, and no row (not even a half-written one).
    assert last_step(app) is None
    assert audit(app) == []

    monkeypatch.undo()
    retried = api.verify("alice", code, tid)
    assert retried.status_code == 200
    assert retried.json["status"] == "verified"  # type: ignore[index]
    assert last_step(app) == totp.step_at(T0_EPOCH)
    assert error_of(api.verify("alice", code, tid)) == (422, "replayed_passcode")
    assert [r.reason for r in audit(app)] == [Reason.VERIFIED, Reason.REPLAYED]


@pytest.mark.parametrize("after_insert", [False, True], ids=["insert-fails", "dies-before-commit"])
def test_a_replay_whose_audit_row_fails_is_not_answered(
    app: Flask, monkeypatch: pytest.MonkeyPatch, after_insert: bool
) -> None:
    api = FactorApi(app)
    tid = api.transaction("alice")
    code = code_now(app)
    assert api.verify("alice", code, tid).status_code == 200
    failing_audit(monkeypatch, on=Reason.REPLAYED, after_insert=after_insert)
    response = api.verify("alice", code, tid)
    assert (response.status_code, response.json) == (503, UNRECORDED)
    assert [r.reason for r in audit(app)] == [Reason.VERIFIED]
    monkeypatch.undo()
    assert error_of(api.verify("alice", code, tid)) == (422, "replayed_passcode")
    assert [r.reason for r in audit(app)] == [Reason.VERIFIED, Reason.REPLAYED]


def test_a_wrong_code_whose_audit_row_fails_is_not_answered_but_counted(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No outcome without its row: the caller learns nothing about the code. The attempt was
    counted before the code was checked (the lockout's rule), so it is no free guess."""
    api = FactorApi(app)
    tid = api.transaction("alice")
    failing_audit(monkeypatch, on=Reason.WRONG, after_insert=True)
    response = api.verify("alice", "000000", tid)
    assert (response.status_code, response.json) == (503, UNRECORDED)
    assert audit(app) == []
    monkeypatch.undo()
    # Five failures earn the first lock: this unanswered one and four answered ones.
    for _ in range(4):
        assert error_of(api.verify("alice", "000000", tid)) == (422, "invalid_passcode")
    locked = api.verify("alice", code_now(app), tid)
    assert error_of(locked) == (429, "too_many_attempts")
    assert locked.headers["Retry-After"] == "30"
    assert [r.reason for r in audit(app)] == [Reason.WRONG] * 4 + [Reason.THROTTLED]
    assert last_step(app) is None


def test_refusals_before_any_code_is_checked_whose_row_fails_are_not_answered(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FactorApi(app)
    failing_audit(monkeypatch, on=Reason.INVALID_TRANSACTION, after_insert=True)
    response = api.verify("alice", code_now(app), "not-a-transaction")
    assert (response.status_code, response.json) == (503, UNRECORDED)
    assert audit(app) == []
    assert last_step(app) is None


Seen = list[tuple[login.Outcome, int | None, int | None, list[Reason], list[int], list[int]]]


def watching(app: Flask, seen: Seen) -> Callable[[Session, login.Outcome], None]:
    """A recorder that notes, for each outcome, the step as its own transaction sees it and as
    another connection sees it, the audit rows another connection sees, and the attempt
    counters (``op_throttle``) each sees."""

    def record(session: Session, outcome: login.Outcome) -> None:
        mine = session.scalar(select(User.totp_last_step).where(User.username == "alice"))
        my_counts = list(session.scalars(select(Throttle.failures)))
        with op_of(app).db.session() as other:
            theirs = other.scalar(select(User.totp_last_step).where(User.username == "alice"))
            rows = [r.reason for r in factor_audit.entries(other)]
            their_counts = list(other.scalars(select(Throttle.failures)))
        seen.append((outcome, mine, theirs, rows, my_counts, their_counts))
        factor_audit.record(
            session, AuditEntry(T0_EPOCH, "test", "alice", None, "otp", Reason.VERIFIED)
        )

    return record


def test_check_totp_records_a_success_inside_the_spending_transaction(app: Flask) -> None:
    """The recorder runs after the conditional UPDATE (its transaction sees the step spent and
    the attempt counter cleared) and before the commit (no other connection sees either yet)."""
    op = op_of(app)
    seen: Seen = []
    step = totp.step_at(T0_EPOCH)
    with op.db.session() as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
        assert alice is not None
        result = login.check_totp(
            s, op.throttling, alice, code_now(app), T0_EPOCH, record=watching(app, seen)
        )
    assert result.outcome is login.Outcome.OK
    assert seen == [(login.Outcome.OK, step, None, [], [], [1])]
    assert last_step(app) == step
    assert len(audit(app)) == 1
    with op.db.session() as s:
        assert list(s.scalars(select(Throttle.failures))) == []


@pytest.mark.parametrize(
    ("code", "outcome"),
    [("000000", login.Outcome.WRONG), ("replay", login.Outcome.REPLAYED)],
)
def test_check_totp_records_each_failure_once(
    app: Flask, code: str, outcome: login.Outcome
) -> None:
    op = op_of(app)
    seen: Seen = []
    with op.db.session() as s:
        alice = s.scalar(select(User).where(User.username == "alice"))
        assert alice is not None
        if code == "replay":
            code = code_now(app)
            assert login.check_totp(s, op.throttling, alice, code, T0_EPOCH).ok  # no recorder
        result = login.check_totp(
            s, op.throttling, alice, code, T0_EPOCH, record=watching(app, seen)
        )
    assert result.outcome is outcome
    assert [o for o, *_ in seen] == [outcome]
    assert len(audit(app)) == 1  # committed: the recorder's row


# --- the admin's read -----------------------------------------------------------------------------


def entries_of(response_json: object) -> list[tuple[int, str, str, str | None]]:
    assert isinstance(response_json, dict)
    return [
        (e["at"], e["result"], e["reason"], e["transaction_id"]) for e in response_json["entries"]
    ]


def test_the_audit_is_read_newest_first_a_page_at_a_time(
    app: Flask, frozen: FrozenDateTimeFactory
) -> None:
    api = FactorApi(app)
    alice = subject_of(app, "alice")
    tid = api.transaction("alice")
    short = tid.split(".")[0]
    # Two wrong codes in the same second (ordered by row), a right one, its replay; bob's and an
    # unknown user's rows are not alice's.
    api.verify("alice", "000000", tid)
    api.verify("alice", "111111", tid)
    frozen.tick(1)
    api.verify("alice", code_now(app), tid)
    frozen.tick(1)
    api.verify("alice", code_now(app), tid)
    api.verify("bob", "123456", "x")
    api.verify("nobody", "123456", "x")

    first = api.audit_page("alice", limit="3")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    body = first.json
    assert body is not None
    assert (body["sub"], body["username"]) == (alice, "alice")
    assert entries_of(body) == [
        (T0_EPOCH + 2, "failure", "replayed", short),
        (T0_EPOCH + 1, "success", "verified", short),
        (T0_EPOCH, "failure", "wrong", short),  # the second wrong code
    ]
    assert body["entries"][0] == {
        "at": T0_EPOCH + 2,
        "client_id": "back-office",
        "user_ref": "alice",
        "factor": "otp",
        "result": "failure",
        "reason": "replayed",
        "transaction_id": short,
    }
    cursor = body["next_cursor"]
    assert isinstance(cursor, str)
    issuer = op_of(app).issuer.rstrip("/")
    assert first.headers["Link"] == (
        f'<{issuer}/api/v1/users/alice/factors/audit?limit=3&cursor={cursor}>; rel="next"'
    )

    # A row written meanwhile does not shift the next page (keyset paging).
    api.verify("alice", "222222", tid)
    second = api.audit_page("alice", limit="3", cursor=cursor)
    assert second.status_code == 200
    assert entries_of(second.json) == [(T0_EPOCH, "failure", "wrong", short)]
    assert second.json["next_cursor"] is None  # type: ignore[index]
    assert "Link" not in second.headers

    # By sub as by username; the default page holds them all; reading writes no row.
    whole = api.audit_page(alice)
    assert whole.status_code == 200
    assert [e[2] for e in entries_of(whole.json)] == [
        "wrong",
        "replayed",
        "verified",
        "wrong",
        "wrong",
    ]
    assert whole.json["next_cursor"] is None  # type: ignore[index]
    assert len(audit(app)) == 7


def test_an_empty_audit_is_one_empty_page(app: Flask) -> None:
    response = FactorApi(app).audit_page("alice")
    assert (response.status_code, response.json) == (
        200,
        {"sub": subject_of(app, "alice"), "username": "alice", "entries": [], "next_cursor": None},
    )


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "1.5"},
        {"limit": "ten"},
        {"limit": ""},
        {"limit": "٣"},  # a digit, but not an ASCII one
        {"cursor": ""},
        {"cursor": "12"},
        {"cursor": "12."},
        {"cursor": ".3"},
        {"cursor": "1.2.3"},
        {"cursor": "a.b"},
        {"cursor": "1" * 13 + ".1"},
    ],
)
def test_a_malformed_page_query_is_invalid_request(app: Flask, query: dict[str, str]) -> None:
    response = FactorApi(app).audit_page("alice", **query)
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    description = (
        "limit must be a whole number from 1 to 100."
        if "limit" in query
        else "cursor must be the next_cursor of a previous page, as it was given."
    )
    assert response.json == {"error": "invalid_request", "error_description": description}


def test_a_repeated_page_parameter_is_invalid_request(app: Flask) -> None:
    api = FactorApi(app)
    response = api.http.get(
        "/api/v1/users/alice/factors/audit?limit=1&limit=2", headers=api.headers
    )
    description = "Send limit and cursor at most once each."
    assert (response.status_code, response.json) == (
        400,
        {"error": "invalid_request", "error_description": description},
    )


def test_the_audit_of_an_unknown_user_is_user_not_found(app: Flask) -> None:
    response = FactorApi(app).audit_page("nobody")
    assert error_of(response) == (404, "user_not_found")
    assert audit(app) == []
