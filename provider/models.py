"""The provider's tables (SQLAlchemy 2.0 declarative).

Everything single-use — authorization codes, TOTP time steps, refresh-token rotation — is
consumed by one conditional ``UPDATE`` (see :mod:`provider.store`), so several provider
processes may share one database. Secrets that let someone act as a user or client (session
ids, authorization codes, refresh tokens, client secrets) are stored only as SHA-256 digests: a
leaked table is not a set of live credentials.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class User(Base):
    __tablename__ = "op_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The `sub` claim: stable, opaque, never reassigned (OIDC Core §2).
    subject: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(128))
    # The last TOTP time step accepted; a code from this step or an earlier one is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))


class Client(Base):
    __tablename__ = "op_clients"

    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scope: Mapped[str] = mapped_column(Text)
    # False only for a confidential client registered with require_pkce = false.
    require_pkce: Mapped[bool] = mapped_column(Boolean, server_default=true())
    # RFC 9449 §5.2 dpop_bound_access_tokens: every token request of this client needs a proof.
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(Boolean, server_default=false())


class LoginSession(Base):
    """A browser's authentication at the provider: who, and which factors were verified when."""

    __tablename__ = "op_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the cookie value; renewed after each authentication step (session fixation).
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("op_users.id", ondelete="CASCADE"))
    # {"pwd": 1700000000, "otp": 1700000042}: each factor with the time it was last verified.
    factors: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)


class Interaction(Base):
    """One authorization request while the user is at the provider's pages.

    The validated request parameters wait here, not in hidden form fields, so the pages cannot
    alter them; the row is bound to the browser that started it.
    """

    __tablename__ = "op_interactions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    # A TOTP secret offered for enrolment, kept server-side until a valid code confirms it.
    pending_totp_secret: Mapped[str | None] = mapped_column(String(128))
    # The WebAuthn challenge the passkey page was given, "create:<b64url>" or "get:<b64url>";
    # cleared by the one statement that accepts a response to it (provider.passkey_login).
    passkey_challenge: Mapped[str | None] = mapped_column(String(80))


class Passkey(Base):
    """A user's WebAuthn credential (several per user). Nothing here is secret: the private key
    never leaves the authenticator; ``public_key`` is its COSE encoding."""

    __tablename__ = "op_passkeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("op_users.id", ondelete="CASCADE"), index=True)
    # base64url of the credential id (at most 1023 bytes, WebAuthn §7.1 step 23).
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The signature counter last seen (0..2^32-1); raised only by a conditional UPDATE.
    sign_count: Mapped[int] = mapped_column(BigInteger)
    aaguid: Mapped[str] = mapped_column(String(36))
    attestation_format: Mapped[str] = mapped_column(String(32))
    # The attestation chained to a root trusted for hardware keys (RFC 8176 hwk, EAP phrh).
    hardware: Mapped[bool] = mapped_column(Boolean, server_default=false())
    backup_eligible: Mapped[bool] = mapped_column(Boolean, server_default=false())
    transports: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Integer)
    last_used_at: Mapped[int | None] = mapped_column(Integer)


class AuthorizationCode(Base):
    __tablename__ = "op_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("op_users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    # Both "" when the request had no PKCE challenge (a client with require_pkce = false).
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(16))
    # The authentication context travels with the code (and then with the refresh token).
    acr: Mapped[str] = mapped_column(Text)
    amr: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    consumed_at: Mapped[int | None] = mapped_column(Integer)
    # Set when the code is presented again after its first use: the tokens it issued are revoked,
    # including ones still being minted when the reuse arrived (see Issuance.issue).
    reused_at: Mapped[int | None] = mapped_column(Integer)
    # RFC 8707: the resources the authorization request named; None: none (the default audience).
    resources: Mapped[list[str] | None] = mapped_column(JSON)
    # RFC 9449 §10: the dpop_jkt of the authorization request; the code's token request must
    # carry a proof signed with that key.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    # RFC 9396: the authorization_details the user approved (normalised entries); null: none.
    # They go into this code's access token only, never into a refresh (provider.oauth).
    authorization_details: Mapped[list[Any] | None] = mapped_column(JSON)


