"""Passkeys in the login flow: challenges, registration and assertion, with their storage.

:mod:`provider.factors.passkey` verifies WebAuthn responses; this module adds what needs the
database, each single-use thing consumed by one atomic statement (``docs/provider.md``):

* **Challenges** are bound to the interaction: the page's challenge is stored on its row as
  ``"create:<challenge>"`` or ``"get:<challenge>"``; a response is accepted only by the
  ``UPDATE … SET passkey_challenge = NULL WHERE id = … AND passkey_challenge = …`` that clears it,
  so a response replayed (or sent twice at once) finds nothing to clear and is refused. It is
  cleared *before* the response is verified: a response that fails costs its challenge, and the
  page gives a new one.
* **Signature counters** only go up: the new count is stored by ``UPDATE … WHERE sign_count <
  :new`` (or both zero: an authenticator without a counter), so of two assertions carrying one
  count, one is refused as a possible clone.
* **Credential ids** are unique: a second registration of one is refused as ``excluded``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .factors import passkey
from .factors.passkey import PasskeyRefused, RelyingParty
from .models import Interaction, Passkey, User
from .store import _rowcount

__all__ = [
    "Verified",
    "authenticate",
    "credentials_of",
    "issue_challenge",
    "passkey_factors",
    "register",
    "user_passkey_factors",
]


@dataclass(frozen=True)
class Verified:
    """A passkey the user proved: whose, which, and the factors it gives the session."""

    user: User
    credential: Passkey
    factors: tuple[str, ...]


def _factors(user_verified: bool, hardware: bool) -> tuple[str, ...]:
    """``passkey``, plus ``hwk`` and ``uv`` for how it was used (``provider.acr``)."""
    return ("passkey", *(("hwk",) if hardware else ()), *(("uv",) if user_verified else ()))


def issue_challenge(session: Session, interaction_id: str, ceremony: str) -> str:
    """A new challenge for the interaction's page; any earlier one stops working."""
    assert ceremony in ("create", "get")
    challenge = passkey.new_challenge()
    session.execute(
        update(Interaction)
        .where(Interaction.id == interaction_id)
        .values(passkey_challenge=f"{ceremony}:{challenge}")
    )
    session.commit()
    return challenge


def _consume(session: Session, interaction_id: str, ceremony: str, challenge: str) -> bool:
    result = session.execute(
        update(Interaction)
        .where(
            Interaction.id == interaction_id,
            Interaction.passkey_challenge == f"{ceremony}:{challenge}",
        )
        .values(passkey_challenge=None)
    )
    session.commit()
    return _rowcount(result) == 1


def credentials_of(session: Session, user_id: int, *, hardware_only: bool = False) -> list[Passkey]:
    query = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.id)
    if hardware_only:
        query = query.where(Passkey.hardware.is_(True))
    rows = list(session.scalars(query))
    session.commit()
    return rows


# Built once and run on the session's connection: the login path asks this at every step.
_PASSKEY_KINDS = select(Passkey.hardware).where(Passkey.user_id == bindparam("user_id"))


def user_passkey_factors(session: Session, user_id: int) -> frozenset[str]:
    """The passkey factors the user can prove: none, or ``passkey`` and ``uv`` (and ``hwk``
    when one of their passkeys showed a trusted hardware attestation)."""
    kinds = set(session.connection().scalars(_PASSKEY_KINDS, {"user_id": user_id}))
    session.commit()
    return passkey_factors(kinds)


def passkey_factors(kinds: set[bool]) -> frozenset[str]:
    """:func:`user_passkey_factors` from the ``hardware`` flags of the user's passkeys, read
    by the caller (the password check reads them with the user)."""
    if not kinds:
        return frozenset()
    return frozenset({"passkey", "uv", *(("hwk",) if True in kinds else ())})


def _challenge_of(response: Mapping[str, Any]) -> str:
    """The challenge the response's client data names (checked against the stored one by the
    atomic consume, then by the verification)."""
    import json

    try:
        data = json.loads(passkey.b64url_decode(response["response"]["clientDataJSON"]))
        challenge = data["challenge"]
    except (KeyError, TypeError, ValueError, RecursionError):
        raise PasskeyRefused("malformed", "no readable clientDataJSON") from None
    if not isinstance(challenge, str) or not 16 <= len(challenge) <= 128:
        raise PasskeyRefused("malformed", "no challenge in the client data")
    return challenge


