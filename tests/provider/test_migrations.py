"""Schema migrations (Alembic): they build exactly the models' schema, run once, say what they
did, adopt a database made before migrations, and refuse what they cannot handle with a message.
On SQLite and PostgreSQL. (Several processes starting at once: ``tests/e2e/test_concurrent_
startup.py``.)"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, inspect, text
from sqlalchemy.engine import Connection

from provider import create_app, schema
from provider.db import display_url, normalise_url
from provider.migrations import PROVIDER
from provider.migrations.versions.op_0001_baseline import metadata as provider_0_1_0
from provider.models import Base
from provider.schema import Migrations, SchemaError, Upgrade, head_revision, upgrade
from resource_api.bank.migrations import BANK
from resource_api.bank.store import metadata as bank_metadata
from stepup.cli import main
from stepup.config import StepupConfig

HEAD = head_revision(PROVIDER)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    e = create_engine(normalise_url(database_url))
    yield e
    e.dispose()


def _only(prefix: str, version_table: str) -> object:
    def include(name: str | None, type_: str, _parent: object) -> bool:
        return type_ != "table" or ((name or "").startswith(prefix) and name != version_table)

    return include


@pytest.mark.parametrize(
    ("migrations", "metadata", "prefix"),
    [(PROVIDER, Base.metadata, "op_"), (BANK, bank_metadata, "bank_")],
    ids=["provider", "bank"],
)
def test_migrations_build_exactly_the_models_schema(
    engine: Engine, migrations: Migrations, metadata: MetaData, prefix: str
) -> None:
    """The guard for whoever changes a model: without a revision that makes the same change,
    this test lists the difference. (Every revision replayed, as on a database that an older
    build made: a new database is created from the models, see below.)"""
    done = upgrade(engine, replace(migrations, models=None))
    assert (done.before, done.after, done.adopted) == (None, head_revision(migrations), False)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": _only(prefix, migrations.version_table)}
        )
        assert compare_metadata(context, metadata) == []


def _reflected(conn: Connection, prefix: str) -> dict[str, object]:
    """Everything the database says about the component's tables (its version table included),
    compared by name: the order of columns is not part of the schema (a column a revision adds
    comes last)."""
    inspector = inspect(conn)
    tables: dict[str, object] = {}
    for name in sorted(n for n in inspector.get_table_names() if n.startswith(prefix)):
        columns = {
            c["name"]: (str(c["type"]), c["nullable"], str(c.get("default")))
            for c in inspector.get_columns(name)
        }
        foreign = sorted(
            (f["name"] or "", tuple(f["constrained_columns"]), f["referred_table"],
             tuple(f["referred_columns"]), tuple(sorted(f.get("options", {}).items())))
            for f in inspector.get_foreign_keys(name)
        )  # fmt: skip
        indexes = sorted(
            (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(name)
        )
        unique = sorted(
            (u["name"] or "", tuple(u["column_names"]))
            for u in inspector.get_unique_constraints(name)
        )
        primary = inspector.get_pk_constraint(name)
        checks = sorted(
            (c["name"] or "", c["sqltext"]) for c in inspector.get_check_constraints(name)
        )
        tables[name] = (columns, tuple(primary["constrained_columns"]), primary.get("name"),
                        foreign, indexes, unique, checks)  # fmt: skip
    return tables


@pytest.mark.parametrize(("migrations", "prefix"), [(PROVIDER, "op_")], ids=["provider"])
def test_a_new_database_made_at_the_newest_revision_equals_one_made_by_every_revision(
    engine: Engine, migrations: Migrations, prefix: str
) -> None:
    """A first start creates the tables from the models and writes the newest revision, instead
    of replaying every revision: the two databases must be the same, down to what
    ``compare_metadata`` does not look at (server defaults, constraint names, ``ON DELETE``)."""
    assert migrations.models is not None
    done = upgrade(engine, migrations)
    assert (done.before, done.after, done.adopted) == (None, head_revision(migrations), False)
    assert done.describe() == f"{migrations.name} tables: created, at {done.after}"
    with engine.begin() as conn:
        at_head = _reflected(conn, prefix)
        assert migrations.version_table in at_head
        assert len(at_head) > 10  # the provider's tables, not an empty reflection
        assert conn.execute(text(f"SELECT version_num FROM {migrations.version_table}")).all() == [
            (done.after,)
        ]
        existing = MetaData()
        existing.reflect(conn, only=list(at_head))
        existing.drop_all(conn)
    replayed = upgrade(engine, replace(migrations, models=None))
    assert (replayed.before, replayed.after) == (None, done.after)
    with engine.connect() as conn:
        assert _reflected(conn, prefix) == at_head
    # The next revision starts from the database made at the newest one, as from any other.
    assert upgrade(engine, migrations) == Upgrade(
        migrations.name, display_url(engine), done.after, done.after
    )


def test_a_database_at_the_newest_revision_is_left_alone_without_a_lock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(engine, PROVIDER)

    def no_lock(_engine: Engine) -> None:
        raise AssertionError("took the lock for a database already at the newest revision")

    monkeypatch.setattr(schema, "database_lock", no_lock)
    again = upgrade(engine, PROVIDER)
    assert again == Upgrade("provider", display_url(engine), HEAD, HEAD)
    assert not again.changed
    assert again.describe() == f"provider tables: already at {HEAD}"


def test_a_new_revision_runs_and_says_from_which_to_which(engine: Engine, tmp_path: Path) -> None:
    """How a migration is added (docs/provider.md): a file in ``versions/`` whose
    ``down_revision`` is the newest one."""
    upgrade(engine, PROVIDER)
    scripts = tmp_path / "migrations"
    shutil.copytree(PROVIDER.directory / "versions", scripts / "versions")
    (scripts / "versions" / "op_9001_nickname.py").write_text(
        '"""Users get a nickname."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        'revision = "op_9001"\n'
        f'down_revision = "{HEAD}"\n\n\n'
        "def upgrade() -> None:\n"
        '    op.add_column("op_users", sa.Column("nickname", sa.String(40)))\n'
    )
    newer = Migrations("provider", scripts, PROVIDER.version_table, PROVIDER.legacy_tables)
    done = upgrade(engine, newer)
    assert (done.before, done.after, done.adopted) == (HEAD, "op_9001", False)
    assert done.describe() == f"provider tables: upgraded from {HEAD} to op_9001"
    with engine.connect() as conn:
        assert "nickname" in {c["name"] for c in inspect(conn).get_columns("op_users")}
        # This build does not know op_9001: it says so rather than guessing.
        with pytest.raises(SchemaError) as refused:
            schema._run_to_head(conn, PROVIDER, "op_9001")
    assert "at op_9001, a revision this build does not know" in str(refused.value)


