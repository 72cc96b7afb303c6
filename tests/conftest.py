"""Shared fixtures: configurations and databases.

Every test that touches storage runs on SQLite; the ones marked ``postgres`` run on PostgreSQL
too, each in a schema of its own, when ``STEPUP_TEST_DATABASE_URL`` is set or a server answers on
127.0.0.1:5432. Otherwise they are skipped with the reason — but a URL that is set explicitly and
cannot be used stops the run at once: whoever set it (CI) asked for PostgreSQL coverage, and a
green run that silently skipped it would be a lie.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

from provider.db import normalise_url
from stepup.cli import sandbox_config
from stepup.config import StepupConfig

from .fuzz import DEEP_EXAMPLES, DEEP_PROFILE

# The suite's default profile: Hypothesis' own, less its timing checks. A property test proves a
# property of the values it draws, not a speed; on a loaded 2-core CI machine a slow draw or a slow
# example would otherwise fail a correct build (speed is measured by benchmarks/, never here).
settings.register_profile(
    "stepup",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# `pytest --hypothesis-profile=fuzz`: ten times the examples for every fuzz test (tests/fuzz.py)
# and every other property test, with fresh random inputs.
settings.register_profile(DEEP_PROFILE, settings.get_profile("stepup"), max_examples=DEEP_EXAMPLES)
settings.load_profile("stepup")  # --hypothesis-profile, when given, is loaded after this


@pytest.fixture(autouse=True, scope="session")
def _own_data_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests never touch the real per-user data directory (the default database's home) nor a
    database named by the developer's environment: ``XDG_DATA_HOME`` points into the test run's
    temporary folder, for this process and every server it starts."""
    data = tmp_path_factory.mktemp("xdg-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(data))
        mp.delenv("STEPUP_DATABASE_URL", raising=False)
        yield data


@pytest.fixture
def config() -> StepupConfig:
    """The built-in sandbox configuration: alice (pwd+otp), bob (pwd), three clients."""
    return sandbox_config()


EXPLICIT_URL_UNUSABLE = 3  # the exit status when STEPUP_TEST_DATABASE_URL is set but unusable


def pytest_sessionstart(session: pytest.Session) -> None:
    _explicit_chromium_must_run()
    url = os.environ.get("STEPUP_TEST_DATABASE_URL")
    if not url:
        return
    engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.exit(
            f"STEPUP_TEST_DATABASE_URL={url} is set but PostgreSQL cannot be used: {first_line}\n"
            "Start the server, fix the URL, or unset the variable to skip the PostgreSQL tests.",
            returncode=EXPLICIT_URL_UNUSABLE,
        )
    finally:
        engine.dispose()


def _explicit_chromium_must_run() -> None:
    """``STEPUP_TEST_CHROMIUM`` set (CI sets it) but not a Chromium that starts: stop the run,
    rather than pass with the browser tests skipped."""
    path = os.environ.get("STEPUP_TEST_CHROMIUM")
    if not path:
        return
    try:
        subprocess.run([path, "--version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.exit(
            f"STEPUP_TEST_CHROMIUM={path} is set but Chromium cannot be started: {exc}\n"
            "Install it (apt-get install chromium), fix the path, or unset the variable to skip "
            "the browser tests.",
            returncode=EXPLICIT_URL_UNUSABLE,
        )


def _postgres_url() -> str | None:
    url = os.environ.get("STEPUP_TEST_DATABASE_URL")
    if url:
        return normalise_url(url)
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
    except OSError:
        return None
    return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped after the test."""
    base = _postgres_url()
    if base is None:
        pytest.skip("PostgreSQL: STEPUP_TEST_DATABASE_URL unset and nothing on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # the server answered but refused us
        admin.dispose()
        if os.environ.get("STEPUP_TEST_DATABASE_URL"):
            pytest.fail(f"STEPUP_TEST_DATABASE_URL is set but not usable: {exc}")
        pytest.skip(f"PostgreSQL at {base} not usable: {exc}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs twice: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stepup.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'stepup.db'}"
