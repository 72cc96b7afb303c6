"""RFC 9396 ``authorization_details`` at the resource server: what a request needs approved, whether
a token's grant covers it, and how the challenge carries it.

RFC 9396 §9 is about resource servers: the approved ``authorization_details`` travel in the JWT
access token (§9.1, the same claim name and JSON array) or in introspection (§9.2), for the
resource server to decide whether the token allows the request at hand. This module is that
decision, for the type this stack defines (``payment``, docs/transactional.md). A policy rule
computes what a request needs (:mod:`resource_api.policy`, ``authorization_details = '…'``, a CEL
expression over the request); :func:`covers` answers whether the token's grant covers it.

- **Normalised the provider's way.** Required entries and the token's grant are normalised as the
  provider normalises what the user approves (``provider/authorization_details.py``: the amount
  always with two decimals, ``"1500"`` → ``"1500.00"``; a JSON number from the request body such
  as ``1500.0`` reads as ``"1500.00"`` too), so the comparison is exact, string by string. (The
  rules are repeated here rather than imported: this module is pure, and importing ``provider``
  loads Flask; ``tests/resource_api/test_transaction_binding.py`` keeps the two in step.)
- **A grant covers an entry** when it has the same ``type`` and every field it names has the
  entry's value — a grant that names a field the rule does not (a ``locations`` list, say) is a
  restriction the API cannot check, so it covers nothing. A grant may leave out fields the rule
  names only where the type says so: a payment approved without ``from_account`` is good from any
  of the user's accounts.
- **In the challenge**, the required entries travel as the ``authorization_details`` parameter of
  the RFC 9470 challenge, base64url (RFC 4648 §5, no padding) of the compact JSON array — as the
  ``claims`` parameter of Microsoft's claims challenge carries JSON — so the header holds no
  quote to escape (:func:`challenge_value`).

Pure: no Flask.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "InvalidAuthorizationDetails",
    "canonical",
    "challenge_value",
    "covers",
    "decode",
    "parse_entries",
    "required_entries",
]

#: Fields a grant of the type may leave out and still cover an entry that names them.
_MAY_OMIT: Mapping[str, frozenset[str]] = {"payment": frozenset({"from_account"})}
_MAX_ENTRIES = 5
# The bank's amounts (resource_api.bank.rules): up to 9 digits, at most 2 decimals.
_AMOUNT = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,40}")
_PAYMENT_FIELDS = frozenset({"type", "amount", "currency", "payee", "from_account", "locations"})


class InvalidAuthorizationDetails(ValueError):
    """Not a valid RFC 9396 entry of a type this module knows; the message says what is wrong."""


def _payment(where: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A ``payment`` entry, checked and normalised as the provider does."""
    unknown = sorted(k for k in entry if k not in _PAYMENT_FIELDS)
    if unknown:
        raise InvalidAuthorizationDetails(f"{where}: unknown field(s)")
    amount = _amount_text(entry.get("amount"))
    if not isinstance(amount, str) or not _AMOUNT.fullmatch(amount) or Decimal(amount) <= 0:
        raise InvalidAuthorizationDetails(
            f"{where}.amount must be a positive decimal with at most 2 decimals, like 12.50"
        )
    currency = entry.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise InvalidAuthorizationDetails(f"{where}.currency must be an ISO 4217 code (EUR)")
    out: dict[str, Any] = {"type": "payment", "amount": f"{Decimal(amount):.2f}",
                           "currency": currency}  # fmt: skip
    for key in ("payee", "from_account"):
        value = entry.get(key)
        if value is None and key == "from_account":
            continue
        if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
            raise InvalidAuthorizationDetails(f"{where}.{key} must be an account id")
        out[key] = value
    if "locations" in entry:
        locations = entry["locations"]
        if not isinstance(locations, list) or not all(isinstance(u, str) for u in locations):
            raise InvalidAuthorizationDetails(f"{where}.locations must be a list of URIs")
        out["locations"] = list(locations)
    return out


def parse_entries(value: Any) -> list[dict[str, Any]]:
    """RFC 9396 §2 entries (a list of objects, or one object), checked and normalised;
    :class:`InvalidAuthorizationDetails` for anything else."""
    entries = value if isinstance(value, list) else [value]
    if not entries or len(entries) > _MAX_ENTRIES:
        raise InvalidAuthorizationDetails(f"between 1 and {_MAX_ENTRIES} entries")
    out = []
    for i, entry in enumerate(entries):
        where = f"authorization_details[{i}]"
        if not isinstance(entry, Mapping):
            raise InvalidAuthorizationDetails(f"{where} must be a JSON object")
        if entry.get("type") != "payment":
            raise InvalidAuthorizationDetails(f"{where}.type: unknown; supported: payment")
        out.append(_payment(where, entry))
    return out


def canonical(entry: Mapping[str, Any]) -> str:
    """One text for one entry (sorted keys, no spaces): what requirements hold and compare."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def decode(entries: Sequence[str]) -> list[dict[str, Any]]:
    """The entries of a requirement (canonical texts) as JSON values."""
    return [json.loads(e) for e in entries]


def _amount_text(value: Any) -> Any:
    # A request body's numbers are doubles (resource_api.policy.attributes.parse_json_body):
    # 1500.0 -> "1500.00"; 1500.1 -> "1500.10". A string goes to the provider's check as it is.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return value
    try:
        if not exact.is_finite() or exact != exact.quantize(Decimal("0.01")):
            return value  # refused by the caller, with its message
    except InvalidOperation:  # too large to quantize
        return value
    return f"{exact:.2f}"


def required_entries(value: Any) -> tuple[str, ...]:
    """What a rule's expression computed (an entry, or a list of them) as canonical texts,
    normalised as the provider normalises an approval; :class:`InvalidAuthorizationDetails` for
    anything that is not a valid entry of a known type."""
    return tuple(dict.fromkeys(canonical(e) for e in parse_entries(value)))


def _granted(claim: Any) -> list[dict[str, Any]]:
    """The token's grant, each entry normalised; an entry that is not valid grants nothing."""
    if not isinstance(claim, list):
        return []
    out: list[dict[str, Any]] = []
    for entry in claim[:_MAX_ENTRIES]:
        try:
            out.extend(parse_entries([entry]))
        except InvalidAuthorizationDetails:
            continue
    return out


def _covers_one(grant: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    if grant.get("type") != entry.get("type"):
        return False
    optional = _MAY_OMIT.get(str(entry.get("type")), frozenset())
    for key in grant.keys() | entry.keys():
        if key not in grant and key in optional:
            continue
        if key not in grant or key not in entry or grant[key] != entry[key]:
            return False
    return True


def covers(claim: Any, required: Sequence[str]) -> bool:
    """Whether the token's ``authorization_details`` claim covers every required entry."""
    if not required:
        return True
    grants = _granted(claim)
    return all(any(_covers_one(g, e) for g in grants) for e in decode(required))


def challenge_value(required: Sequence[str]) -> str:
    """The challenge's ``authorization_details`` parameter: base64url of the JSON array."""
    text = "[" + ",".join(required) + "]"
    return base64.urlsafe_b64encode(text.encode("ascii")).rstrip(b"=").decode("ascii")
