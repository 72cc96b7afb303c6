"""What the sandbox playground's form asks of the provider, and how it shows the tokens it gets.

The form at ``/sandbox/try`` sets the OIDC Core §3.1.2.1 parameters that drive a step-up —
``acr_values``, ``max_age``, ``prompt``, ``login_hint`` — and, as a checkbox, an essential ``acr``
in the §5.5 ``claims`` parameter (§5.5.1.1); and RFC 9396 ``authorization_details``, a
transaction for the user to approve (the provider checks it: a bad one comes back as
``invalid_authorization_details``). :class:`TryForm` reads and checks it;
:func:`readable_times` turns a token's NumericDate claims (RFC 7519 §2) into times people read.

Pure: no Flask, no storage, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from client_sdk.wire import ascii_digits

__all__ = ["EXAMPLES", "PROMPTS", "TryForm", "readable_times", "when"]

# The prompt values the provider acts on (OIDC Core §3.1.2.1), with what each does.
PROMPTS: dict[str, str] = {
    "": "(not sent)",
    "login": "login: sign in again, even with a session",
    "none": "none: never a page; an error when the user would have to sign in",
}
MAX_TEXT = 512  # longer than any level list or username worth trying
MAX_DETAILS = 4096  # provider.authorization_details.MAX_TEXT
TIME_CLAIMS = ("iat", "nbf", "auth_time", "exp")


@dataclass(frozen=True)
class TryForm:
    """The playground form's fields, as typed (trimmed)."""

    acr_values: str = ""
    max_age: str = ""
    prompt: str = ""
    login_hint: str = ""
    essential: bool = False
    authorization_details: str = ""

    @classmethod
    def read(cls, values: Mapping[str, str]) -> TryForm:
        return cls(
            acr_values=" ".join(values.get("acr_values", "").split()),
            max_age=values.get("max_age", "").strip(),
            prompt=values.get("prompt", "").strip(),
            login_hint=values.get("login_hint", "").strip(),
            essential=values.get("essential", "") in ("on", "true", "1"),
            authorization_details=values.get("authorization_details", "").strip(),
        )

    def errors(self) -> dict[str, str]:
        """A message for each field whose value the provider would refuse, by field name."""
        errors: dict[str, str] = {}
        if len(self.acr_values) > MAX_TEXT:
            errors["acr_values"] = f"Keep acr_values under {MAX_TEXT} characters."
        if self.max_age and not (ascii_digits(self.max_age) and len(self.max_age) <= 10):
            errors["max_age"] = "max_age is a whole number of seconds (0 or more), or empty."
        if self.prompt not in PROMPTS:
            errors["prompt"] = "Choose one of the listed prompt values."
        if len(self.login_hint) > MAX_TEXT:
            errors["login_hint"] = f"Keep login_hint under {MAX_TEXT} characters."
        if len(self.authorization_details) > MAX_DETAILS:
            errors["authorization_details"] = (
                f"Keep authorization_details under {MAX_DETAILS} characters."
            )
        if self.essential and not self.acr_values:
            errors["essential"] = "An essential acr needs at least one value in acr_values."
        return errors

    def parameters(self) -> dict[str, str]:
        """The authorization request parameters this form adds (only those it sets)."""
        params: dict[str, str] = {}
        if self.acr_values:
            params["acr_values"] = self.acr_values
        if self.max_age:
            params["max_age"] = self.max_age
        if self.prompt:
            params["prompt"] = self.prompt
        if self.login_hint:
            params["login_hint"] = self.login_hint
        if self.essential:
            acr = {"essential": True, "values": self.acr_values.split()}
            params["claims"] = json.dumps({"id_token": {"acr": acr}}, separators=(",", ":"))
        if self.authorization_details:
            params["authorization_details"] = self.authorization_details
        return params

    def query(self) -> str:
        """This form as the query of a ``GET /sandbox/try`` link that fills it in."""
        fields = {k: v for k, v in asdict(self).items() if v and k != "essential"}
        if self.essential:
            fields["essential"] = "on"
        return urlencode(fields)

    def to_session(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, saved: Mapping[str, Any] | None) -> TryForm:
        if not saved:
            return cls()
        return cls(**{k: saved[k] for k in asdict(cls()) if k in saved})


EXAMPLES: tuple[tuple[str, str, TryForm], ...] = (
    ("Sign in", "no level asked: a password is enough", TryForm()),
    (
        "Step up to urn:stepup:loa:2",
        "after a sign-in, only the missing one-time code is asked",
        TryForm(acr_values="urn:stepup:loa:2"),
    ),
    (
        "Step up with max_age=60",
        "a sign-in older than a minute is done again, with every factor",
        TryForm(acr_values="urn:stepup:loa:2", max_age="60"),
    ),
    ("Sign in again with prompt=login", "even with a session", TryForm(prompt="login")),
    (
        "Ask silently with prompt=none",
        "an error instead of a page when a step-up is needed",
        TryForm(acr_values="urn:stepup:loa:2", prompt="none"),
    ),
    (
        "Approve a payment of 1500.00 EUR to acc_bob",
        "RFC 9396 authorization_details: the page shows the payment; a fresh code approves it",
        TryForm(
            acr_values="urn:stepup:loa:2",
            authorization_details='[{"type": "payment", "amount": "1500.00", '
            '"currency": "EUR", "payee": "acc_bob"}]',
        ),
    ),
    (
        "Ask for a level that does not exist, as essential",
        "unmet_authentication_requirements instead of a lower level",
        TryForm(acr_values="urn:stepup:loa:3", essential=True),
    ),
)


def when(epoch: int, now: int) -> str:
    """``2026-11-21 12:00:00 UTC (3 s ago)``, or ``(in 597 s)`` for a time to come."""
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = now - epoch
    if delta == 0:
        return f"{stamp} (now)"
    return f"{stamp} ({delta} s ago)" if delta > 0 else f"{stamp} (in {-delta} s)"


def readable_times(claims: Mapping[str, Any], now: int) -> list[tuple[str, str]]:
    """Each NumericDate claim present (``iat``, ``nbf``, ``auth_time``, ``exp``), readable."""
    return [
        (name, when(int(claims[name]), now))
        for name in TIME_CLAIMS
        if isinstance(claims.get(name), int) and not isinstance(claims.get(name), bool)
    ]
