"""The pytest plugin (DESIGN.md, contract 11): installing the package registers it (the
``pytest11`` entry point), so a project's own test suite gets a local identity sandbox with no
setup.

Fixtures:

- ``stepup_sandbox``: the provider and the demo API running in-process on free ports with a fresh
  database (:class:`stepup.inprocess.Sandbox`: ``.issuer``, ``.api_url``, ``.users``,
  ``.mint_token(...)``, ``.advance_clock(seconds)``, ``.session(username)``). Each test finds the
  clock at real time.
- ``stepup_session``: a ``requests.Session`` that logs the first user with a one-time code in
  and steps up when the API challenges (``stepup_sandbox.session()``).

Settings (``[tool.pytest.ini_options]`` or ``pytest.ini``):

- ``stepup_sandbox_scope = function|class|module|package|session``: how long one sandbox lives
  (default ``function``: a fresh database for every test).
- ``stepup_sandbox_config = path.toml``: the config for every sandbox (default: the built-in one).

Marker: ``@pytest.mark.stepup_config("path.toml")`` on a test, class or module picks the config
for those tests (relative to the rootdir). Under a wide scope, tests that share a config share
its sandbox.

pytest imports this module in every run of every project that has this package installed, so
it imports nothing but pytest and the standard library: the provider, Flask and the SDK are
imported by the fixtures, when a test asks for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .inprocess import Sandbox

SCOPES = ("function", "class", "module", "package", "session")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "stepup_sandbox_scope",
        "how long one stepup_sandbox lives: function (default), class, module, package, session",
        default="function",
    )
    parser.addini(
        "stepup_sandbox_config",
        "TOML config for stepup_sandbox (relative to the rootdir; default: the built-in sandbox)",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "stepup_config(path): the TOML config the stepup_sandbox fixture runs with",
    )


def _scope(fixture_name: str, config: pytest.Config) -> Any:
    scope = str(config.getini("stepup_sandbox_scope")).strip() or "function"
    if scope not in SCOPES:
        raise pytest.UsageError(f"stepup_sandbox_scope = {scope!r}: use one of {', '.join(SCOPES)}")
    return scope


class _Pool:
    """The sandboxes of one scope, one per config file, started when first asked for."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: dict[str | None, Sandbox] = {}
        self.stack = ExitStack()

    def get(self, config_path: str | None) -> Sandbox:
        if config_path not in self.running:
            from .inprocess import running_sandbox

            folder = self.directory / f"sandbox{len(self.running)}"
            folder.mkdir()
            self.running[config_path] = self.stack.enter_context(
                running_sandbox(config_path, folder)
            )
        return self.running[config_path]


@pytest.fixture(scope=_scope)
def _stepup_sandbox_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Pool]:
    pool = _Pool(tmp_path_factory.mktemp("stepup"))
    with pool.stack:
        yield pool


def _config_path(request: pytest.FixtureRequest) -> str | None:
    marker = request.node.get_closest_marker("stepup_config")
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], str | Path):
            raise pytest.UsageError('use @pytest.mark.stepup_config("path/to/config.toml")')
        given: str | Path = marker.args[0]
    else:
        given = str(request.config.getini("stepup_sandbox_config")).strip()
        if not given:
            return None
    path = Path(given)
    if not path.is_absolute():
        path = request.config.rootpath / path
    if not path.is_file():
        raise pytest.UsageError(f"stepup config {given!r}: no such file ({path})")
    return str(path)


@pytest.fixture
def stepup_sandbox(request: pytest.FixtureRequest, _stepup_sandbox_pool: _Pool) -> Sandbox:
    """A running sandbox (provider + demo API); its clock at real time when the test starts."""
    sandbox = _stepup_sandbox_pool.get(_config_path(request))
    sandbox.clock.reset()
    return sandbox


@pytest.fixture
def stepup_session(stepup_sandbox: Sandbox) -> Any:
    """A ``requests.Session`` that logs in and steps up as the first user with a one-time code."""
    return stepup_sandbox.session()
