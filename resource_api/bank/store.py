"""The demo bank's storage: its own SQLAlchemy ``MetaData``, tables prefixed ``bank_``.

The tables live in the same database as the provider's; their schema is migrated by the revisions
in :mod:`resource_api.bank.migrations` (``bank_alembic_version`` records how far). Money is
integer cents. A transfer is one transaction whose debit is a single conditional ``UPDATE``
(``... WHERE balance_cents >= :amount``), so two concurrent transfers can never overdraw an account,
whichever process serves them (DESIGN.md, "Persistence and scale"). A transfer paid by a
transaction approval (RFC 9396, docs/transactional.md) first inserts that approval into
``bank_approvals_used``, in the same transaction: the primary key lets one transfer spend it, and a
transfer that fails (no money, no account) leaves it unspent.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from provider.db import (
    DatabaseUnavailable,
    create_engine_or_explain,
    display_url,
    normalise_url,
    sqlite_path,
)

from ..errors import ResourceApiError

__all__ = ["ApprovalUsed", "BankError", "BankStore", "approval_key", "metadata"]

metadata = MetaData()

customers = Table(
    "bank_customers",
    metadata,
    Column("sub", String(255), primary_key=True),
    Column("email", String(254), nullable=True),
    Column("created_at", Float, nullable=False),
)

accounts = Table(
    "bank_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sub", String(255), ForeignKey("bank_customers.sub"), nullable=False, index=True),
    Column("name", String(60), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_cents", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

transfers = Table(
    "bank_transfers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sub", String(255), nullable=False),
    Column("from_account", String(40), ForeignKey("bank_accounts.id"), nullable=False),
    Column("to_account", String(40), ForeignKey("bank_accounts.id"), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("description", String(140), nullable=False),
    # Which authentication authorised it: the point of step-up, kept for the audit trail.
    Column("acr", String(255), nullable=True),
    Column("auth_time", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

transactions = Table(
    "bank_transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("bank_accounts.id"), nullable=False, index=True),
    Column("transfer_id", String(40), ForeignKey("bank_transfers.id"), nullable=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("description", String(140), nullable=False),
    Column("created_at", Float, nullable=False),
)

approvals_used = Table(
    "bank_approvals_used",
    metadata,
    # sha256 of the token's issuer and jti: one approval, however long those are.
    Column("approval", String(64), primary_key=True),
    Column("sub", String(255), nullable=False),
    Column("transfer_id", String(40), nullable=False),
    Column("created_at", Float, nullable=False),
)

#: What a new customer gets: (name, opening balance in cents).
DEMO_ACCOUNTS: tuple[tuple[str, int], ...] = (("Checking", 250_000), ("Savings", 1_000_000))
CURRENCY = "EUR"


class BankError(ResourceApiError):
    """A request the bank refuses; rendered as JSON with ``error`` and ``status_code``."""

    def __init__(self, status_code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.error = error
        self.description = description


class ApprovalUsed(ResourceApiError):
    """The transaction approval that would pay this transfer has paid another already."""


def approval_key(issuer: str, jti: str) -> str:
    """The ``bank_approvals_used`` key of the approval carried by the token ``issuer`` + ``jti``."""
    return hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()


@dataclass(frozen=True)
class Transfer:
    id: str
    from_account: str
    to_account: str
    amount_cents: int
    description: str
    created_at: float


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite gets WAL and a busy timeout, in-memory one pool.

    As for the provider (:mod:`provider.db`): ``postgresql://`` means psycopg 3, an SQLite file's
    folder is created, and a missing driver is said in one line (:class:`DatabaseUnavailable`).
    """
    database_url = normalise_url(database_url)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        memory = path is None
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if path is None:
            kwargs["poolclass"] = StaticPool
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create the folder of {display_url(url)}: {exc.strerror}"
                ) from exc
        engine = create_engine_or_explain(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine_or_explain(url, pool_pre_ping=True)


class BankStore:
    """Customers, accounts and transfers. Methods take the caller's ``sub``; an account of another
    customer is reported as not found, so ids cannot be probed."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.clock = clock
        self._known: set[str] = set()

    def open_customer(self, sub: str) -> None:
        """Open demo accounts for a subject seen for the first time (DESIGN.md contract 5)."""
        if sub in self._known:
            return
        with self.engine.connect() as conn:
            exists = conn.execute(select(customers.c.sub).where(customers.c.sub == sub)).first()
        if exists is None:
            now = self.clock()
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(customers).values(sub=sub, email=None, created_at=now))
                    for name, cents in DEMO_ACCOUNTS:
                        account_id = "acc_" + secrets.token_hex(8)
                        conn.execute(insert(accounts).values(
                            id=account_id, sub=sub, name=name, currency=CURRENCY,
                            balance_cents=cents, created_at=now,
                        ))  # fmt: skip
                        conn.execute(insert(transactions).values(
                            account_id=account_id, transfer_id=None, amount_cents=cents,
                            description="Opening balance", created_at=now,
                        ))  # fmt: skip
            except IntegrityError:
                pass  # another request opened them first; theirs stand
        self._known.add(sub)

    def accounts(self, sub: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(accounts).where(accounts.c.sub == sub).order_by(accounts.c.created_at,
                                                                        accounts.c.name)
            ).mappings()  # fmt: skip
            return [dict(r) for r in rows]

    def transactions(self, sub: str, account_id: str, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            owner = conn.execute(
                select(accounts.c.sub).where(accounts.c.id == account_id)
            ).scalar_one_or_none()
            if owner != sub:
                raise BankError(404, "account_not_found", f"you have no account {account_id}")
            rows = conn.execute(
                select(transactions)
                .where(transactions.c.account_id == account_id)
                .order_by(transactions.c.id.desc())
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def transfer(
        self,
        sub: str,
        from_account: str,
        to_account: str,
        amount_cents: int,
        description: str,
        *,
        acr: str | None,
        auth_time: float | None,
        approval: str | None = None,
    ) -> Transfer:
        """Move the money. ``approval``: the :func:`approval_key` of the transaction approval
        that pays for it, spent by this transfer (:class:`ApprovalUsed` if it was already)."""
        if from_account == to_account:
            raise BankError(400, "invalid_body", "from_account and to_account must differ")
        now = self.clock()
        transfer_id = "tr_" + secrets.token_hex(8)
        with self.engine.begin() as conn:
            if approval is not None:
                # First, so that a second use waits for the first's transaction (PostgreSQL's
                # unique index; SQLite's one writer) and then fails here, before any debit.
                try:
                    conn.execute(insert(approvals_used).values(
                        approval=approval, sub=sub, transfer_id=transfer_id, created_at=now,
                    ))  # fmt: skip
                except IntegrityError:
                    raise ApprovalUsed("this approval has paid a transfer already") from None
            # One conditional UPDATE: the balance check and the debit cannot be torn apart.
            debited = conn.execute(
                update(accounts)
                .where(accounts.c.id == from_account, accounts.c.sub == sub,
                       accounts.c.balance_cents >= amount_cents)
                .values(balance_cents=accounts.c.balance_cents - amount_cents)
            ).rowcount  # fmt: skip
            if debited != 1:
                owner = conn.execute(
                    select(accounts.c.sub).where(accounts.c.id == from_account)
                ).scalar_one_or_none()
                if owner != sub:
                    raise BankError(404, "account_not_found", f"you have no account {from_account}")
                raise BankError(409, "insufficient_funds", f"{from_account} has not enough money")
            credited = conn.execute(
                update(accounts)
                .where(accounts.c.id == to_account)
                .values(balance_cents=accounts.c.balance_cents + amount_cents)
            ).rowcount
            if credited != 1:
                raise BankError(404, "account_not_found", f"there is no account {to_account}")
            conn.execute(insert(transfers).values(
                id=transfer_id, sub=sub, from_account=from_account, to_account=to_account,
                amount_cents=amount_cents, description=description, acr=acr,
                auth_time=auth_time, created_at=now,
            ))  # fmt: skip
            conn.execute(insert(transactions), [
                {"account_id": from_account, "transfer_id": transfer_id,
                 "amount_cents": -amount_cents, "description": description, "created_at": now},
                {"account_id": to_account, "transfer_id": transfer_id,
                 "amount_cents": amount_cents, "description": description, "created_at": now},
            ])  # fmt: skip
        return Transfer(transfer_id, from_account, to_account, amount_cents, description, now)

    def profile(self, sub: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(customers).where(customers.c.sub == sub)).mappings().first()
        return dict(row) if row is not None else {"sub": sub, "email": None}

    def set_email(self, sub: str, email: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(customers).where(customers.c.sub == sub).values(email=email))
