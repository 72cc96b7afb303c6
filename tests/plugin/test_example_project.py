"""examples/payroll, a project outside the package, runs its own pytest suite against the sandbox
with the plugin from a freshly built wheel of this repository, installed in a fresh virtualenv.

What a user does — ``pip install stepup-stack``, then ``pytest`` in their project — done as close
to the letter as a test suite can afford on every run:

1. **A wheel, built now.** The repository's files (tracked and new, not ignored: what a commit
   would hold) are copied to a scratch directory and ``pip wheel`` builds them there, in pip's
   isolated build environment. Nothing is built in the work tree, whose ``build/`` directory
   could otherwise slip a stale or deleted module into the wheel.
2. **A fresh virtualenv**, and the wheel installed into it by pip (``--no-deps``): its files, its
   metadata, its ``pytest11`` entry point.
3. **The dependencies, offline.** Downloading and compiling ~40 packages on every run would take
   minutes. Instead, exactly what the wheel *declares* (its ``Requires-Dist``, markers evaluated,
   followed transitively) plus what the example declares (its ``[project] dependencies``) plus
   pytest are linked, package by package, from the environment running this test into a
   directory the new virtualenv reads (a ``.pth`` file). Nothing else is visible there: a module
   the package imports but does not declare fails the example's suite, as it would for a user.
   Neither this repository's packages nor its editable install are among them (the check at the
   end proves the plugin and the provider's templates came from the new virtualenv).
4. **The example's suite**, in a copy of the example, with that virtualenv's Python.

Nothing is kept between runs: the wheel, the virtualenv and the links live in the test's
temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payroll"
PACKAGE = "stepup-stack"
OWN_PACKAGES = {"provider", "resource_api", "client_sdk", "stepup"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _run(args: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _source_copy(into: Path) -> Path:
    """The files a commit would hold: tracked, or new and not ignored."""
    listed = _run(["git", "ls-files", "-z", "-co", "--exclude-standard"], ROOT, 60).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def _closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions the ``roots`` requirements need, transitively, with extras and
    environment markers evaluated as pip would."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    # (a requirement, the extra of the distribution that listed it under which it was wanted)
    todo = [(Requirement(r), "") for r in roots]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        dist = metadata.distribution(requirement.name)  # absent here: the test setup is broken
        name = _canonical(dist.metadata["Name"])
        found[name] = dist
        for wanted in ("", *sorted(requirement.extras)):
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                todo.extend((Requirement(line), wanted) for line in dist.requires or [])
    return sorted(found.values(), key=lambda d: _canonical(d.metadata["Name"]))


def _wheel_requires(wheel: Path) -> list[str]:
    """The wheel's ``Requires-Dist`` lines, from its own METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    return list(Parser().parsestr(text).get_all("Requires-Dist") or [])


def _top_level_entries(dist: metadata.Distribution) -> set[str]:
    """The names a distribution put directly in site-packages (packages, modules, its
    ``.dist-info``, bundled ``.libs``), from its RECORD."""
    entries = set()
    for file in dist.files or []:
        parts = Path(file).parts
        if parts and parts[0] != ".." and not parts[0].endswith(".pth"):
            entries.add(parts[0])
    return entries


def _link_dependencies(requirements: list[str], into: Path) -> list[str]:
    into.mkdir()
    names = []
    for dist in _closure(requirements):
        name = _canonical(dist.metadata["Name"])
        assert name != PACKAGE, "the package itself must come from the wheel"
        site = Path(str(dist.locate_file("")))
        for entry in _top_level_entries(dist):
            assert entry not in OWN_PACKAGES, f"{name} ships {entry}"
            if (site / entry).exists() and not (into / entry).exists():
                (into / entry).symlink_to(site / entry)
        names.append(name)
    return names


def test_the_example_suite_passes_with_the_plugin_from_a_built_wheel(tmp_path: Path) -> None:
    # 1. The wheel.
    wheels = tmp_path / "wheels"
    source = _source_copy(tmp_path / "source")
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        tmp_path,
        600,
    )
    (wheel,) = wheels.glob("stepup_stack-*.whl")

    # 2. A fresh virtualenv with the wheel in it (pip from this environment installs there).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, 120)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", "--no-compile", str(wheel)],
        tmp_path,
        300,
    )  # fmt: skip

    # 3. What the wheel and the example declare, and pytest; nothing else.
    wheel_requires = _wheel_requires(wheel)  # an extra's requirements evaluate to false
    example = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    example_requires = [r for r in example["dependencies"] if _canonical(r) != PACKAGE]
    linked = _link_dependencies(
        [*wheel_requires, *example_requires, "pytest"], tmp_path / "dependencies"
    )
    assert {"flask", "authlib", "requests", "pytest"} <= set(linked)
    assert not {"pytest-xdist", "playwright", "freezegun"} & set(linked)  # dev-only: not visible
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    (site_packages / "dependencies.pth").write_text(f"{tmp_path / 'dependencies'}\n")

    # 4. The example's own suite.
    project = tmp_path / "payroll"
    shutil.copytree(EXAMPLE, project)
    result = _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, 600)
    assert result.stdout.splitlines()[-1].startswith("7 passed"), result.stdout

    # The plugin, the provider and its templates came from the new virtualenv, not the repository.
    where = _run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, stepup.pytest_plugin as p, provider;"
            "print(p.__file__); print(provider.__file__);"
            "print([e.value for e in m.entry_points(group='pytest11') if e.name == 'stepup'])",
        ],
        project,
        60,
    ).stdout.splitlines()
    assert where[0] == str(site_packages / "stepup" / "pytest_plugin.py")
    assert where[1] == str(site_packages / "provider" / "__init__.py")
    assert where[2] == "['stepup.pytest_plugin']"
    assert (site_packages / "provider" / "templates" / "sandbox.html").is_file()
