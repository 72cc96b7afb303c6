"""Codes and tokens: what the grants store, look up, mint and revoke.

The Authlib grants in :mod:`.oauth` call into one :class:`Issuance`, which owns the database, the
signer and the clock, so the grants stay declarative and every token is minted in one place.

What is written per token, and why (docs/benchmarks.md measures it):

- A ``client_credentials`` response is one self-contained RFC 9068 access token and nothing else:
  nothing is written. Introspection verifies its signature and looks its ``jti`` up among the
  grants; revoking it records a revoked grant row for that ``jti`` (:meth:`Issuance.revoke`), which
  introspection then finds. No row, valid signature, not expired: active.
- A user's tokens are recorded as a :class:`~provider.models.Grant`: the refresh token lives
  there, and so does what a reused code or refresh token must revoke.
- Registered clients come from the config file and are seeded at start, so they are read once,
  here, not per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from . import factor_api, store
from .clients import ClientAdapter
from .clock import Clock
from .db import Database
from .models import AuthorizationCode, Client, Grant, User
from .oauth import AuthenticatedUser, GrantRecord, InvalidGrantError
from .resource_indicators import Resources
from .sandbox_clients import sandbox_client
from .settings import ProviderSettings
from .tokens import AuthContext, TokenSigner

_INSERT_CODE = insert(AuthorizationCode)

__all__ = ["Issuance", "TokenUser", "user_claims", "user_of"]


@dataclass(frozen=True, slots=True)
class TokenUser:
    """The user a code, grant or CIBA request was issued to, read with its row: what the tokens
    say about them (``sub`` and the OIDC Core §5.4 claims). Not an ORM object, which would cost the
    token endpoint more to build than the query costs to run."""

    id: int
    subject: str
    username: str
    name: str | None
    email: str | None


def user_claims(user: User | TokenUser, scope: str) -> dict[str, Any]:
    """OIDC Core §5.4: the claims each standard scope asks for."""
    scopes = scope.split()
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        if user.name:
            claims["name"] = user.name
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = False
    return claims


class Issuance:
    def __init__(
        self, db: Database, signer: TokenSigner, settings: ProviderSettings, clock: Clock
    ) -> None:
        self.db = db
        self.signer = signer
        self.settings = settings
        self.clock = clock
        # RFC 8707: the [api] audience (the default), the [provider] resources and the factor
        # API (provider.factor_api), which only an admin client's token may call.
        self.resources = Resources.of(
            signer.audience, (*settings.resources, factor_api.resource_for(signer.issuer))
        )
        # Seeded from the config before this is built; every process seeds the same file.
        with db.session() as s:
            self.clients = {c.client_id: ClientAdapter(c) for c in s.scalars(select(Client))}

    # --- clients and users -------------------------------------------------------------------

    def query_client(self, client_id: str | None) -> ClientAdapter | None:
        if not client_id:
            return None
        client = self.clients.get(client_id)
        if client is None and self.settings.loopback_clients:
            return sandbox_client(client_id)  # any loopback client (provider/sandbox_clients.py)
        return client

    def user_by_id(self, user_id: int | None) -> User | None:
        if user_id is None:
            return None
        with self.db.session() as s:
            return s.get(User, user_id)

    # --- authorization codes -----------------------------------------------------------------

    def save_code(
        self,
        code: str,
        client: ClientAdapter,
        redirect_uri: str,
        scope: str,
        nonce: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        granted: AuthenticatedUser,
        resources: Sequence[str] = (),
        *,
        dpop_jkt: str | None = None,
        authorization_details: list[dict[str, Any]] | None = None,
    ) -> None:
        now = self.clock.now()
        row = {
            "code_hash": store.digest(code),
            "client_id": client.client_id,
            "user_id": granted.user.id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "nonce": nonce,
            "code_challenge": code_challenge or "",
            "code_challenge_method": code_challenge_method or "",
            "acr": granted.context.acr,
            "amr": list(granted.context.amr),
            "auth_time": granted.context.auth_time,
            "session_id": granted.session_id,
            "expires_at": now + self.settings.authorization_code_lifetime,
            "resources": list(resources) or None,
            "dpop_jkt": dpop_jkt,
            "authorization_details": authorization_details,
        }
        # A plain INSERT: the ORM's unit of work costs more than the statement, on the path
        # that ends every login (docs/benchmarks.md, "A password login").
        with self.db.engine.begin() as conn:
            conn.execute(_INSERT_CODE, row)

    def find_code(self, code: str, client_id: str) -> CodeRecord | None:
        """An unused, unexpired code of this client, with its user; not consumed yet — that is
        :meth:`issue`'s transaction. A code presented again after its use revokes what it
        issued (RFC 6749 §4.1.2)."""
        now = self.clock.now()
        with self.db.direct.connect() as conn:
            row = conn.execute(store.CODE_WITH_USER, {"code_hash": store.digest(code)}).first()
            if row is None:
                return None
            if row.consumed_at is not None:
                store.code_reused(conn, row.id, now)
                return None
        if row.client_id != client_id or row.expires_at <= now:
            return None
        return CodeRecord(row)

    # --- tokens ------------------------------------------------------------------------------

    def issue(
        self,
        *,
        client: ClientAdapter,
        user: User | TokenUser | None,
        scope: str,
        context: AuthContext | None,
        nonce: str | None,
        family: str | None,
        code_id: int | None,
        grant_scope: str | None = None,
        rotated_from: int | None = None,
        audience: Sequence[str] = (),
        grant_resources: Sequence[str] | None = None,
        dpop_jkt: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        consume: Callable[[Connection], bool] | None = None,
    ) -> dict[str, Any]:
        """Mint the token response and record the grant, in one place for every grant type.

        ``scope`` is the access token's; ``grant_scope`` (default: the same) is what the grant
        and its refresh token keep, wider when a refresh asked for less. ``rotated_from`` is the
        grant whose refresh token this response replaces. ``audience`` is the access token's
        ``aud`` (RFC 8707; empty: the default audience); ``grant_resources`` what the grant keeps
        for its refreshes (``None``: no resource was named).
        ``dpop_jkt``: the DPoP key the access token is bound to (RFC 9449 §6: ``cnf.jkt``,
        ``token_type`` ``DPoP``); the grant keeps it, which binds a public client's refresh token
        (§5, :mod:`provider.dpop`).

        ``extra_claims`` go into the access token (RFC 9396 §9.1 ``authorization_details``) and
        the token response (§7). ``consume`` spends what the tokens are issued for in the
        transaction that records them (a CIBA approval: :func:`provider.ciba_store.consume`);
        when it spends nothing, another request did, and this one is ``invalid_grant``.
        """
        now = self.clock.now()
        s = self.settings
        grant_scope = grant_scope or scope
        jti = store.new_secret(16)
        subject = user.subject if user else client.client_id
        access_token = self.signer.access_token(
            subject=subject,
            client_id=client.client_id,
            scope=scope,
            jti=jti,
            now=now,
            lifetime=s.access_token_lifetime,
            context=context,
            audience=audience,
            dpop_jkt=dpop_jkt,
            extra_claims=extra_claims,
        )
        token: dict[str, Any] = {
            "access_token": access_token,
            # RFC 9449 §5: "token_type ... DPoP" for a DPoP-bound access token.
            "token_type": "DPoP" if dpop_jkt else "Bearer",
            "expires_in": s.access_token_lifetime,
            "scope": scope,
            **(extra_claims or {}),
        }
        scopes = scope.split()
        refresh_token = None
        # OIDC Core §11: a refresh token for offline_access; registered clients need no consent.
        if (
            user is not None
            and "offline_access" in grant_scope.split()
            and client.check_grant_type("refresh_token")
        ):
            refresh_token = store.new_secret()
            token["refresh_token"] = refresh_token
        if user is not None and context is not None and "openid" in scopes:
            token["id_token"] = self.signer.id_token(
                subject=user.subject,
                client_id=client.client_id,
                now=now,
                lifetime=s.id_token_lifetime,
                context=context,
                nonce=nonce,
                access_token=access_token,
                user_claims=user_claims(user, scope),
            )
        if user is None:
            return token  # self-contained: see the module docstring
        grant = {
            "family": family or store.new_secret(16),
            "code_id": code_id,
            "client_id": client.client_id,
            "user_id": user.id,
            "scope": grant_scope,
            "jti": jti,
            "access_expires_at": now + s.access_token_lifetime,
            "refresh_hash": store.digest(refresh_token) if refresh_token else None,
            "refresh_expires_at": now + s.refresh_token_lifetime if refresh_token else None,
            "acr": context.acr if context else None,
            "amr": list(context.amr) if context else None,
            "auth_time": context.auth_time if context else None,
            "issued_at": now,
            "rotated_at": None,
            "revoked_at": None,
            "resources": list(grant_resources) if grant_resources else None,
            "dpop_jkt": dpop_jkt,
        }
        # The code is consumed (or the refresh token rotated) by the transaction that records
        # what was issued for it: see provider/store.py.
        consumed = None if rotated_from is not None else code_id
        # A code or refresh token: the statements run directly on SQLite (provider/direct_sql.py);
        # a CIBA approval's are the CIBA store's, through SQLAlchemy.
        connect = self.db.engine.connect if consume is not None else self.db.direct.connect
        with connect() as conn:
            with self.db.writing():
                won = store.record_issue(
                    conn, grant, now, code_id=consumed, rotated_from=rotated_from, consume=consume
                )
            if won:
                return token
            if consume is not None:
                raise InvalidGrantError("The auth_req_id was used already.")
            if rotated_from is not None:
                if store.refresh_reused(conn, rotated_from, now):
                    raise InvalidGrantError(
                        "The refresh token was used twice; its grant is revoked."
                    )
                raise InvalidGrantError("The refresh token is no longer valid.")
            if code_id is not None and store.code_reused(conn, code_id, now):
                raise InvalidGrantError(
                    "The authorization code was used twice; its tokens are revoked."
                )
            raise InvalidGrantError("The authorization code is no longer valid.")

    def find_refresh_token(self, refresh_token: str, client_id: str) -> GrantRecord | None:
        """A usable refresh token of this client, with its user; not rotated yet — that is
        :meth:`issue`'s transaction. One presented again after its rotation revokes its family
        (RFC 9700 §4.14.2)."""
        now = self.clock.now()
        with self.db.direct.connect() as conn:
            row = conn.execute(
                store.REFRESH_WITH_USER, {"refresh_hash": store.digest(refresh_token)}
            ).first()
            if row is None or row.client_id != client_id:
                return None
            if row.rotated_at is not None:
                store.refresh_reused(conn, row.id, now)
                return None
        if row.revoked_at is not None or (row.refresh_expires_at or 0) <= now:
            return None
        return GrantRecord(row, now, user=user_of(row))

    def find_token(self, token: str, hint: str | None) -> GrantRecord | None:
        """A JWT access token (by its ``jti``) or a refresh token (by its digest).

        RFC 7009 §2.1 (and RFC 7662 §2.1): "If the server is unable to locate the token using
        the given hint, it MUST extend its search across all of its supported token types." The
        hint only decides which kind is looked for first.
        """
        now = self.clock.now()
        with self.db.session() as s:

            def access() -> GrantRecord | None:
                claims = self.signer.verify_access_token(token, now=now, expired_ok=True)
                if claims is None:
                    return None
                row = _access_token_grant(s, claims)
                return GrantRecord(row, now, claims) if row else None

            def refresh() -> GrantRecord | None:
                row = s.scalar(select(Grant).where(Grant.refresh_hash == store.digest(token)))
                return GrantRecord(row, now) if row else None

            order = (refresh, access) if hint == "refresh_token" else (access, refresh)
            return order[0]() or order[1]()

    def introspection_payload(self, token: GrantRecord) -> dict[str, Any]:
        row = token.row
        payload: dict[str, Any] = {
            "active": True,
            "client_id": row.client_id,
            "scope": row.scope,
            "iss": self.signer.issuer,
        }
        if token.claims is not None:
            c = token.claims
            payload.update(
                # The access token's own scope: narrower than the grant's after a refresh.
                scope=c.get("scope", ""),
                # RFC 9449 §6.2: a bound token's introspection says how: token_type and cnf.
                token_type="DPoP" if "cnf" in c else "Bearer",
                sub=c["sub"],
                aud=c["aud"],
                iat=c["iat"],
                exp=c["exp"],
                jti=c["jti"],
            )
            if isinstance(c.get("cnf"), dict):
                payload["cnf"] = c["cnf"]
            if "authorization_details" in c:  # RFC 9396 §9.2
                payload["authorization_details"] = c["authorization_details"]
        else:
            payload.update(token_type="refresh_token", exp=row.refresh_expires_at)
        if row.acr is not None:
            payload.update(acr=row.acr, amr=list(row.amr or ()), auth_time=row.auth_time)
        user = self.user_by_id(row.user_id)
        if user is not None:
            payload["username"] = user.username
            payload.setdefault("sub", user.subject)
        return payload

    def revoke(self, token: GrantRecord) -> None:
        now = self.clock.now()
        with self.db.session() as s:
            if token.row.id is None:
                store.record_revoked(s, token.row, now)
            elif token.claims is not None:
                store.revoke_grants(s, now, Grant.id == token.row.id)
            else:
                store.revoke_grants(s, now, Grant.family == token.row.family)

    def grant_is_active(self, claims: dict[str, Any]) -> bool:
        """Whether the grant of a verified access token still stands (not revoked)."""
        with self.db.session() as s:
            row = _access_token_grant(s, claims)
            return row is not None and row.revoked_at is None


def _access_token_grant(s: Any, claims: dict[str, Any]) -> Grant | None:
    """The grant of a verified access token: its row, or for a ``client_credentials`` token
    without one, the grant the token itself describes."""
    row: Grant | None = s.scalar(select(Grant).where(Grant.jti == claims.get("jti")))
    return row if row is not None else _self_contained(claims)


def _self_contained(claims: dict[str, Any]) -> Grant | None:
    """The grant a ``client_credentials`` access token stands for, read from the token itself
    (nothing was stored when it was minted): not yet saved, so ``id`` is ``None``. A user's
    token (it has ``auth_time``) always has a row; without one it stands for nothing."""
    jti, client_id, scope = claims.get("jti"), claims.get("client_id"), claims.get("scope", "")
    if not (isinstance(jti, str) and isinstance(client_id, str) and isinstance(scope, str)):
        return None
    if "auth_time" in claims or claims.get("sub") != client_id:
        return None
    return Grant(
        family=jti,
        client_id=client_id,
        user_id=None,
        scope=scope,
        jti=jti,
        access_expires_at=claims.get("exp"),
        issued_at=claims.get("iat"),
        revoked_at=None,
        rotated_at=None,
        acr=None,
        amr=None,
        auth_time=None,
        refresh_hash=None,
        refresh_expires_at=None,
        code_id=None,
        resources=None,
    )


def user_of(row: Any) -> TokenUser:
    """The user of a code, grant or CIBA request row read with its user's columns."""
    return TokenUser(row.user_id, row.subject, row.username, row.name, row.email)


class CodeRecord:
    """An authorization code, with its user, as Authlib's grant reads it."""

    def __init__(self, row: Any) -> None:
        self.row = row
        self.user = user_of(row)
        self.id = row.id
        self.user_id = row.user_id
        self.acr = row.acr
        self.amr = row.amr
        self.auth_time = row.auth_time
        self.nonce = row.nonce
        self.code_challenge = row.code_challenge or None
        self.code_challenge_method = row.code_challenge_method or None
        self.resources: list[str] | None = row.resources or None
        #: RFC 9396: what the user approved with this code; ``None``: nothing.
        self.authorization_details: list[dict[str, Any]] | None = row.authorization_details

    def get_redirect_uri(self) -> str:
        return str(self.row.redirect_uri)

    def get_scope(self) -> str:
        return str(self.row.scope)
