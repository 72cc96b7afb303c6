"""The demo bank's HTTP API: one blueprint, thin views over :class:`BankStore`.

Requirements come from the config: ``[[api.routes]]`` and the policy rules ``[[api.rules]]`` — in
the sandbox config, a rule on the request body asks large transfers for a recent login.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from client_sdk.wire import ascii_int

from ..flask_ext import StepUp, current_auth, current_decision, public
from ..step_up import Challenge, Requirement
from .rules import format_cents, parse_amount
from .store import ApprovalUsed, BankError, BankStore, approval_key

__all__ = ["bp"]

bp = Blueprint("bank", __name__)

_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_FIELD_NAME = re.compile(r"[a-z_]{1,40}")


def _store() -> BankStore:
    store: BankStore = current_app.extensions["bank"]
    return store


def _json_object() -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise BankError(415, "unsupported_media_type", "send a JSON object (application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BankError(400, "invalid_body", "the body must be a JSON object")
    return body


def _string(body: dict[str, Any], key: str, *, max_len: int, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BankError(400, "invalid_body", f"{key} must be a non-empty string")
    if len(value) > max_len or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise BankError(
            400, "invalid_body", f"{key} must be at most {max_len} printable characters"
        )
    return value


def _me() -> str:
    sub = current_auth().sub
    if not sub:
        raise BankError(403, "invalid_subject", "the access token names no subject")
    _store().open_customer(sub)
    return sub


def _account_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "currency": row["currency"],
        "balance": format_cents(row["balance_cents"]),
    }


@bp.errorhandler(BankError)
def _bank_error(exc: BankError) -> tuple[Response, int]:
    return jsonify(error=exc.error, error_description=exc.description), exc.status_code


@bp.get("/health")
@public
def health() -> Response:
    return jsonify(status="ok")


@bp.get("/accounts")
def list_accounts() -> Response:
    sub = _me()
    return jsonify(accounts=[_account_json(r) for r in _store().accounts(sub)])


@bp.get("/accounts/<account_id>/transactions")
def list_transactions(account_id: str) -> Response:
    sub = _me()
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise BankError(404, "account_not_found", "no such account")
    limit = ascii_int(request.args.get("limit", "50"), maximum=100)
    if limit is None or limit < 1:
        raise BankError(400, "invalid_request", "limit must be an integer from 1 to 100")
    rows = _store().transactions(sub, account_id, limit)
    return jsonify(
        account_id=account_id,
        transactions=[
            {
                "amount": format_cents(r["amount_cents"]),
                "description": r["description"],
                "transfer_id": r["transfer_id"],
                "created_at": r["created_at"],
            }
            for r in rows
        ],
    )


def _approval_challenge(requirement: Requirement, why: str) -> Response:
    """The policy's own challenge for this transfer (the same acr_values, max_age and
    authorization_details), with ``why`` as its description."""
    step_up: StepUp = current_app.extensions["stepup"]
    challenge = Challenge(
        requirement.acr_values, requirement.max_age, why, requirement.authorization_details
    )
    return step_up.challenge_response(challenge)


@bp.post("/transfers")
def create_transfer() -> tuple[Response, int] | Response:
    sub = _me()
    body = _json_object()
    unknown = set(body) - {"from_account", "to_account", "amount", "currency", "description"}
    if unknown:
        # Field names are echoed only when they are plain names: a key can hold any character.
        if all(_FIELD_NAME.fullmatch(k) for k in unknown):
            raise BankError(400, "invalid_body", f"unknown field(s): {', '.join(sorted(unknown))}")
        raise BankError(400, "invalid_body", "the body has fields a transfer does not take")
    from_account = _string(body, "from_account", max_len=40)
    to_account = _string(body, "to_account", max_len=40)
    try:
        cents = parse_amount(body.get("amount"))
    except ValueError as exc:
        raise BankError(400, "invalid_body", str(exc)) from None
    if body.get("currency", "EUR") != "EUR":
        raise BankError(400, "invalid_body", "currency must be EUR")
    description = _string(body, "description", max_len=140, required=False) or "Transfer"
    auth = current_auth()
    # A transfer the policy bound to a transaction approval (RFC 9396 authorization_details) spends
    # that approval: one approval, one transfer (docs/transactional.md).
    requirement = current_decision().requirement
    approval = None
    if requirement.authorization_details:
        issuer, jti = auth.claims.get("iss"), auth.claims.get("jti")
        if not isinstance(issuer, str) or not isinstance(jti, str) or not jti:
            return _approval_challenge(
                requirement, "the token has no jti, so its approval cannot be spent once: "
                "ask the user to approve this transfer again",
            )  # fmt: skip
        approval = approval_key(issuer, jti)
    try:
        transfer = _store().transfer(
            sub, from_account, to_account, cents, description,
            acr=auth.authentication_policy, auth_time=auth.authentication_time,
            approval=approval,
        )  # fmt: skip
    except ApprovalUsed:
        return _approval_challenge(
            requirement, "the user's approval of this transfer has been used for a transfer "
            "already; one approval pays one transfer: ask the user to approve it again",
        )  # fmt: skip
    return jsonify(
        id=transfer.id,
        from_account=transfer.from_account,
        to_account=transfer.to_account,
        amount=format_cents(transfer.amount_cents),
        currency="EUR",
        description=transfer.description,
        authorized_with={"acr": auth.authentication_policy, "amr": list(auth.amr)},
    ), 201


@bp.get("/profile")
def get_profile() -> Response:
    sub = _me()
    auth = current_auth()
    profile = _store().profile(sub)
    return jsonify(
        sub=sub,
        email=profile.get("email"),
        authentication={
            "acr": auth.authentication_policy,
            "amr": list(auth.amr),
            "auth_time": auth.authentication_time,
            "age": auth.authentication_age,
        },
        scope=sorted(auth.scope),
    )


@bp.put("/profile/email")
def set_email() -> Response:
    sub = _me()
    body = _json_object()
    email = _string(body, "email", max_len=254)
    if set(body) != {"email"} or not _EMAIL.fullmatch(email):
        raise BankError(400, "invalid_body", 'send {"email": "name@example.com"} and nothing else')
    _store().set_email(sub, email)
    return jsonify(sub=sub, email=email)
