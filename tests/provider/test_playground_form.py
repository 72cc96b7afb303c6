"""The playground form's rules and the readable token times, without an app (pure module)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from provider.playground_form import EXAMPLES, TryForm, readable_times, when

T0 = 1795262400  # 2026-11-21 12:00:00 UTC


def test_read_trims_and_collapses_spaces() -> None:
    form = TryForm.read({"acr_values": " a   b ", "max_age": " 60 ", "essential": "on"})
    assert form == TryForm(acr_values="a b", max_age="60", essential=True)


def test_parameters_are_only_those_set() -> None:
    assert TryForm().parameters() == {}
    assert TryForm(acr_values="a b", essential=True, login_hint="bob").parameters() == {
        "acr_values": "a b",
        "login_hint": "bob",
        "claims": '{"id_token":{"acr":{"essential":true,"values":["a","b"]}}}',
    }
    claims = json.loads(TryForm(acr_values="x", essential=True).parameters()["claims"])
    assert claims == {"id_token": {"acr": {"essential": True, "values": ["x"]}}}


@pytest.mark.parametrize(
    ("form", "errors"),
    [
        (TryForm(max_age="0"), set()),
        (TryForm(max_age="12345678901"), {"max_age"}),
        (TryForm(max_age="1e3"), {"max_age"}),
        (TryForm(max_age="٣"), {"max_age"}),  # an Arabic-Indic digit: not ASCII
        (TryForm(prompt="login consent"), {"prompt"}),
        (TryForm(essential=True), {"essential"}),
        (TryForm(acr_values="a" * 513), {"acr_values"}),
        (TryForm(login_hint="b" * 513), {"login_hint"}),
    ],
)
def test_errors_name_the_field(form: TryForm, errors: set[str]) -> None:
    assert set(form.errors()) == errors


@pytest.mark.parametrize("example", [e[2] for e in EXAMPLES])
def test_each_example_link_fills_in_the_same_form(example: TryForm) -> None:
    assert example.errors() == {}
    assert TryForm.read(dict(parse_qsl(example.query()))) == example


def test_a_session_value_is_read_back_and_unknown_keys_ignored() -> None:
    form = TryForm(acr_values="a", prompt="none")
    assert TryForm.from_session(form.to_session()) == form
    assert TryForm.from_session({"acr_values": "a", "other": 1}) == TryForm(acr_values="a")
    assert TryForm.from_session(None) == TryForm()


def test_times_read_as_dates_relative_to_now() -> None:
    assert when(T0, T0) == "2026-11-21 12:00:00 UTC (now)"
    assert when(T0 - 5, T0) == "2026-11-21 11:59:55 UTC (5 s ago)"
    assert when(T0 + 600, T0) == "2026-11-21 12:10:00 UTC (in 600 s)"
    claims = {"exp": T0 + 600, "iat": T0, "auth_time": T0 - 5, "acr": "x", "nbf": True}
    assert readable_times(claims, T0) == [
        ("iat", "2026-11-21 12:00:00 UTC (now)"),
        ("auth_time", "2026-11-21 11:59:55 UTC (5 s ago)"),
        ("exp", "2026-11-21 12:10:00 UTC (in 600 s)"),
    ]
