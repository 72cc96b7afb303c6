"""Bad input at the factor API: each gets a JSON error with its code, never a 500, and what the
audit stores of a value the caller chose fits its column (PostgreSQL text holds no NUL)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from provider.factor_api import Reason

from .factor_api_support import FactorApi, audit, code_now, error_of

BODY = 'Send a JSON object: {"transaction_id": "...", "passcode": "..."}.'


def post(api: FactorApi, path: str, **kw: Any) -> Any:
    return api.http.post(path, headers=api.headers, **kw)


@pytest.mark.parametrize(
    ("kw", "description"),
    [
        ({}, BODY),
        ({"data": {"passcode": "123456"}}, BODY),  # a form, not JSON
        ({"data": "{nope", "content_type": "application/json"}, BODY),
        ({"json": ["123456"]}, BODY),
        ({"data": "[" * 20000 + "]" * 20000, "content_type": "application/json"}, BODY),
        ({"json": {"passcode": "123456"}}, "transaction_id is missing: open a challenge first."),
        (
            {"json": {"transaction_id": 7, "passcode": "1"}},
            "transaction_id is missing: open a challenge first.",
        ),
        ({"json": {"transaction_id": "t"}}, "passcode must be the code the user typed."),
        (
            {"json": {"transaction_id": "t", "passcode": 123456}},
            "passcode must be the code the user typed.",
        ),
        (
            {"json": {"transaction_id": "t", "passcode": ""}},
            "passcode must be the code the user typed.",
        ),
        (
            {"json": {"transaction_id": "t", "passcode": "1" * 65}},
            "passcode must be the code the user typed.",
        ),
    ],
)
def test_a_malformed_body_is_invalid_request(
    app: Flask, kw: dict[str, Any], description: str
) -> None:
    response = post(FactorApi(app), "/api/v1/users/alice/factors/otp/verify", **kw)
    assert (response.status_code, response.json) == (
        400,
        {"error": "invalid_request", "error_description": description},
    )
    assert audit(app) == []  # no verification took place


def test_odd_passcodes_are_wrong_codes_and_count_as_guesses(app: Flask) -> None:
    api = FactorApi(app)
    for passcode in ("12345\x00", " ١٢٣٤٥٦ ", "123 456", "<script>"):
        assert error_of(api.verify("alice", passcode)) == (422, "invalid_passcode")
    assert [r.reason for r in audit(app)] == [Reason.WRONG] * 4
    assert api.verify("alice", f" {code_now(app)} ").status_code == 200  # as the login page


def test_odd_user_and_factor_names_are_not_found_and_audited_as_they_fit(app: Flask) -> None:
    api = FactorApi(app)
    long_name = "a" * 300
    for user, factor, expected in (
        ("al%00ice", "otp", (404, "user_not_found")),
        (long_name, "otp", (404, "user_not_found")),
        ("%C3%A5lice", "otp", (404, "user_not_found")),
        ("alice", "o%00tp", (404, "factor_not_found")),
        ("alice", "x" * 100, (404, "factor_not_found")),
    ):
        if expected[1] == "user_not_found":
            assert error_of(api.factors(user)) == expected
        response = api.verify(user, "123456", "t", factor=factor)
        assert error_of(response) == expected
        assert error_of(api.challenge(user, factor)) == expected
    rows = audit(app)
    assert [(r.user_ref, r.factor, r.reason) for r in rows] == [
        ("al\ufffdice", "otp", Reason.UNKNOWN_USER),
        ("a" * 255, "otp", Reason.UNKNOWN_USER),
        ("ålice", "otp", Reason.UNKNOWN_USER),
        ("alice", "o\ufffdtp", Reason.UNKNOWN_FACTOR),
        ("alice", "x" * 32, Reason.UNKNOWN_FACTOR),
    ]


def test_wrong_methods_paths_and_sizes_get_json_errors(app: Flask) -> None:
    api = FactorApi(app)
    wrong_method = api.http.get("/api/v1/users/alice/factors/otp/verify", headers=api.headers)
    assert error_of(wrong_method) == (405, "invalid_request")
    assert sorted(wrong_method.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
    assert error_of(api.http.get("/api/v1/users", headers=api.headers)) == (404, "invalid_request")
    too_big = post(
        api,
        "/api/v1/users/alice/factors/otp/verify",
        data="{" + " " * 70000 + "}",
        content_type="application/json",
    )
    assert error_of(too_big) == (413, "invalid_request")
