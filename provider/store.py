"""Storage operations, each one short transaction.

Every single-use thing is consumed by one conditional ``UPDATE … WHERE <still unused>`` whose row
count says who won, never by a read followed by a write: two provider processes racing on the same
authorization code, TOTP step or refresh token cannot both succeed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Integer,
    String,
    Table,
    bindparam,
    case,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .factors.password import hash_password, verify_password
from .models import (
    AuthorizationCode,
    Client,
    DPoPProof,
    Grant,
    Interaction,
    LoginSession,
    Setting,
    Throttle,
    User,
)
from .settings import ClientConfig, UserConfig

__all__ = [
    "PasswordWork",
    "Throttling",
    "digest",
    "new_secret",
    "seed",
    "seed_clients",
    "seed_users",
    "start_seed",
]


def digest(value: str) -> str:
    """SHA-256 hex digest: how session ids, codes, refresh tokens and client secrets are stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def secret_matches(stored_digest: str | None, presented: str) -> bool:
    return stored_digest is not None and hmac.compare_digest(stored_digest, digest(presented))


def _rowcount(result: Any) -> int:
    """The rows a statement changed: of SQLAlchemy's ``CursorResult`` or of
    :class:`provider.direct_sql.DirectResult`."""
    count: int = result.rowcount
    return count


# --- seeding -------------------------------------------------------------------------------------


class PasswordWork:
    """The argon2 work seeding needs — a hash for each new user, a check of each existing user's
    configured password against the stored hash — started at once, each on a thread of its own.

    argon2 releases the GIL, so the work runs on another core while the start goes on building
    the app (``provider.app.create_app`` waits for it before it returns). The check is made at
    every start on purpose: anything that could tell "unchanged" without argon2 is either derived
    from the password and cheap to compute — a digest or an HMAC whose key sits in the same
    database lets whoever holds the database test guesses at that speed instead of argon2's — or
    derived from the file's metadata (size, mtime), which misses an edit that keeps both, and then
    an old password would keep working. See docs/benchmarks.md (start-up).
    """

    def __init__(self, stored: dict[str, str], users: Sequence[UserConfig]) -> None:
        #: Each user's hash as the database had it (absent: a new user).
        self.stored = stored
        self._futures: dict[str, Future[str | None]] = {}
        self._pool: ThreadPoolExecutor | None = None
        if not users:
            return
        self._pool = ThreadPoolExecutor(
            max_workers=min(len(users), os.cpu_count() or 1), thread_name_prefix="argon2"
        )
        for u in users:
            self._futures[u.username] = self._pool.submit(self._new_hash, stored.get(u.username), u)

    @staticmethod
    def _new_hash(stored_hash: str | None, user: UserConfig) -> str | None:
        if stored_hash is not None and verify_password(stored_hash, user.password):
            return None
        return hash_password(user.password)

    def new_hash(self, username: str) -> str | None:
        """The hash to store for ``username`` (waits for it); ``None``: the stored one is right."""
        return self._futures[username].result()

    def join(self) -> None:
        """Wait for the work and for its threads to end: the server forks its workers next, and
        a process should not fork while threads of its own may hold locks."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def start_seed(session: Session, users: Sequence[UserConfig]) -> PasswordWork:
    """Read the seeded users' stored hashes and start the argon2 work :func:`seed` needs."""
    names = [u.username for u in users]
    query = select(User.username, User.password_hash).where(User.username.in_(names))
    stored: dict[str, str] = {row.username: row.password_hash for row in session.execute(query)}
    session.commit()
    return PasswordWork(stored, users)


def seed(
    session: Session,
    users: Sequence[UserConfig],
    clients: Sequence[ClientConfig],
    passwords: PasswordWork | None = None,
) -> None:
    """Make the database hold the users and clients of the config file.

    Clients follow the file exactly. Users are created when missing; an existing user's password
    hash is replaced only when the file's password no longer verifies (argon2 is slow by design,
    so it is not re-hashed at every start), and a TOTP secret enrolled in the flow is kept when the
    file has none. ``passwords``: that argon2 work, started earlier by :func:`start_seed` (else
    it is started here).

    Several processes may seed one database at the same moment: every write is an idempotent
    ``INSERT … ON CONFLICT`` or an ``UPDATE`` to the file's values, so they end with one set of
    rows whoever comes first, and the argon2 work runs before the writes, outside a transaction.
    """
    seed_users(session, users, passwords or start_seed(session, users))
    seed_clients(session, clients)


