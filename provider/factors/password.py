"""The password factor (``pwd``): argon2id hashes with the OWASP parameters.

OWASP Password Storage Cheat Sheet, "Argon2id": "Use Argon2id with a minimum configuration of
19 MiB of memory, an iteration count of 2, and 1 degree of parallelism." — ``m=19456`` (KiB),
``t=2``, ``p=1``. Hashes are PHC strings (``$argon2id$v=19$m=19456,t=2,p=1$salt$hash``) that carry
their own parameters, so :func:`needs_rehash` can upgrade old hashes at the next successful login.

:func:`verify_dummy` spends the time of a real verification when the username is unknown, so the
login form does not tell, by its speed, which usernames exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "needs_rehash", "verify_dummy", "verify_password"]

# Built once: the hasher holds the parameters; building it per call would only cost and risk drift.
_HASHER = PasswordHasher(
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)

# The hash of a random throwaway value, made once with the parameters above (a test pins that they
# match, so verifying against it costs what a real verification costs). It protects nothing.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$UaY0gSKkLXGGZBVZM3YlrA"
    "$ig/YgAbiUU2irN8yfyv2zORCtzuXbrV/ydb1yk+TsNc"
)


def hash_password(password: str) -> str:
    """A new argon2id hash of ``password`` with a random salt."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; a wrong password or a bad hash: ``False``.

    Never raises for either, so a corrupt row reads as a failed login rather than an error page.
    """
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with other parameters (rehash after a successful login).

    A malformed hash also answers ``True``: it should be replaced.
    """
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


def verify_dummy(password: str) -> None:
    """Spend the time of one verification, for a username that does not exist."""
    verify_password(_DUMMY_HASH, password)