def test_a_database_migrated_by_a_newer_build_is_refused_with_a_message(engine: Engine) -> None:
    upgrade(engine, PROVIDER)
    with engine.begin() as conn:
        conn.execute(text("UPDATE op_alembic_version SET version_num = 'op_9999'"))
    with pytest.raises(SchemaError) as refused:
        upgrade(engine, PROVIDER)
    assert str(refused.value) == (
        f"the provider tables in {display_url(engine)} are at op_9999, a revision this build "
        f"does not know (a newer build migrated them); its newest is {HEAD}"
    )


def test_adoption_creates_missing_tables_and_adds_columns_0_1_0_gained(engine: Engine) -> None:
    """A database from a build before migrations: some tables, one (``op_codes``) from before
    0.1.0 gained ``reused_at``, no version table. It is adopted, rows kept."""
    tables = [provider_0_1_0.tables["op_users"], provider_0_1_0.tables["op_codes"]]
    provider_0_1_0.create_all(engine, tables=tables)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE op_codes DROP COLUMN reused_at"))
        conn.execute(
            text("INSERT INTO op_users (subject, username, password_hash) VALUES ('s', 'u', 'h')")
        )
    done = upgrade(engine, PROVIDER)
    assert (done.before, done.after, done.adopted) == (None, HEAD, True)
    assert done.describe() == (
        f"provider tables: adopted (made before migrations existed), now at {HEAD}"
    )
    with engine.connect() as conn:
        assert "reused_at" in {c["name"] for c in inspect(conn).get_columns("op_codes")}
        assert conn.execute(text("SELECT username FROM op_users")).scalars().all() == ["u"]
        context = MigrationContext.configure(
            conn, opts={"include_name": _only("op_", PROVIDER.version_table)}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_a_database_that_a_build_before_migrations_gave_require_pkce_is_adopted(
    engine: Engine,
) -> None:
    """Main briefly added ``op_clients.require_pkce`` at start with its own ``ALTER TABLE``:
    such a database has the column and no version table; op_0002 finds it there."""
    provider_0_1_0.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            text("ALTER TABLE op_clients ADD COLUMN require_pkce BOOLEAN DEFAULT true NOT NULL")
        )
    done = upgrade(engine, PROVIDER)
    assert (done.before, done.after, done.adopted) == (None, HEAD, True)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": _only("op_", PROVIDER.version_table)}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_adoption_refuses_a_table_missing_a_column_that_cannot_be_null(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE op_users (id INTEGER PRIMARY KEY, username TEXT)"))
    with pytest.raises(SchemaError) as refused:
        upgrade(engine, PROVIDER)
    assert str(refused.value) == (
        "table op_users lacks the column subject, which cannot be null: this database was made "
        "by a build too old to adopt"
    )
    with engine.connect() as conn:  # nothing was half-done
        assert not inspect(conn).has_table("op_alembic_version")