def seed_users(session: Session, users: Sequence[UserConfig], passwords: PasswordWork) -> None:
    """The users part of :func:`seed`, once ``passwords`` (from :func:`start_seed`) is done."""
    passwords.join()
    insert = _insert_for(session)
    writes: list[Any] = []
    for u in users:
        values: dict[str, Any] = {"name": u.name, "email": u.email}
        new_hash = passwords.new_hash(u.username)
        if u.username not in passwords.stored:
            assert new_hash is not None
            writes.append(
                insert(User)
                .values(
                    subject=_subject_for(u.username),
                    username=u.username,
                    password_hash=new_hash,
                    totp_secret=u.totp_secret,
                    **values,
                )
                .on_conflict_do_nothing(index_elements=[User.username])
            )
        elif new_hash is not None:
            values["password_hash"] = new_hash
        writes.append(update(User).where(User.username == u.username).values(**values))
        if u.totp_secret is not None:
            changed = User.totp_secret.is_(None) | (User.totp_secret != u.totp_secret)
            writes.append(
                update(User)
                .where(User.username == u.username, changed)
                .values(totp_secret=u.totp_secret, totp_last_step=None)
            )
    for statement in writes:
        session.execute(statement)
    session.commit()


def seed_clients(session: Session, clients: Sequence[ClientConfig]) -> None:
    """The clients part of :func:`seed`."""
    insert = _insert_for(session)
    # Clients follow the file exactly: one it no longer lists can no longer log anyone in.
    listed = [c.client_id for c in clients]
    writes: list[Any] = [delete(Client).where(Client.client_id.not_in(listed))]
    for c in clients:
        fields = {
            "secret_hash": digest(c.client_secret) if c.client_secret else None,
            "name": c.name,
            "redirect_uris": list(c.redirect_uris),
            "post_logout_redirect_uris": list(c.post_logout_redirect_uris),
            "grant_types": list(c.grant_types),
            "scope": c.scope,
            "require_pkce": c.require_pkce,
            "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
        }
        writes.append(
            insert(Client)
            .values(client_id=c.client_id, **fields)
            .on_conflict_do_update(index_elements=[Client.client_id], set_=fields)
        )
    for statement in writes:
        session.execute(statement)
    session.commit()


