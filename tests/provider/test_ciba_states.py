"""The CIBA request's state machine (provider.ciba_states) and RFC 9396 parsing: pure tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider.authorization_details import (
    InvalidAuthorizationDetails,
    parse_authorization_details,
)
from provider.ciba_states import (
    TABLE,
    Answer,
    Event,
    Snapshot,
    State,
    mermaid,
    step,
)

T = 1_000_000
PENDING = Snapshot(State.PENDING, expires_at=T + 300, interval=5)


def test_every_state_and_event_has_an_answer_at_every_time() -> None:
    for state in State:
        for event in Event:
            for now in (T, T + 299, T + 300, T + 10_000):
                for last in (None, T - 1, now):
                    step(Snapshot(state, T + 300, 5, last), event, now)  # raises if no row


@pytest.mark.parametrize(
    ("snapshot", "event", "now", "answer", "state"),
    [
        (PENDING, Event.POLL, T, Answer.AUTHORIZATION_PENDING, State.PENDING),
        (PENDING, Event.POLL, T + 300, Answer.EXPIRED_TOKEN, None),
        (PENDING, Event.APPROVE, T, Answer.APPROVED, State.APPROVED),
        (PENDING, Event.DENY, T, Answer.DENIED, State.DENIED),
        (PENDING, Event.APPROVE, T + 300, Answer.EXPIRED, None),
        (Snapshot(State.APPROVED, T + 300, 5, T), Event.POLL, T + 1, Answer.ISSUE, State.ISSUED),
        (Snapshot(State.APPROVED, T + 300, 5), Event.POLL, T + 300, Answer.EXPIRED_TOKEN, None),
        (Snapshot(State.DENIED, T + 300, 5), Event.POLL, T, Answer.ACCESS_DENIED, None),
        (Snapshot(State.DENIED, T + 300, 5), Event.APPROVE, T, Answer.ALREADY_DECIDED, None),
        (Snapshot(State.ISSUED, T + 300, 5), Event.POLL, T + 900, Answer.INVALID_GRANT, None),
        (Snapshot(State.ISSUED, T + 300, 5), Event.DENY, T, Answer.ALREADY_DECIDED, None),
    ],
)
def test_the_table(
    snapshot: Snapshot, event: Event, now: int, answer: Answer, state: State | None
) -> None:
    transition = step(snapshot, event, now)
    assert transition.answer is answer
    if state is None:
        assert transition.write is None  # nothing changes, nothing is written
    else:
        assert transition.write is not None
        assert transition.write.state is state
        assert transition.write.version == snapshot.version + 1


def test_slow_down_raises_the_interval_by_five_and_records_the_poll() -> None:
    polled = step(PENDING, Event.POLL, T).write
    assert polled == Snapshot(State.PENDING, T + 300, 5, last_poll_at=T, version=1)
    slowed = step(polled, Event.POLL, T + 4)
    assert slowed.answer is Answer.SLOW_DOWN
    assert slowed.write == Snapshot(State.PENDING, T + 300, 10, last_poll_at=T + 4, version=2)


@given(st.lists(st.sampled_from(list(Event)), max_size=12), st.integers(0, 400))
def test_once_issued_or_denied_a_request_never_changes_again(events: list[Event], t: int) -> None:
    snapshot = PENDING
    seen_final: State | None = None
    for i, event in enumerate(events):
        now = T + min(t + i, 299)
        write = step(snapshot, event, now).write
        if write is not None:
            snapshot = write
        if seen_final is not None:
            assert snapshot.state is seen_final
        if snapshot.state in (State.ISSUED, State.DENIED):
            seen_final = snapshot.state


def test_the_docs_show_the_table() -> None:
    page = Path(__file__).parents[2] / "docs" / "transactional.md"
    assert mermaid() in page.read_text(encoding="utf-8")
    assert len(mermaid().splitlines()) == len(TABLE) + 2


# --- RFC 9396 -------------------------------------------------------------------------------------


def test_payment_details_are_normalised() -> None:
    parsed = parse_authorization_details(
        '[{"type": "payment", "amount": "1500", "currency": "EUR", "payee": "acc_b",'
        ' "from_account": "acc_a"}]'
    )
    assert parsed == [
        {
            "type": "payment",
            "amount": "1500.00",
            "currency": "EUR",
            "payee": "acc_b",
            "from_account": "acc_a",
        }
    ]


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{}",
        "null",
        '[{"amount": "1.00"}]',
        '[{"type": 1}]',
        '[{"type": "payment", "amount": 1500, "currency": "EUR", "payee": "b"}]',
        '[{"type": "payment", "amount": "0.00", "currency": "EUR", "payee": "b"}]',
        '[{"type": "payment", "amount": "1.001", "currency": "EUR", "payee": "b"}]',
        '[{"type": "payment", "amount": "NaN", "currency": "EUR", "payee": "b"}]',
        '[{"type": "payment", "amount": "1.00", "currency": "eur", "payee": "b"}]',
        '[{"type": "payment", "amount": "1.00", "currency": "EUR"}]',
        '[{"type": "payment", "amount": "1.00", "currency": "EUR", "payee": "a b"}]',
        '[{"type": "payment", "amount": "1.00", "currency": "EUR", "payee": "b", "x": 1}]',
        '[{"type": "payment", "amount": "1.00", "currency": "EUR", "payee": "b", "locations": []}]',
        '[{"type": "payment", "amount": "Infinity", "currency": "EUR", "payee": "b"}]',
        "[" * 5000,
        "[1]",
    ],
)
def test_anything_else_is_invalid_authorization_details(text: str) -> None:
    with pytest.raises(InvalidAuthorizationDetails):
        parse_authorization_details(text)
