"""The plugin's settings, in a project of its own (a pytest run in a subprocess): the scope ini
option, the config marker, the clock put back for every test, and the errors for bad settings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CONFIG = """
issuer = "http://127.0.0.1:9999"
[provider]
sandbox = false   # the fixture turns it on: a fixture is a sandbox
[[acr_levels]]
value = "urn:example:silver"
factors = ["pwd"]
[[users]]
username = "zoe"
password = "zoe-password"
[[clients]]
client_id = "app"
redirect_uris = ["http://127.0.0.1:5000/callback"]
[api]
audience = "https://api.example"
"""


def run(project: Path, ini: str, tests: str) -> subprocess.CompletedProcess[str]:
    (project / "pytest.ini").write_text(f"[pytest]\n{ini}\n")
    (project / "test_it.py").write_text(textwrap.dedent(tests))
    (project / "custom.toml").write_text(CONFIG)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_session_scope_shares_one_sandbox_and_puts_the_clock_back(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "stepup_sandbox_scope = session",
        """
        seen = []

        def test_one(stepup_sandbox):
            seen.append(stepup_sandbox.issuer)
            stepup_sandbox.advance_clock(7200)
            assert stepup_sandbox.clock.offset == 7200

        def test_two(stepup_sandbox):
            assert seen == [stepup_sandbox.issuer]
            assert stepup_sandbox.clock.offset == 0
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_function_scope_is_the_default_a_fresh_sandbox_each_test(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "",
        """
        seen = []

        def test_one(stepup_sandbox):
            seen.append(stepup_sandbox.issuer)

        def test_two(stepup_sandbox):
            assert seen and seen != [stepup_sandbox.issuer]
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_marker_picks_the_config(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "stepup_sandbox_scope = module",
        """
        import pytest
        import requests

        @pytest.mark.stepup_config("custom.toml")
        def test_custom(stepup_sandbox):
            assert stepup_sandbox.users == ("zoe",)
            token = stepup_sandbox.mint_token("zoe")
            assert requests.get(f"{stepup_sandbox.issuer}/sandbox/clock").status_code == 200
            assert token.count(".") == 2

        def test_builtin(stepup_sandbox):
            assert stepup_sandbox.users == ("alice", "bob")
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_ini_option_picks_the_config_for_every_test(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "stepup_sandbox_config = custom.toml",
        """
        def test_custom(stepup_sandbox):
            assert stepup_sandbox.users == ("zoe",)
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_scope_stops_the_run_with_a_message(tmp_path: Path) -> None:
    result = run(tmp_path, "stepup_sandbox_scope = forever", "def test_x(stepup_sandbox): pass\n")
    assert result.returncode != 0
    assert (
        "stepup_sandbox_scope = 'forever': use one of function, class, module, package, session"
        in result.stdout + result.stderr
    )


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "",
        """
        import pytest

        @pytest.mark.stepup_config("nowhere.toml")
        def test_x(stepup_sandbox):
            pass
        """,
    )
    assert result.returncode == 1
    assert "stepup config 'nowhere.toml': no such file" in result.stdout