class Grant(Base):
    """What one token response issued: an access token (by `jti`) and maybe a refresh token.

    Refresh tokens rotate: each use marks the row `rotated_at` and issues a new row in the same
    `family`. A rotated refresh token presented again means theft; the whole family is revoked
    (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
    """

    __tablename__ = "op_grants"
    __table_args__ = (Index("ix_op_grants_family", "family"), Index("ix_op_grants_code", "code_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    code_id: Mapped[int | None] = mapped_column(Integer)
    client_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(Integer)
    scope: Mapped[str] = mapped_column(Text)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[int] = mapped_column(Integer)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    refresh_expires_at: Mapped[int | None] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(Text)
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    auth_time: Mapped[int | None] = mapped_column(Integer)
    issued_at: Mapped[int] = mapped_column(Integer)
    rotated_at: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(Integer)
    # RFC 8707: the resources of the grant (from the authorization request), which a refresh may
    # narrow for one access token but never widen; None: the default audience.
    resources: Mapped[list[str] | None] = mapped_column(JSON)
    # RFC 9449 §6: the thumbprint of the DPoP key the grant's tokens are bound to (the access
    # token says it as cnf.jkt). A public client's refresh token is bound to it too (§5).
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class DPoPProof(Base):
    """A DPoP proof the token or userinfo endpoint accepted, kept until it is too old to be
    accepted anyway (RFC 9449 §11.1: "the server MUST ensure that the jti value is only used
    once"). Recording one is a single ``INSERT``; the primary key makes a replay lose, in every
    process sharing the database."""

    __tablename__ = "op_dpop_proofs"
    __table_args__ = (Index("ix_op_dpop_proofs_expires_at", "expires_at"),)

    # SHA-256 of the proof key's thumbprint and the jti: one key's jti never blocks another's.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer)


class SigningKey(Base):
    __tablename__ = "op_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Integer)
    # Set when a newer key takes over; the key stays published until `retired_at` + the longest
    # token lifetime, so tokens it signed keep verifying.
    retired_at: Mapped[int | None] = mapped_column(Integer)


class Throttle(Base):
    """Failed attempts per account and factor, shared by every process through the database."""

    __tablename__ = "op_throttle"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[int] = mapped_column(Integer)


class Setting(Base):
    """Values every provider process must share, such as the cookie-signing secret."""

    __tablename__ = "op_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CibaRequest(Base):
    """One CIBA authentication request (OpenID Connect CIBA Core 1.0, poll mode).

    Its states and transitions are the table in :mod:`provider.ciba_states`; every write is a
    conditional ``UPDATE … WHERE version = <read>`` (:mod:`provider.ciba_store`).
    """

    __tablename__ = "op_ciba_requests"
    __table_args__ = (Index("ix_op_ciba_requests_user_state", "user_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the auth_req_id the client holds.
    auth_req_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("op_users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    # The acr value the client asked for that names the level the user must reach.
    acr: Mapped[str] = mapped_column(Text)
    binding_message: Mapped[str | None] = mapped_column(Text)
    # RFC 9396 entries, normalised (provider.authorization_details); null: none were asked for.
    authorization_details: Mapped[list[Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    interval: Mapped[int] = mapped_column(Integer)
    last_poll_at: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    # Set by the approval: how the user authenticated on the device.
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    auth_time: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[int | None] = mapped_column(Integer)


class FactorAudit(Base):
    """One verification asked of the factor API (provider.views.factors): who asked (the admin
    client), for whom, which factor, and what came of it. Written for every verification, kept:
    nothing deletes these rows."""

    __tablename__ = "op_factor_audit"
    __table_args__ = (Index("ix_op_factor_audit_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[int] = mapped_column(Integer)
    # The admin client whose client_credentials token made the call.
    client_id: Mapped[str] = mapped_column(String(255))
    # The user as the call named them (a sub or a username); subject is null when none matched.
    user_ref: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(64))
    factor: Mapped[str] = mapped_column(String(32))
    # "success" or "failure"; reason says why (provider.factor_api.Reason).
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    # The id of the challenge's transaction, when the call named a valid one.
    transaction_id: Mapped[str | None] = mapped_column(String(64))
