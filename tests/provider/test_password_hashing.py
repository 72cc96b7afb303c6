"""provider.factors.password: argon2id with the OWASP parameters; never raises on bad input."""

from __future__ import annotations

import argon2
import pytest
from argon2.low_level import Type

from provider.factors import password
from provider.factors.password import hash_password, needs_rehash, verify_dummy, verify_password


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse battery staple")


def test_public_names_are_pinned() -> None:
    assert password.__all__ == ["hash_password", "needs_rehash", "verify_dummy", "verify_password"]


def test_hashes_are_argon2id_with_the_owasp_parameters(stored: str) -> None:
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    params = argon2.extract_parameters(stored)
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (
        Type.ID,
        19456,
        2,
        1,
    )
    assert (params.salt_len, params.hash_len) == (16, 32)


def test_the_right_password_verifies(stored: str) -> None:
    assert verify_password(stored, "correct horse battery staple") is True


def test_a_wrong_password_is_false(stored: str) -> None:
    assert verify_password(stored, "correct horse battery stapl") is False
    assert verify_password(stored, "") is False


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("same") != hash_password("same")


def test_non_ascii_passwords_round_trip() -> None:
    stored = hash_password("pässwörd ✓")
    assert verify_password(stored, "pässwörd ✓") is True
    assert verify_password(stored, "passwörd ✓") is False


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=19456,t=2,p=1$",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!$!!!",
        "$2b$12$KIXQJ7Jx8Xl0pPz6yA9bUeU2xQm1Y8b3n6b7c9d0e1f2g3h4i5j6k",  # bcrypt
    ],
)
def test_a_malformed_hash_is_false_not_an_error(malformed: str) -> None:
    assert verify_password(malformed, "anything") is False


def test_a_current_hash_needs_no_rehash(stored: str) -> None:
    assert needs_rehash(stored) is False


def test_a_weaker_hash_needs_rehash() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert verify_password(weak, "pw") is True
    assert needs_rehash(weak) is True


def test_a_malformed_hash_needs_rehash() -> None:
    assert needs_rehash("not a hash") is True


def test_the_dummy_hash_costs_what_a_real_one_costs() -> None:
    # Same parameters, so verify_dummy spends the time of a real verification.
    assert needs_rehash(password._DUMMY_HASH) is False
    verify_dummy("whatever")  # returns nothing, raises nothing