def _insert_for(session: Session) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``): PostgreSQL's or SQLite's, imported
    here: the other one is never needed."""
    return _insert_for_dialect(session.get_bind().dialect.name)


def _insert_for_dialect(name: str) -> Any:
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _subject_for(username: str) -> str:
    # A stable opaque subject, unique per user; random so it reveals nothing about the username.
    return new_secret(16)


def shared_secret(session: Session, name: str) -> str:
    """A random value generated once and shared by every process (e.g. the cookie secret)."""
    row = session.get(Setting, name)
    if row is None:
        row = Setting(name=name, value=new_secret(48))
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another process created it first
            session.rollback()
            row = session.get(Setting, name)
            assert row is not None
    return row.value


# --- TOTP replay ---------------------------------------------------------------------------------


def consume_totp_step(
    session: Session,
    user_id: int,
    step: int,
    *,
    then: Callable[[Session, bool], None] | None = None,
) -> bool:
    """RFC 6238 §5.2: the verifier MUST NOT accept the second attempt of the same OTP after the
    successful validation has been issued for the first OTP. One atomic statement records the step
    and fails if this step (or a later one) was already used.

    ``then(session, spent)`` runs in the same transaction, after that statement and before the
    commit (the factor API writes its audit row there): the step is spent together with what
    ``then`` writes, or, if ``then`` raises, neither is — the transaction is rolled back and the
    exception propagates, the step still unspent."""
    result = session.execute(
        update(User)
        .where(User.id == user_id)
        .where((User.totp_last_step.is_(None)) | (User.totp_last_step < step))
        .values(totp_last_step=step)
    )
    spent = _rowcount(result) == 1
    if then is not None:
        try:
            then(session, spent)
        except BaseException:
            session.rollback()
            raise
    session.commit()
    return spent


def enrol_totp(session: Session, user_id: int, secret: str, step: int) -> bool:
    """Store a confirmed TOTP secret, only if the user has none yet (one atomic statement)."""
    result = session.execute(
        update(User)
        .where(User.id == user_id, User.totp_secret.is_(None))
        .values(totp_secret=secret, totp_last_step=step)
    )
    session.commit()
    return _rowcount(result) == 1


# --- throttling ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttling:
    """Guesses allowed freely, then a lock that doubles with each further failure.

    Count-and-decide is one atomic statement, taken *before* a guess is verified: :meth:`admit`
    counts the attempt as a failure and sets the lock it would earn, in one conditional
    ``INSERT … ON CONFLICT DO UPDATE … WHERE <not locked> RETURNING``, and only an attempt that
    statement admits is verified. A correct guess then clears the record (:meth:`success`). So
    however many guesses arrive at the same moment, in however many processes, at most
    ``free_failures`` are verified before the first lock, and one per lock after that.

    Counting before verifying also means a process that dies mid-verification leaves a failure
    behind, never a free guess. The lock runs from the moment the guess that earned it was
    admitted (a fraction of a second before it is known to be wrong).
    """

    free_failures: int = 5
    first_lock: int = 30
    max_lock: int = 900

    def lock_after(self, failures: int) -> int:
        """Seconds of lock that the ``failures``-th consecutive failure earns (0: none yet)."""
        if failures < self.free_failures:
            return 0
        doubled: int = self.first_lock * 2 ** min(failures - self.free_failures, 32)
        return min(doubled, self.max_lock)

    def _ladder(self) -> list[int]:
        """Each lock from the first until the cap: what a SQL ``CASE`` can pick from."""
        locks: list[int] = []
        n = self.free_failures
        while not locks or locks[-1] < self.max_lock:
            locks.append(self.lock_after(n))
            n += 1
        return locks

    def admit(self, session: Session, key: str, now: int, *, commit: bool = True) -> int:
        """Reserve one guess: 0 when it may be verified (it counts as a failure until
        :meth:`success` clears it), else the seconds until the lock ends.

        ``commit=False``: an admitted guess's transaction is left open, for the caller to read
        what it needs to verify the guess (the user) in it — and to commit it *before* it
        verifies anything, so the guess is counted first. A refused one is committed here."""
        upsert = _admit_statement(session.get_bind().dialect.name, self)
        params = {"key": key, "now": now}
        admitted = session.connection().execute(upsert, params).first() is not None
        if admitted:
            if commit:
                session.commit()
            return 0
        session.commit()
        locked_until = session.scalar(select(Throttle.locked_until).where(Throttle.key == key))
        session.commit()
        # Cleared in between by a success: the caller may simply try again.
        return max(1, (locked_until or now) - now)

    def success(self, session: Session, key: str) -> None:
        self.clear(session, key)
        session.commit()

    def clear(self, session: Session, key: str) -> None:
        """:meth:`success` in the caller's transaction, without committing it: a right one-time
        code clears the record in the transaction that spends its step
        (:func:`provider.login.check_totp`), so a spent step is never reported as an error
        because the clearing after it failed."""
        session.connection().execute(_CLEAR_THROTTLE, {"key": key})


_CLEAR_THROTTLE = delete(Throttle).where(Throttle.key == bindparam("key", type_=String))


@functools.cache
def _admit_statement(dialect: str, throttling: Throttling) -> Any:
    """:meth:`Throttling.admit`'s upsert, built once per dialect and policy, with ``key`` and
    ``now`` as bound parameters: built per call, it cost more than the statement itself."""
    now = bindparam("now", type_=Integer)
    failures = Throttle.failures + 1
    whens: list[tuple[Any, Any]] = [(failures < throttling.free_failures, 0)]
    whens += [
        (failures == throttling.free_failures + i, now + lock)
        for i, lock in enumerate(throttling._ladder())
    ]
    first = throttling.lock_after(1)
    stmt = _insert_for_dialect(dialect)(Throttle).values(
        key=bindparam("key", type_=String), failures=1, locked_until=now + first if first else 0
    )
    return stmt.on_conflict_do_update(
        index_elements=[Throttle.key],
        set_={"failures": failures, "locked_until": case(*whens, else_=now + throttling.max_lock)},
        where=Throttle.locked_until <= now,
    ).returning(Throttle.failures)


# --- login sessions ------------------------------------------------------------------------------


# Built once and run on the session's connection, like the token endpoint's statements below: the
# login path runs them at every step, and the ORM's unit of work cost more than they do. The rows
# come back as transient objects (in no session: changing one writes nothing).
_sessions = cast(Table, LoginSession.__table__)
_SESSION_BY_SID = select(_sessions).where(_sessions.c.sid_hash == bindparam("sid_hash"))
_INSERT_SESSION = insert(_sessions)
_RENEW_SESSION = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("b_id"))
    .values(
        sid_hash=bindparam("sid_hash"),
        factors=bindparam("factors"),
        expires_at=bindparam("expires_at"),
    )
)
_END_SESSION = delete(_sessions).where(_sessions.c.id == bindparam("b_id"))


def load_session(session: Session, sid: str | None, now: int) -> LoginSession | None:
    if not sid:
        return None
    found = session.connection().execute(_SESSION_BY_SID, {"sid_hash": digest(sid)}).first()
    if found is None or found.expires_at <= now:
        return None
    return LoginSession(**found._mapping)


def record_factor(
    session: Session,
    current: LoginSession | None,
    user: User,
    factor: str | Sequence[str],
    now: int,
    lifetime: int,
    *,
    not_before: int = 0,
) -> tuple[str, LoginSession]:
    """Record a verified factor; return a NEW session id (the old one stops working) and the
    session's row: :func:`renewed_session`, then :func:`save_session`, committed."""
    sid, row = renewed_session(current, user, factor, now, lifetime, not_before=not_before)
    save_session(session, current, row)
    session.commit()
    return sid, row


