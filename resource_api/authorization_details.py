"""RFC 9396 ``authorization_details`` at the resource server: what a request needs approved, whether
a token's grant covers it, and how the challenge carries it.

RFC 9396 §9 is about resource servers: the approved ``authorization_details`` travel in the JWT
access token (§9.1, the same claim name and JSON array) or in introspection (§9.2), for the
resource server to decide whether the token allows the request at hand. This module is that
decision, for the type this stack defines (``payment``, docs/transactional.md). A policy rule
computes what a request needs (:mod:`resource_api.policy`, ``authorization_details = '…'``, a CEL
expression over the request); :func:`covers` answers whether the token's grant covers it.

- **Normalised the provider's way**, by the provider's own check
  (:func:`provider.authorization_details.normalise_entry`, pure: no Flask): the amount always
  with two decimals, ``"1500"`` → ``"1500.00"``, so the comparison is exact, string by string. A
  JSON number from the request body such as ``1500.0`` is read as ``"1500.00"`` first.
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
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from provider.authorization_details import (
    MAX_ENTRIES,
    InvalidAuthorizationDetails,
    normalise_entry,
)

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


def parse_entries(value: Any) -> list[dict[str, Any]]:
    """RFC 9396 §2 entries (a list of objects, or one object), checked and normalised as the
    provider does; :class:`InvalidAuthorizationDetails` for anything else."""
    entries = value if isinstance(value, list) else [value]
    if not entries or len(entries) > MAX_ENTRIES:
        raise InvalidAuthorizationDetails(f"between 1 and {MAX_ENTRIES} entries")
    return [normalise_entry(i, _with_amount_text(entry)) for i, entry in enumerate(entries)]


def _with_amount_text(entry: Any) -> Any:
    """``entry`` as a plain dict (CEL gives maps), its numeric ``amount`` as text."""
    if not isinstance(entry, Mapping):
        return entry
    plain = dict(entry)
    if "amount" in plain:
        plain["amount"] = _amount_text(plain["amount"])
    return plain


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
    for entry in claim[:MAX_ENTRIES]:
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
