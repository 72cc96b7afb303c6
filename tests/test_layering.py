"""The libraries take their own settings types; only the ``stepup`` command reads TOML.

``provider/`` and ``resource_api/`` must not import the ``stepup`` package (issue 9, "House"): an
application that embeds them builds the settings in code, and the command is one such application.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import provider
import resource_api
from provider.settings import AcrLevelConfig, ClientConfig, ProviderSettings, UserConfig
from resource_api.settings import ApiConfig, RouteConfig

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[str]:
    mod = __import__(package)
    return [m.name for m in pkgutil.walk_packages(mod.__path__, prefix=f"{package}.")]


def test_importing_every_library_module_imports_no_stepup_module() -> None:
    names = _modules("provider") + _modules("resource_api")
    assert "provider.settings" in names
    assert "resource_api.bank.app" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'stepup' or m.startswith('stepup.'))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@dataclass(frozen=True)
class EmbeddedSettings:
    """An application's own settings object: not ``stepup.config.StepupConfig``."""

    issuer: str = "http://op.test"
    acr_levels: tuple[AcrLevelConfig, ...] = (
        AcrLevelConfig("urn:a:1", ("pwd",)),
        AcrLevelConfig("urn:a:2", ("pwd", "otp"), aliases=("mfa",)),
    )
    users: tuple[UserConfig, ...] = (UserConfig("carol", "correct horse"),)
    clients: tuple[ClientConfig, ...] = (
        ClientConfig("svc", client_secret="s" * 40, grant_types=("client_credentials",)),
    )
    provider: ProviderSettings = field(default_factory=ProviderSettings)
    access_token_audience: str = "https://api.test"
    api: ApiConfig = field(
        default_factory=lambda: ApiConfig(
            audience="https://api.test",
            routes=(RouteConfig("POST", "/transfers", acr_values=("mfa",)),),
        )
    )
    api_issuer: str = "http://op.test"


def test_the_provider_runs_on_settings_built_in_code(tmp_path: Path) -> None:
    app = provider.create_app(EmbeddedSettings(), database_url=f"sqlite:///{tmp_path}/op.db")
    client = app.test_client()
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == "http://op.test"
    assert meta["acr_values_supported"] == ["urn:a:1", "urn:a:2", "mfa"]
    token = client.post("/token", data={"grant_type": "client_credentials"}, auth=("svc", "s" * 40))
    assert token.status_code == 200
    assert token.get_json()["token_type"] == "Bearer"


def test_the_bank_runs_on_settings_built_in_code(tmp_path: Path) -> None:
    app = resource_api.create_app(EmbeddedSettings(), database_url=f"sqlite:///{tmp_path}/b.db")
    response = app.test_client().post("/transfers", json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer resource_metadata="http://localhost/.well-known/oauth-protected-resource"'
    )
    order = resource_api.bank.acr_order_from_config(EmbeddedSettings())
    assert order.satisfies("urn:a:2", ["mfa"])
    assert not order.satisfies("urn:a:1", ["mfa"])