def renewed_session(
    current: LoginSession | None,
    user: User,
    factor: str | Sequence[str],
    now: int,
    lifetime: int,
    *,
    not_before: int = 0,
) -> tuple[str, LoginSession]:
    """The browser's session once a verified factor is recorded in it, and its NEW id (the old
    one stops working), not saved yet (:func:`save_session`): the login pages decide on it
    first, then save it with the interaction's end, in one transaction.

    ``factor`` may be several names verified by one act, recorded with one time: a passkey with
    the ``uv`` and ``hwk`` that say how it was used (``provider.acr``).

    OWASP Session Management: renew the session identifier after any privilege level change,
    which every authentication step is — against session fixation.

    A factor verified again gets a strictly later time, even within the same second: a
    ``prompt=login`` re-authentication must yield a new, larger ``auth_time`` (clients compare
    them to see that the user really authenticated again). ``not_before`` is the start of the
    interaction the factor was verified in: see :func:`interaction_start`.
    """
    sid = new_secret()
    names = (factor,) if isinstance(factor, str) else tuple(factor)
    if current is not None and current.user_id == user.id:
        factors = dict(current.factors)
        previous = max(int(factors.get(name, 0)) for name in names)
        factors.update(dict.fromkeys(names, max(now, previous + 1, not_before)))
        created_at, row_id = current.created_at, current.id
    else:
        factors = dict.fromkeys(names, max(now, not_before))
        created_at, row_id = now, None
    row = LoginSession(
        id=row_id,
        sid_hash=digest(sid),
        user_id=user.id,
        factors=factors,
        created_at=created_at,
        expires_at=now + lifetime,
    )
    return sid, row


