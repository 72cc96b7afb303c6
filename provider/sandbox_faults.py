"""Negative paths on demand (sandbox only): faults armed for a user's next logins, or an outage.

A fault is armed through ``POST /sandbox/faults`` (views/sandbox.py) and consumed by the login
flow (views/interaction.py) or by the outage check every request passes. This module holds the
state and every decision; the views only translate HTTP. The state lives in the provider's
memory: a sandbox runs one provider worker (stepup/cli.py refuses more), and nothing here is
ever created outside sandbox mode (the board exists only when the sandbox blueprint is
registered).

The faults, for the user's next ``count`` logins (a login: one authorization request, from
``/authorize`` to the redirect back to the client):

``cancel``
    The user declines: once the provider knows who is signing in (after the password, or at once
    when a session exists), it redirects to the client with ``error=access_denied`` (RFC 6749
    §4.1.2.1), ``state`` and ``iss`` (RFC 9207). Unlike the real Cancel button, which answers
    ``unmet_authentication_requirements`` when the ``acr`` was essential, this is always
    ``access_denied``: that is the case an app must tell apart from the next one.
``unmet``
    The level cannot be reached: the same point, ``error=unmet_authentication_requirements``
    (OpenID Connect Core Unmet Authentication Requirements 1.0 §3).
``refuse``
    Every factor the user submits in that login (password, one-time code, enrolment code) is
    answered as wrong: the page again with its usual message and HTTP 401, whatever was typed.
    The login cannot complete; the refusals do not count towards the account's throttling.

And for the provider as a whole:

``down``
    For ``seconds`` of sandbox time every endpoint but ``/sandbox/*`` answers ``503`` with
    ``Retry-After``. The sandbox clock decides when it ends: ``POST /sandbox/clock`` past it and
    the provider is back, no waiting.

A user's faults are used in the order they were armed; usernames match case-insensitively, as
the login form does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

__all__ = [
    "FAULTS",
    "USER_FAULTS",
    "FaultBoard",
    "InvalidFault",
    "Outage",
    "UserFault",
    "parse",
    "redirect_error",
    "retry_after",
]

USER_FAULTS = ("cancel", "refuse", "unmet")
FAULTS = (*USER_FAULTS, "down")
MAX_COUNT = 1000
MAX_DOWN = 7 * 86400
# How many refused interactions are remembered (each is one login a ``refuse`` fault took).
MAX_REFUSED = 1000


class InvalidFault(ValueError):
    """The request to arm a fault is malformed; the message says how to fix it."""


@dataclass(frozen=True)
class UserFault:
    user: str
    fault: str
    count: int


@dataclass(frozen=True)
class Outage:
    seconds: int


def parse(body: Any) -> UserFault | Outage:
    """What to arm, from ``{"user": "alice", "fault": "cancel", "count": 1}`` or
    ``{"fault": "down", "seconds": 30}``; :class:`InvalidFault` says what is wrong."""
    if not isinstance(body, Mapping):
        raise InvalidFault("send a JSON object")
    fault = body.get("fault")
    if fault not in FAULTS:
        raise InvalidFault(f"fault must be one of {', '.join(FAULTS)}")
    if fault == "down":
        extra = set(body) - {"fault", "seconds"}
        if extra:
            raise InvalidFault(f"down takes only seconds, not {', '.join(sorted(extra))}")
        seconds = body.get("seconds")
        if not _int_in(seconds, 1, MAX_DOWN):
            raise InvalidFault(f"seconds must be an integer from 1 to {MAX_DOWN}")
        return Outage(seconds)
    extra = set(body) - {"fault", "user", "count"}
    if extra:
        raise InvalidFault(f"{fault} takes user and count, not {', '.join(sorted(extra))}")
    user, count = body.get("user"), body.get("count", 1)
    if not isinstance(user, str) or not user:
        raise InvalidFault(f"{fault} needs the user whose next login it affects")
    if not _int_in(count, 1, MAX_COUNT):
        raise InvalidFault(f"count must be an integer from 1 to {MAX_COUNT}")
    return UserFault(user, fault, count)


def _int_in(value: Any, low: int, high: int) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def retry_after(until: int | None, now: int) -> int | None:
    """Seconds until an outage ending at ``until`` is over, or ``None`` when there is none."""
    if until is None or now >= until:
        return None
    return until - now


def redirect_error(fault: str) -> tuple[str, str]:
    """The error response (code, description) a ``cancel`` or ``unmet`` fault sends the client."""
    if fault == "cancel":
        return "access_denied", "The user cancelled the sign-in (sandbox fault)."
    if fault == "unmet":
        return (
            "unmet_authentication_requirements",
            "The user could not reach the requested level (sandbox fault).",
        )
    raise ValueError(f"{fault!r} is not answered with a redirect")


class FaultBoard:
    """The armed faults of one sandbox provider. Thread-safe: the server is threaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[list[Any]] = []  # [username (lower), fault, remaining, as given]
        self._down_until: int | None = None
        self._refused: dict[str, None] = {}  # interaction ids, oldest first

    def arm(self, armed: UserFault | Outage, now: int) -> None:
        with self._lock:
            if isinstance(armed, Outage):
                self._down_until = now + armed.seconds
            else:
                self._armed.append([armed.user.lower(), armed.fault, armed.count, armed.user])

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._down_until = None
            self._refused.clear()

    def outage(self, now: int) -> int | None:
        """``Retry-After`` seconds while the provider is down, else ``None``."""
        with self._lock:
            left = retry_after(self._down_until, now)
            if left is None:
                self._down_until = None
            return left

    def take(self, username: str, faults: tuple[str, ...]) -> str | None:
        """Use the user's next armed fault if it is one of ``faults``: its name, else ``None``."""
        with self._lock:
            return self._take(username, faults)

    def _take(self, username: str, faults: tuple[str, ...]) -> str | None:
        name = username.lower()
        for entry in self._armed:
            if entry[0] != name:
                continue
            if entry[1] not in faults:
                return None  # the user's next fault is another one: it keeps its turn
            entry[2] -= 1
            if entry[2] == 0:
                self._armed.remove(entry)
            return str(entry[1])
        return None

    def refuses(self, interaction_id: str, username: str) -> bool:
        """Whether a factor submitted in this login is refused: the login was refused already,
        or it is the user's turn for a ``refuse`` fault (which this login then uses up)."""
        with self._lock:
            if interaction_id in self._refused:
                return True
            if self._take(username, ("refuse",)) is None:
                return False
            self._refused[interaction_id] = None
            while len(self._refused) > MAX_REFUSED:
                del self._refused[next(iter(self._refused))]
            return True

    def listing(self, now: int) -> dict[str, Any]:
        """What ``GET /sandbox/faults`` shows."""
        with self._lock:
            left = retry_after(self._down_until, now)
            return {
                "faults": [{"user": e[3], "fault": e[1], "count": e[2]} for e in self._armed],
                "down": None if left is None else {"until": self._down_until, "retry_after": left},
            }
