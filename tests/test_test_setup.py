"""The test run itself: an explicitly requested PostgreSQL that is not there fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pytest(env_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STEPUP_TEST_DATABASE_URL"}
    if env_url is not None:
        env["STEPUP_TEST_DATABASE_URL"] = env_url
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/test_config_file.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_an_explicit_but_unreachable_database_url_stops_the_run() -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    result = _pytest("postgresql://postgres@127.0.0.1:1/test")
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "STEPUP_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:1/test is set" in out
    assert "PostgreSQL cannot be used" in out
    assert " passed" not in out


def test_an_explicit_url_with_a_wrong_database_name_stops_the_run_too() -> None:
    result = _pytest("postgresql://postgres@127.0.0.1:5432/no_such_database_here")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no_such_database_here is set but PostgreSQL cannot be used" in result.stdout


def test_an_explicit_chromium_that_does_not_start_stops_the_run() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STEPUP_TEST_DATABASE_URL"}
    env["STEPUP_TEST_CHROMIUM"] = "/nonexistent/chromium"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/test_config_file.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "STEPUP_TEST_CHROMIUM=/nonexistent/chromium is set but Chromium cannot be started" in out
    assert " passed" not in out