def save_session(session: Session, current: LoginSession | None, row: LoginSession) -> None:
    """Write ``row`` (from :func:`renewed_session`) in ``session``'s transaction, without
    committing it: the user's own session renewed in place, else a new one (``row.id`` set) that
    replaces the browser's ``current``, whoever's it was."""
    conn = session.connection()
    if row.id is not None:
        renewal = {"b_id": row.id, "sid_hash": row.sid_hash, "factors": row.factors}
        conn.execute(_RENEW_SESSION, {**renewal, "expires_at": row.expires_at})
        return
    if current is not None:
        conn.execute(_END_SESSION, {"b_id": current.id})
    values = {
        "sid_hash": row.sid_hash,
        "user_id": row.user_id,
        "factors": row.factors,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }
    row.id = conn.execute(_INSERT_SESSION, values).inserted_primary_key[0]


def start_session(
    session: Session,
    current: LoginSession | None,
    user: User,
    factors: dict[str, int],
    now: int,
    lifetime: int,
) -> str:
    """A new session for ``user`` holding exactly ``factors`` (name -> time verified); the
    browser's ``current`` session, whoever's it was, ends. Returns the new session id.

    For the sandbox's personas (provider/sandbox_personas.py): the session the login pages would
    have left after the user verified these factors."""
    sid = new_secret()
    if current is not None:
        session.execute(delete(LoginSession).where(LoginSession.id == current.id))
    session.add(
        LoginSession(
            sid_hash=digest(sid),
            user_id=user.id,
            factors=dict(factors),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.commit()
    return sid


def end_session(session: Session, sid: str | None) -> None:
    if sid:
        session.execute(delete(LoginSession).where(LoginSession.sid_hash == digest(sid)))
        session.commit()


# --- interactions --------------------------------------------------------------------------------


def interaction_start(current: LoginSession | None, now: int) -> int:
    """When an interaction starts: now, but strictly after every factor the session holds.

    The policy counts a factor verified at or after the start as verified *in this interaction*
    (how ``prompt=login`` and ``max_age`` are met). A login in the same second as the next
    authorization request must not count as that re-authentication, so the start is moved past
    it, and :func:`record_factor` stamps factors verified during the interaction no earlier than
    its start. The price: in that same-second case ``auth_time`` may lead the clock by a second.
    """
    if current is None:
        return now
    return max([now, *(int(t) + 1 for t in current.factors.values())])


def start_interaction(
    session: Session, *, browser_id: str, client_id: str, params: dict[str, Any], now: int
) -> str:
    interaction_id = new_secret(24)
    session.add(
        Interaction(
            id=interaction_id,
            browser_id=browser_id,
            client_id=client_id,
            params=params,
            started_at=now,
            expires_at=now + 30 * 60,
        )
    )
    session.commit()
    return interaction_id


def find_interaction(
    session: Session, interaction_id: str, browser_id: str | None, now: int
) -> Interaction | None:
    """The browser's interaction, unexpired; a transient object (see :data:`_SESSION_BY_SID`)."""
    if browser_id is None:
        return None
    row = session.connection().execute(_INTERACTION_BY_ID, {"id": interaction_id}).first()
    if row is None or row.expires_at <= now:
        return None
    if not hmac.compare_digest(row.browser_id, browser_id):
        return None
    return Interaction(**row._mapping)


_interactions = cast(Table, Interaction.__table__)
_INTERACTION_BY_ID = select(_interactions).where(_interactions.c.id == bindparam("id"))


def finish_interaction(session: Session, interaction_id: str, *, commit: bool = True) -> bool:
    """Delete the interaction; False when another request finished it first (double submit).
    ``commit=False``: in the caller's transaction, which it commits."""
    result = session.connection().execute(_FINISH_INTERACTION, {"id": interaction_id})
    if commit:
        session.commit()
    return _rowcount(result) == 1


_FINISH_INTERACTION = delete(Interaction).where(Interaction.id == bindparam("id", type_=String))


# --- codes and refresh tokens at the token endpoint ----------------------------------------------
#
# The token endpoint's statements are built once, here, and executed on a plain connection: this is
# the hot path (docs/benchmarks.md), and a statement built per call costs more than it runs.
# An exchange reads its code or refresh token (with the user, in one query), signs, then in ONE
# short transaction consumes what it presented and records what it issued (:func:`record_issue`):
#
# - RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once. If an
#   authorization code is used more than once, the authorization server MUST deny the request
#   and SHOULD revoke (when possible) all tokens previously issued based on that authorization
#   code."
# - RFC 9700 §4.14.2: if a refresh token is compromised and subsequently used by both the attacker
#   and the legitimate client, one of them will present an invalidated refresh token, which will
#   inform the authorization server of the breach.
#
# The conditional UPDATE's row count says who won. The loser revokes what the winner issued: its
# UPDATE waited for the winner's transaction (the row lock in PostgreSQL, the write lock in SQLite),
# and its revocation is a later statement, which sees the winner's committed grant. So no exchange
# can record a grant that a reuse's revocation misses.

_codes = cast(Table, AuthorizationCode.__table__)
_grants = cast(Table, Grant.__table__)
_users = cast(Table, User.__table__)
_user_columns = (_users.c.subject, _users.c.username, _users.c.name, _users.c.email)

CODE_WITH_USER = (
    select(_codes, *_user_columns)
    .join_from(_codes, _users, _codes.c.user_id == _users.c.id)
    .where(_codes.c.code_hash == bindparam("code_hash"))
)
REFRESH_WITH_USER = (
    select(_grants, *_user_columns)
    .join_from(_grants, _users, _grants.c.user_id == _users.c.id)
    .where(_grants.c.refresh_hash == bindparam("refresh_hash"))
)
_CONSUME_CODE = (
    update(_codes)
    .where(
        _codes.c.id == bindparam("code_id"),
        _codes.c.consumed_at.is_(None),
        _codes.c.expires_at > bindparam("now"),
    )
    .values(consumed_at=bindparam("now"))
)
_MARK_CODE_REUSED = (
    update(_codes)
    .where(_codes.c.id == bindparam("code_id"), _codes.c.consumed_at.is_not(None))
    .values(reused_at=bindparam("now"))
)
_ROTATE = (
    update(_grants)
    .where(
        _grants.c.id == bindparam("grant_id"),
        _grants.c.rotated_at.is_(None),
        _grants.c.revoked_at.is_(None),
        _grants.c.refresh_expires_at > bindparam("now"),
    )
    .values(rotated_at=bindparam("now"))
)
_ROTATED_AT = select(_grants.c.rotated_at, _grants.c.family).where(
    _grants.c.id == bindparam("grant_id")
)
_RECORD_GRANT = insert(_grants)
_REVOKE_CODE_GRANTS = (
    update(_grants)
    .where(_grants.c.code_id == bindparam("b_code_id"), _grants.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
_REVOKE_FAMILY = (
    update(_grants)
    .where(_grants.c.family == bindparam("b_family"), _grants.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)


def code_reused(conn: Connection, code_id: int, now: int) -> bool:
    """A code presented after its first use: mark it and revoke what it issued (RFC 6749
    §4.1.2). False when the code was not used, only expired."""
    reused = _rowcount(conn.execute(_MARK_CODE_REUSED, {"code_id": code_id, "now": now})) == 1
    if reused:
        _revoke_until_none_left(conn, _REVOKE_CODE_GRANTS, {"b_code_id": code_id, "now": now})
    conn.commit()
    return reused


def refresh_reused(conn: Connection, grant_id: int, now: int) -> bool:
    """A refresh token presented after its rotation: revoke its family (RFC 9700 §4.14.2).
    False when it was not rotated, only revoked or expired."""
    row = conn.execute(_ROTATED_AT, {"grant_id": grant_id}).first()
    reused = row is not None and row.rotated_at is not None
    if reused:
        family = row.family  # type: ignore[union-attr]
        _revoke_until_none_left(conn, _REVOKE_FAMILY, {"b_family": family, "now": now})
    conn.commit()
    return reused


def _revoke_until_none_left(conn: Connection, statement: Any, params: dict[str, Any]) -> int:
    """Revoke a family's (or a code's) grants, pass after pass, until a pass finds none left.

    Why not one ``UPDATE``: on PostgreSQL (READ COMMITTED) a statement sees the grants committed
    before it started. A rotation in the same family that is under way at that moment holds the
    grant it rotates and commits a new one the statement cannot see: the statement waits for the
    rotated grant, revokes it — so it reports work done — and the new grant, from the next
    rotation, would stay valid (issue 16: the refresh-token race). The next pass sees it. A pass
    that revokes nothing saw no grant left and none being rotated, and no grant can be rotated
    any more: rotation needs one that is not revoked. On SQLite, with one writer at a time, the
    second pass is always empty.
    """
    total = 0
    while revoked := _rowcount(conn.execute(statement, params)):
        total += revoked
        conn.commit()
    return total


def record_issue(
    conn: Connection,
    grant: dict[str, Any],
    now: int,
    *,
    code_id: int | None = None,
    rotated_from: int | None = None,
    consume: Callable[[Connection], bool] | None = None,
) -> bool:
    """In one transaction: consume the code (``code_id``), rotate the refresh token
    (``rotated_from``) or spend what ``consume`` spends (a CIBA approval: provider.ciba_store),
    and record the grant issued for it. False, with nothing recorded, when another request
    consumed, rotated or spent it first."""
    if consume is not None:
        won = consume(conn)
    elif rotated_from is not None:
        won = _rowcount(conn.execute(_ROTATE, {"grant_id": rotated_from, "now": now})) == 1
    elif code_id is not None:
        won = _rowcount(conn.execute(_CONSUME_CODE, {"code_id": code_id, "now": now})) == 1
    else:
        won = True
    if not won:
        conn.rollback()
        return False
    conn.execute(_RECORD_GRANT, grant)
    conn.commit()
    return True


# --- grants (access and refresh tokens) ----------------------------------------------------------


def revoke_grants(session: Session, now: int, *where: Any) -> int:
    """Revoke the grants ``where`` selects, until none is left (see
    :func:`_revoke_until_none_left`: a family being rotated meanwhile grows)."""
    statement = update(Grant).where(*where, Grant.revoked_at.is_(None)).values(revoked_at=now)
    total = 0
    while revoked := _rowcount(session.execute(statement)):
        total += revoked
        session.commit()
    session.commit()
    return total


def record_revoked(session: Session, grant: Grant, now: int) -> None:
    """Revoke a self-contained access token that has no row yet: store its grant, revoked.

    Two revocations at once: the second insert fails on the unique ``jti`` and the row the
    first one stored is revoked already.
    """
    grant.revoked_at = now
    session.add(grant)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()


# --- DPoP proofs (RFC 9449 §11.1) ----------------------------------------------------------------


def remember_proof(conn: Connection, key: str, expires_at: int, now: int) -> bool:
    """Record an accepted DPoP proof; False when it was recorded before and has not expired: a
    replay. One ``INSERT … ON CONFLICT DO UPDATE … WHERE <the old one expired>``: of two requests
    racing with one proof, in any processes, exactly one inserts; the other changes no row."""
    insert = _insert_for_dialect(conn.dialect.name)
    statement = (
        insert(DPoPProof)
        .values(key=key, expires_at=expires_at)
        .on_conflict_do_update(
            index_elements=[DPoPProof.key],
            set_={"expires_at": expires_at},
            where=DPoPProof.expires_at < now,
        )
        .returning(DPoPProof.key)  # the row count of an upsert is not reliable on every driver
    )
    won = conn.execute(statement).first() is not None
    conn.commit()
    return won


def forget_expired_proofs(conn: Connection, now: int) -> int:
    """Delete the proofs that are too old to be accepted again anyway."""
    deleted = _rowcount(conn.execute(delete(DPoPProof).where(DPoPProof.expires_at < now)))
    conn.commit()
    return deleted
