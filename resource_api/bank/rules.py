"""Parsing of the demo bank's amounts. Pure: no Flask.

(The bank's request-dependent requirement — transfers above 1,000.00 need a login in the last 5
minutes — is a policy rule in the config, ``stepup/sandbox.toml``, not code.)

Amounts are decimal strings ("12.50") or JSON numbers with at most two decimals; anything else —
negative, zero, NaN, ``true``, ``1e400``, more than 1,000,000.00 — is refused before it reaches the
database.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "MAX_TRANSFER_CENTS",
    "format_cents",
    "parse_amount",
]

MAX_TRANSFER_CENTS = 100_000_000

_AMOUNT = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,2})?")


def parse_amount(value: Any) -> int:
    """Cents from a JSON amount; :class:`ValueError` with a message for anything not acceptable."""
    if isinstance(value, bool):
        raise ValueError("amount must be a number or a decimal string, not a boolean")
    if isinstance(value, int):
        cents = value * 100
    elif isinstance(value, float | str):
        text = repr(value) if isinstance(value, float) else value.strip()
        try:
            exact = Decimal(text)
        except InvalidOperation:
            raise ValueError("amount must be a decimal like 12.50") from None
        if not exact.is_finite():
            raise ValueError("amount must be a finite number")
        if isinstance(value, str) and not _AMOUNT.fullmatch(text):
            raise ValueError(
                "amount must be a positive decimal with at most 2 decimals, like 12.50"
            )
        if abs(exact) >= 10**12:
            raise ValueError(f"amount must be at most {format_cents(MAX_TRANSFER_CENTS)}")
        if exact != exact.quantize(Decimal("0.01")):
            raise ValueError("amount must have at most 2 decimals")
        cents = int(exact * 100)
    else:
        raise ValueError("amount must be a number or a decimal string")
    if cents <= 0:
        raise ValueError("amount must be more than 0")
    if cents > MAX_TRANSFER_CENTS:
        raise ValueError(f"amount must be at most {format_cents(MAX_TRANSFER_CENTS)}")
    return cents


def format_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