def test_a_server_told_not_to_migrate_refuses_a_database_behind(
    config: StepupConfig, database_url: str
) -> None:
    with pytest.raises(SchemaError) as refused:
        create_app(config, database_url=database_url, migrate=False)
    assert str(refused.value) == (
        f"the provider tables in {display_url(database_url)} are at no version, this build "
        f"needs {HEAD}: run `stepup db upgrade` first"
    )
    assert main(["db", "upgrade", "--database", database_url], out=io.StringIO()) == 0
    app = create_app(config, database_url=database_url, migrate=False)
    assert app.extensions["stepup_provider"].schema is None


def test_stepup_db_upgrade_says_what_it_did_where(database_url: str) -> None:
    out = io.StringIO()
    assert main(["db", "upgrade", "--database", database_url], out=out) == 0
    where = display_url(database_url)
    assert out.getvalue() == (
        f"Database: {where}\n"
        f"  provider tables: created, at {HEAD}\n"
        "  bank tables: created, at bank_0002\n"
    )
    out = io.StringIO()
    assert main(["db", "upgrade", "--database", database_url], out=out) == 0
    assert out.getvalue() == (
        f"Database: {where}\n"
        f"  provider tables: already at {HEAD}\n"
        "  bank tables: already at bank_0002\n"
    )


def test_the_migration_scripts_are_packages_that_a_plain_install_ships() -> None:
    """``pip install .`` (not editable) ships what setuptools finds with pyproject's patterns;
    the scripts are read from the installed package at run time."""
    import tomllib

    from setuptools import find_packages

    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(root), include=include))
    assert {"provider.migrations.versions", "resource_api.bank.migrations.versions"} <= found
    for migrations in (PROVIDER, BANK):
        assert [p.name for p in (migrations.directory / "versions").glob("*_0001_*.py")]


def test_op_0007_adds_the_factor_audit_table_to_a_database_at_op_0006(
    engine: Engine, tmp_path: Path
) -> None:
    """A database a build with passkeys (op_0006) made, holding a user, gains the factor API's
    audit table and keeps its rows."""
    scripts = tmp_path / "migrations"
    shutil.copytree(PROVIDER.directory / "versions", scripts / "versions")
    (scripts / "versions" / "op_0007_factor_audit.py").unlink()
    (scripts / "versions" / "op_0008_code_authorization_details.py").unlink()
    older = Migrations("provider", scripts, PROVIDER.version_table, PROVIDER.legacy_tables)
    assert upgrade(engine, older).after == "op_0006"
    with engine.begin() as conn:
        assert not inspect(conn).has_table("op_factor_audit")
        conn.execute(
            text("INSERT INTO op_users (subject, username, password_hash) VALUES ('s', 'u', 'h')")
        )
    done = upgrade(engine, PROVIDER)
    assert (done.before, done.after, done.adopted) == ("op_0006", HEAD, False)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM op_users")).scalars().all() == ["u"]
        assert {c["name"] for c in inspect(conn).get_columns("op_factor_audit")} == {
            "id",
            "at",
            "client_id",
            "user_ref",
            "subject",
            "factor",
            "result",
            "reason",
            "transaction_id",
        }
        context = MigrationContext.configure(
            conn, opts={"include_name": _only("op_", PROVIDER.version_table)}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_op_0008_gives_codes_their_authorization_details_and_keeps_the_codes(
    engine: Engine, tmp_path: Path
) -> None:
    """A database at op_0007 holding an unused code gains ``op_codes.authorization_details``
    (RFC 9396 at /authorize); the code is kept, approving nothing (null)."""
    scripts = tmp_path / "migrations"
    shutil.copytree(PROVIDER.directory / "versions", scripts / "versions")
    (scripts / "versions" / "op_0008_code_authorization_details.py").unlink()
    older = Migrations("provider", scripts, PROVIDER.version_table, PROVIDER.legacy_tables)
    assert upgrade(engine, older).after == "op_0007"
    with engine.begin() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("op_codes")}
        assert "authorization_details" not in columns
        conn.execute(
            text("INSERT INTO op_users (subject, username, password_hash) VALUES ('s', 'u', 'h')")
        )
        conn.execute(
            text(
                "INSERT INTO op_codes (code_hash, client_id, user_id, redirect_uri, scope, "
                "code_challenge, code_challenge_method, acr, amr, auth_time, expires_at) "
                "SELECT 'h1', 'c', id, 'http://127.0.0.1/cb', 'openid', '', '', 'a', '[]', 1, 2 "
                "FROM op_users"
            )
        )
    done = upgrade(engine, PROVIDER)
    assert (done.before, done.after, done.adopted) == ("op_0007", "op_0008", False)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code_hash, authorization_details FROM op_codes")).all()
        assert [tuple(r) for r in rows] == [("h1", None)]
        context = MigrationContext.configure(
            conn, opts={"include_name": _only("op_", PROVIDER.version_table)}
        )
        assert compare_metadata(context, Base.metadata) == []
