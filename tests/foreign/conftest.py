"""Foreign clients: programs of other makes, from their own registries, run against the stack.

``node_client`` gives a folder where the npm packages the tests name are installed, outside the
repository (nothing of them is committed): ``STEPUP_TEST_NODE_DIR``, else a folder in the
system's temporary directory, reused across runs. Without Node.js on the ``PATH`` the tests
skip with that reason; with it, a failed install or a Node.js too old for the package fails
them: they never skip quietly where they could run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

#: The packages installed, each pinned (the tests read their behaviour, which versions change).
NPM_PACKAGES = ("oauth4webapi@3.8.9",)
#: The oldest Node.js they run on (oauth4webapi 3: global fetch and WebCrypto).
NODE_MAJOR = 20


def _node_major(node: str) -> int:
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    return int(version.lstrip("v").split(".")[0])


@pytest.fixture(scope="session")
def node_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("Node.js is not on the PATH: the foreign-client tests run it (apt nodejs)")
    if npm is None:
        pytest.fail("Node.js is on the PATH but npm is not: install npm to run these tests")
    if (major := _node_major(node)) < NODE_MAJOR:
        pytest.fail(f"Node.js {major} is too old for {NPM_PACKAGES}; {NODE_MAJOR}+ is needed")
    root = Path(
        os.environ.get("STEPUP_TEST_NODE_DIR")
        or Path(tempfile.gettempdir()) / "stepup-foreign-clients"
    )
    folder = root / "-".join(p.replace("@", "_").replace("/", "_") for p in NPM_PACKAGES)
    folder.mkdir(parents=True, exist_ok=True)
    # One install at a time (pytest-xdist workers share the folder).
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".installed").exists():
            (folder / "package.json").write_text('{"private": true, "type": "module"}\n')
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", *NPM_PACKAGES],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                pytest.fail(f"npm install {' '.join(NPM_PACKAGES)} failed:\n{done.stderr[-2000:]}")
            (folder / ".installed").write_text("\n".join(NPM_PACKAGES) + "\n")
    return folder
