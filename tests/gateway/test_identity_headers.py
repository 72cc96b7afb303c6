"""Contract 10's identity headers: what an allowed request carries, and that no client copy of them
survives, whatever its spelling."""

from __future__ import annotations

import pytest

from resource_api.gateway import IDENTITY_HEADERS, identity_headers, is_identity_header
from resource_api.gateway.identity import without_identity_headers


def test_the_five_headers_from_a_full_token() -> None:
    claims = {"sub": "alice", "acr": "urn:stepup:loa:2", "amr": ["pwd", "otp", "mfa"],
              "auth_time": 1_700_000_123.9, "client_id": "bank-cli"}  # fmt: skip
    assert identity_headers(claims) == [
        ("X-Stepup-Subject", "alice"),
        ("X-Stepup-Acr", "urn:stepup:loa:2"),
        ("X-Stepup-Amr", "pwd otp mfa"),
        ("X-Stepup-Auth-Time", "1700000123"),
        ("X-Stepup-Client-Id", "bank-cli"),
    ]
    assert [name for name, _ in identity_headers(claims)] == list(IDENTITY_HEADERS)


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"sub": "bob"}, [("X-Stepup-Subject", "bob")]),
        ({"sub": "a\r\nX-Evil: 1"}, []),  # a claim that would split the header is left out
        (
            {"sub": "alice", "acr": 2, "auth_time": True, "amr": "pwd"},
            [("X-Stepup-Subject", "alice")],
        ),
        ({"amr": ["pwd", "o t p", 3]}, [("X-Stepup-Amr", "pwd")]),
        ({"auth_time": float("nan")}, []),
        ({"auth_time": 10**400}, []),  # no 400-digit header: not a time a token can carry
        ({"auth_time": -5}, []),
    ],
)
def test_absent_or_unsendable_claims_send_no_header(
    claims: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert identity_headers(claims) == expected


@pytest.mark.parametrize(
    "name",
    ["X-Stepup-Subject", "x-stepup-subject", "X-STEPUP-ACR", "x_stepup_amr", "X_Stepup-Auth_Time",
     "x-stepup-client-id"],
)  # fmt: skip
def test_client_copies_are_recognised_in_any_spelling(name: str) -> None:
    assert is_identity_header(name)


def test_other_headers_are_kept_in_order() -> None:
    sent = [("Authorization", "Bearer t"), ("X-Stepup-Subject", "mallory"),
            ("x_stepup_acr", "loa9"), ("X-Stepup-Subjects", "kept"), ("Accept", "*/*")]  # fmt: skip
    assert without_identity_headers(sent) == [
        ("Authorization", "Bearer t"), ("X-Stepup-Subjects", "kept"), ("Accept", "*/*")
    ]  # fmt: skip
