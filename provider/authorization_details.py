"""RFC 9396 (OAuth 2.0 Rich Authorization Requests): the ``authorization_details`` parameter.

What a transaction-bound request carries so that what the user approves is exactly what the token
allows: a JSON array of objects, each with a ``type`` (§2). This provider knows one type,
``payment`` (a transfer of money to one payee), and parses every entry strictly:

§5: "The AS MUST refuse to process any unknown authorization details type or authorization
details not conforming to the respective type definition" — so an unknown type, an unknown field,
a field of the wrong type or value, or a missing required field is ``invalid_authorization_details``
(:class:`InvalidAuthorizationDetails`), never a silently narrower grant.

The ``payment`` type (docs/transactional.md)::

    {"type": "payment",            # REQUIRED
     "amount": "1500.00",          # REQUIRED: a positive decimal string, at most 2 decimals
     "currency": "EUR",            # REQUIRED: an ISO 4217 code (three capital letters)
     "payee": "acc_…",             # REQUIRED: the account the money goes to
     "from_account": "acc_…",      # OPTIONAL: the account it comes from
     "locations": ["https://…"]}   # OPTIONAL (§2.2): the APIs the entry is for

Parsed entries are normalised (the amount always with two decimals: ``"1500"`` becomes
``"1500.00"``) so that the resource server compares what was approved with what is asked for
character by character.

Pure: no Flask, no storage.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

__all__ = [
    "MAX_ENTRIES",
    "TYPES_SUPPORTED",
    "InvalidAuthorizationDetails",
    "canonical_text",
    "describe_entry",
    "parse_authorization_details",
]

TYPES_SUPPORTED = ("payment",)
MAX_ENTRIES = 5
MAX_TEXT = 4096

_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,40}")
_PAYMENT_FIELDS = {"type", "amount", "currency", "payee", "from_account", "locations"}


class InvalidAuthorizationDetails(ValueError):
    """RFC 9396 §5 ``invalid_authorization_details``; the message says what is wrong."""

    error = "invalid_authorization_details"


def parse_authorization_details(text: str) -> list[dict[str, Any]]:
    """The request parameter's JSON text -> normalised entries (never empty)."""
    if len(text) > MAX_TEXT:
        raise InvalidAuthorizationDetails(f"authorization_details is longer than {MAX_TEXT}")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise InvalidAuthorizationDetails("authorization_details is not valid JSON") from None
    # §2: "a JSON array of JSON objects".
    if not isinstance(value, list) or not value:
        raise InvalidAuthorizationDetails("authorization_details must be a non-empty JSON array")
    if len(value) > MAX_ENTRIES:
        raise InvalidAuthorizationDetails(f"at most {MAX_ENTRIES} authorization_details entries")
    return [normalise_entry(i, e) for i, e in enumerate(value)]


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def normalise_entry(index: int, entry: Any) -> dict[str, Any]:
    """Entry ``index`` of an ``authorization_details`` array, checked and normalised (the amount
    with two decimals); :class:`InvalidAuthorizationDetails` for anything else. The one check:
    the provider's for what a user approves, the resource server's for what a request needs and
    what a token grants (``resource_api/authorization_details.py``)."""
    where = f"authorization_details[{index}]"
    if not isinstance(entry, dict):
        raise InvalidAuthorizationDetails(f"{where} must be a JSON object")
    kind = entry.get("type")
    # §2: "type: REQUIRED. An identifier for the authorization details type as a string."
    if not isinstance(kind, str):
        raise InvalidAuthorizationDetails(f"{where}.type is required, a string")
    if kind != "payment":
        raise InvalidAuthorizationDetails(
            f"{where}.type: unknown; supported: {', '.join(TYPES_SUPPORTED)}"
        )
    unknown = sorted(k for k in entry if k not in _PAYMENT_FIELDS)
    if unknown:
        names = ", ".join(unknown) if all(re.fullmatch(r"[a-z_]{1,40}", k) for k in unknown) else ""
        raise InvalidAuthorizationDetails(f"{where}: unknown field(s) {names}".rstrip())
    amount = entry.get("amount")
    if not isinstance(amount, str) or not _AMOUNT.fullmatch(amount) or Decimal(amount) <= 0:
        raise InvalidAuthorizationDetails(
            f"{where}.amount must be a positive decimal string with at most 2 decimals, like 12.50"
        )
    currency = entry.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise InvalidAuthorizationDetails(f"{where}.currency must be an ISO 4217 code (EUR)")
    parsed: dict[str, Any] = {
        "type": "payment",
        "amount": f"{Decimal(amount):.2f}",
        "currency": currency,
        "payee": _account(entry, "payee", where, required=True),
    }
    source = _account(entry, "from_account", where, required=False)
    if source is not None:
        parsed["from_account"] = source
    if "locations" in entry:
        locations = entry["locations"]
        if (
            not isinstance(locations, list)
            or not locations
            or not all(isinstance(u, str) and 0 < len(u) <= 200 for u in locations)
        ):
            raise InvalidAuthorizationDetails(f"{where}.locations must be a list of URIs")
        parsed["locations"] = list(locations)
    return parsed


def _account(entry: dict[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        raise InvalidAuthorizationDetails(
            f"{where}.{key} must be an account id (1 to 40 letters, digits, '_' or '-')"
        )
    return value


def canonical_text(entries: list[dict[str, Any]]) -> str:
    """Normalised entries as compact JSON with sorted keys: what an interaction keeps of the
    request's ``authorization_details`` (parsed again from it, it gives the same entries)."""
    return json.dumps(entries, sort_keys=True, separators=(",", ":"))


def describe_entry(entry: dict[str, Any]) -> str:
    """One line a person can check on the authentication device."""
    text = f"Pay {entry['amount']} {entry['currency']} to {entry['payee']}"
    if "from_account" in entry:
        text += f" from {entry['from_account']}"
    return text
