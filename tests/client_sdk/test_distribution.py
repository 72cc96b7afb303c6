"""``sdk/``: the SDK as a distribution of its own (``stepup-client-sdk``), next to the whole stack.

docs/sdk.md ("Add the SDK to your project") promises that it installs ``client_sdk`` with
requests, httpx, joserfc and cryptography and nothing else, and that it ships the same code and
version as the stack. These tests keep that true without building anything or using the network.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
# Import names of the SDK's declared dependencies, and what those bring themselves.
DECLARED = {
    "requests": "requests",
    "httpx": "httpx",
    "joserfc": "joserfc",
    # The software passkey (client_sdk.authenticators.passkey) signs with it.
    "cryptography": "cryptography",
}
CARRIED = {"anyio": "httpx"}  # httpx's own dependency; client_sdk uses it for async logins
SERVER_SIDE = (
    "flask",
    "werkzeug",
    "flask_wtf",
    "authlib",
    "sqlalchemy",
    "alembic",
    "argon2",
    "segno",
    "granian",
    "uvicorn",
    "aiohttp",
    "cel_expr_python",
    "provider",
    "resource_api",
    "stepup",
)


def project(path: Path) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads(path.read_text())["project"]
    return data


def test_the_sdk_distribution_ships_the_same_code_and_version_as_the_stack() -> None:
    sdk, stack = project(SDK / "pyproject.toml"), project(ROOT / "pyproject.toml")
    assert sdk["name"] == "stepup-client-sdk"
    assert (sdk["version"], sdk["requires-python"]) == (stack["version"], stack["requires-python"])
    assert (SDK / "client_sdk").is_symlink()
    assert (SDK / "client_sdk").resolve() == ROOT / "client_sdk"
    # The same requirement, word for word, in both: the SDK never needs a newer library alone.
    sdk_deps = sdk["dependencies"]
    stack_deps = stack["dependencies"]
    assert isinstance(sdk_deps, list)
    assert isinstance(stack_deps, list)
    assert sorted(sdk_deps) == sorted(
        d for d in stack_deps if d.split(">")[0] in ("requests", "httpx", "joserfc", "cryptography")
    )


def third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "client_sdk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"client_sdk", "__future__"}


def test_every_library_the_sdk_imports_is_a_declared_dependency() -> None:
    assert third_party_imports() <= set(DECLARED) | set(CARRIED)


BLOCKER = f"""
import importlib.abc, importlib.util, pkgutil, sys

BLOCKED = {SERVER_SIDE!r}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed with the SDK alone")
        return None

sys.meta_path.insert(0, Blocker())
import client_sdk
for module in pkgutil.walk_packages(client_sdk.__path__, "client_sdk."):
    importlib.import_module(module.name)
from client_sdk import (
    HeadlessAuthenticator, LoopbackBrowserAuthenticator, RedirectAuthenticator, StepUpAuth,
    StepUpHTTPXAuth, parse_www_authenticate,
)
StepUpAuth("https://op.example", "app", authenticator=HeadlessAuthenticator("a", "b"))
StepUpHTTPXAuth("https://op.example", "app", authenticator=LoopbackBrowserAuthenticator())
StepUpAuth("https://op.example", "app", authenticator=RedirectAuthenticator("http://x/cb"))
assert parse_www_authenticate('Bearer error="insufficient_user_authentication"')
print(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
"""


def test_the_sdk_works_without_any_server_library() -> None:
    # A fresh interpreter in which every server-side package is missing, as with `pip install
    # ./sdk`: every SDK module imports and its public classes build.
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