def register(
    session: Session,
    rp: RelyingParty,
    *,
    user: User,
    interaction_id: str,
    form_value: str,
    require_uv: bool,
    now: int,
    trust: passkey.TrustCheck | None = None,
) -> Verified:
    """§7.1: verify the page's registration and store the credential; :class:`PasskeyRefused`
    otherwise. The challenge is consumed first (single use, this interaction only)."""
    response = passkey.parse_json(form_value)
    challenge = _challenge_of(response)
    if not _consume(session, interaction_id, "create", challenge):
        raise PasskeyRefused("challenge")
    new = passkey.verify_registration(
        rp, response, challenge=challenge, require_uv=require_uv, trust=trust
    )
    # §7.1 step 24: "Verify that the credentialId is not yet registered for any user. If the
    # credentialId is already known then the Relying Party SHOULD fail this registration
    # ceremony." — the unique column decides, also between two registrations at once.
    try:
        result = session.execute(
            insert(Passkey)
            .values(
                user_id=user.id,
                credential_id=passkey.b64url(new.credential_id),
                public_key=new.public_key,
                sign_count=new.sign_count,
                aaguid=new.aaguid,
                attestation_format=new.attestation_format,
                hardware=new.hardware,
                backup_eligible=new.backup_eligible,
                transports=list(new.transports),
                created_at=now,
                last_used_at=now,
            )
            .returning(Passkey.id)
        )
        new_id = result.scalar_one()
        session.commit()
    except IntegrityError:
        session.rollback()
        raise PasskeyRefused("excluded") from None
    row = session.get(Passkey, new_id)
    session.commit()
    assert row is not None
    return Verified(user, row, _factors(new.user_verified, new.hardware))


def authenticate(
    session: Session,
    rp: RelyingParty,
    *,
    user: User | None,
    interaction_id: str,
    form_value: str,
    require_uv: bool,
    hardware_only: bool,
    now: int,
) -> Verified:
    """§7.2: verify the page's assertion — for ``user`` (a step-up), or for whoever owns the
    discoverable credential (``user=None``: a sign-in without a username) — and raise the
    credential's signature counter; :class:`PasskeyRefused` otherwise."""
    response = passkey.read_assertion(passkey.parse_json(form_value))
    if not _consume(session, interaction_id, "get", response.challenge):
        raise PasskeyRefused("challenge")
    # §7.2 step 7: "Using credential.id (or credential.rawId, if base64url encoding is
    # inappropriate for your use case), look up the corresponding credential public key".
    row = session.scalar(
        select(Passkey).where(Passkey.credential_id == passkey.b64url(response.credential_id))
    )
    owner = session.get(User, row.user_id) if row is not None else None
    session.commit()
    if row is None or owner is None:
        raise PasskeyRefused("unknown_credential")
    # §7.2 step 6: the credential must be the identified user's, and "If response.userHandle
    # is present, verify that it equals the user handle of the user account."
    if user is not None and owner.id != user.id:
        raise PasskeyRefused("unknown_credential", "another user's passkey")
    if response.user_handle is not None and response.user_handle != owner.subject.encode():
        raise PasskeyRefused("unknown_credential", "the user handle is not the owner's")
    if user is None and response.user_handle is None:
        # A sign-in without a username identifies the user by the handle (§7.2 step 6).
        raise PasskeyRefused("unknown_credential", "no user handle")
    if hardware_only and not row.hardware:
        raise PasskeyRefused("hardware")
    asserted = passkey.verify_assertion(
        rp,
        response,
        challenge=response.challenge,
        public_key=row.public_key,
        stored_sign_count=int(row.sign_count),
        require_uv=require_uv,
    )
    new = asserted.sign_count
    # Zero is what an authenticator without a counter always sends; it passed only if the
    # stored count is zero too, and must still be zero.
    higher = Passkey.sign_count < new if new else Passkey.sign_count == 0
    raised = session.execute(
        update(Passkey).where(Passkey.id == row.id, higher).values(sign_count=new, last_used_at=now)
    )
    session.commit()
    if _rowcount(raised) != 1:
        raise PasskeyRefused("sign_count", "another assertion raised the counter first")
    return Verified(owner, row, _factors(asserted.user_verified, bool(row.hardware)))


def exclude_ids(rows: Sequence[Passkey]) -> list[bytes]:
    return [passkey.b64url_decode(r.credential_id) for r in rows]
