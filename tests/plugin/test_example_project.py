"""examples/payroll, a project outside the package, runs its own pytest suite against the
sandbox with nothing but the installed package (the pytest11 entry point) and its pyproject."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "payroll"


def test_the_example_projects_suite_passes(tmp_path: Path) -> None:
    project = tmp_path / "payroll"
    shutil.copytree(EXAMPLE, project)  # a copy: no caches left in the repository
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("7 passed")
