"""The newest revision read from the scripts' text (``provider.schema.head_revision``): it is
Alembic's own reading for the shipped scripts, anything unusual is left to Alembic, and a start on
a database already at it, or a new one, imports no Alembic at all (the start-up cost,
docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provider import schema
from provider.migrations import PROVIDER
from provider.schema import Migrations, head_revision
from resource_api.bank.migrations import BANK


@pytest.mark.parametrize("migrations", [PROVIDER, BANK], ids=["provider", "bank"])
def test_the_scripts_text_names_the_head_alembic_finds(migrations: Migrations) -> None:
    scanned = schema._scanned_head(migrations.directory)
    assert scanned is not None
    assert scanned == schema._alembic_head(migrations)


def _scripts(tmp_path: Path, revisions: dict[str, str]) -> Migrations:
    """Revision scripts whose ``revision``/``down_revision`` lines are the given texts."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "__init__.py").write_text("")
    for name, head_lines in revisions.items():
        (versions / f"{name}.py").write_text(
            f'"""{name}"""\n\n{head_lines}\nbranch_labels = None\ndepends_on = None\n\n\n'
            "def upgrade() -> None:\n    pass\n"
        )
    return Migrations("test", tmp_path, "t_alembic_version", ())


def test_a_merge_revision_is_left_to_alembic(tmp_path: Path) -> None:
    migrations = _scripts(
        tmp_path,
        {
            "a": 'revision = "a"\ndown_revision = None',
            "b": 'revision = "b"\ndown_revision = "a"',
            "c": 'revision: str = "c"\ndown_revision: str | None = "a"',
            "d": 'revision = "d"\ndown_revision = ("b", "c")',
        },
    )
    assert schema._scanned_head(tmp_path) is None
    assert head_revision(migrations) == "d"  # Alembic's reading


@pytest.mark.parametrize(
    "scripts",
    [
        {"a": 'revision = "a"\ndown_revision = None', "b": 'revision = NAME\ndown_revision = "a"'},
        {"a": 'revision = "a"\ndown_revision = None', "b": 'revision = "b"\ndown_revision = "x"'},
        {"a": 'revision = "a"\ndown_revision = None', "b": 'revision = "b"\ndown_revision = None'},
        {"a": 'revision = "a"\nrevision = "z"\ndown_revision = None'},
    ],
    ids=["computed", "unknown-parent", "two-bases", "two-assignments"],
)
def test_scripts_that_do_not_say_it_plainly_are_not_read(
    tmp_path: Path, scripts: dict[str, str]
) -> None:
    _scripts(tmp_path, scripts)
    assert schema._scanned_head(tmp_path) is None


def test_annotated_assignments_are_read(tmp_path: Path) -> None:
    _scripts(
        tmp_path,
        {
            "a": 'revision: str = "a"\ndown_revision: str | None = None',
            "b": "revision: str = 'b'\ndown_revision: str | None = 'a'",
        },
    )
    assert schema._scanned_head(tmp_path) == "b"


CHECK_AT_HEAD = """
import sys
from sqlalchemy import create_engine
from provider.migrations import PROVIDER
from provider.schema import check, upgrade
engine = create_engine(sys.argv[1])
done = upgrade(engine, PROVIDER)
assert not done.changed, done
assert check(engine, PROVIDER) == done.after
print("alembic" in sys.modules, done.after)
"""


def test_a_start_at_the_newest_revision_imports_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'op.db'}"
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        schema.upgrade(engine, PROVIDER)
    finally:
        engine.dispose()
    out = subprocess.run(
        [sys.executable, "-c", CHECK_AT_HEAD, url], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", head_revision(PROVIDER)]


CREATE_NEW = """
import sys
from sqlalchemy import create_engine
from provider.migrations import PROVIDER
from provider.schema import upgrade
done = upgrade(create_engine(sys.argv[1]), PROVIDER)
print("alembic" in sys.modules, done.before, done.after)
"""


def test_a_first_start_creates_the_tables_at_the_newest_revision_without_alembic(
    tmp_path: Path,
) -> None:
    """A new database is made from the models and stamped (no revision replayed, no Alembic
    imported); ``test_migrations.py`` proves it equals one made by replaying every revision."""
    url = f"sqlite:///{tmp_path / 'op.db'}"
    out = subprocess.run(
        [sys.executable, "-c", CREATE_NEW, url], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "None", head_revision(PROVIDER)]
