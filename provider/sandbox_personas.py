"""Personas (sandbox only): one click on ``/sandbox`` signs a seeded user in at a chosen level.

The question this module answers: *can this user be signed in at this level without the login
pages, and if so, with which session?* A persona sign-in records a provider session exactly as
the login pages would have left it after the user verified every factor of the level just now:
each factor stamped with the sandbox's time. The next authorization request that asks for no more
than that level (no ``prompt=login``, no ``max_age=0``) is then answered without a page, with
``acr`` the level, ``amr`` its factors (RFC 8176) and ``auth_time`` the sign-in.

A persona never pretends a factor the user does not have: a level needs factors the user has
enrolled (a one-time code, and whatever else the configuration's levels name), and a user without
one is told which is missing and how to get it, instead of a session that could not exist.

Generic over the configured levels and factors: nothing here knows more than a factor's name.

Pure: no Flask, no storage, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .acr import AcrLevel

__all__ = ["FACTOR_NAMES", "PersonaOption", "options", "refusal", "session_factors"]

# How the page names a factor; any other factor is shown by its RFC 8176 name.
FACTOR_NAMES: dict[str, str] = {"pwd": "password", "otp": "one-time code", "passkey": "passkey"}


def _name(factor: str) -> str:
    return FACTOR_NAMES.get(factor, factor)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class PersonaOption:
    """A level a persona may sign a user in at, and the factors the user lacks for it."""

    level: AcrLevel
    missing: tuple[str, ...]

    @property
    def available(self) -> bool:
        return not self.missing

    @property
    def factors_text(self) -> str:
        """The level's factors, for a button: ``password + one-time code``."""
        return " + ".join(_name(f) for f in self.level.factors)


def options(levels: Sequence[AcrLevel], enrolled: Collection[str]) -> list[PersonaOption]:
    """Every level, weakest first, with what the user (who has ``enrolled``) lacks for it."""
    return [
        PersonaOption(level, tuple(f for f in level.factors if f not in enrolled))
        for level in levels
    ]


def refusal(username: str, option: PersonaOption, *, enrolment: bool) -> str:
    """Why a persona cannot sign ``username`` in at this level, and what to do instead.

    ``enrolment``: whether the login pages offer to set up a one-time code
    (``[provider] allow_totp_enrolment``)."""
    missing = [_name(f) for f in option.missing]
    text = (
        f"{username} has no {_join(missing)} set up, so the sandbox cannot sign {username} in at "
        f"{option.level.value} ({option.factors_text}): a persona never pretends a factor the "
        "user does not have."
    )
    if option.missing != ("otp",):
        return (
            text + f" Set it up for {username} through the provider's login pages first (in the "
            "playground, asking for this level); then this button works."
        )
    if not enrolment:
        return (
            text + " The login pages do not offer to set one up either "
            "(allow_totp_enrolment = false): give the user a totp_secret in the configuration."
        )
    return (
        text + f" Sign in as {username} in the playground, asking for this level: the login "
        "pages offer to set up a one-time code on the way (a QR code for an authenticator app). "
        "Then this button works."
    )


def session_factors(level: AcrLevel, now: int) -> dict[str, int]:
    """The session a persona sign-in records: every factor of the level, verified ``now``."""
    return dict.fromkeys(level.factors, now)
