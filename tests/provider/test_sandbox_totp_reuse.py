"""``[provider] sandbox_allow_totp_reuse``: the one switch that turns the TOTP replay check off.

Sandbox mode only, off unless asked for, refused everywhere else (config file, settings object,
command line), and shown on ``/sandbox``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from freezegun.api import FrozenDateTimeFactory

from provider import create_app
from provider.factors import totp
from provider.models import Throttle
from stepup.config import ConfigError, ProviderSettings, StepupConfig, parse_config

from ..test_cli_servers import _banner
from .conftest import T0_EPOCH
from .flow import ALICE_SECRET, LOA2, Browser, Client, claims, parse_page

CODE = totp.code_at(ALICE_SECRET, T0_EPOCH)
REPLAYED = "That code was already used. Wait for the next code and enter it."


def reuse_app(config: StepupConfig, database_url: str) -> Flask:
    settings = replace(config.provider, sandbox_allow_totp_reuse=True)
    return create_app(replace(config, provider=settings), database_url=database_url)


def second_device_types(app: Flask, code: str) -> tuple[int, str]:
    """A new browser logs alice in with her password, then types ``code`` at the OTP step."""
    other = Browser(app)
    client = Client(other)
    other.login_through(client.authorize(acr_values=LOA2), max_pages=2)
    assert other.pages == ["password"]
    page = other.get(client.authorize(acr_values=LOA2).location)
    assert other.page_kind(page.get_data(as_text=True)) == "otp"
    response = other.submit(page, {"one-time-code": code})
    return response.status_code, response.get_data(as_text=True)


def test_off_by_default_a_used_code_is_a_replay_the_page_marks_for_scripts(
    app: Flask, cli: Client, frozen: FrozenDateTimeFactory
) -> None:
    assert app.extensions["stepup_provider"].config.provider.sandbox_allow_totp_reuse is False
    cli.tokens(acr_values=LOA2)  # alice used this step's code
    status, html = second_device_types(app, CODE)
    assert status == 401
    assert parse_page(html).alerts == [REPLAYED]
    # The machine code scripts (the SDK's HeadlessAuthenticator) read instead of the wording.
    assert f'role="alert" id="form-error" data-error="replayed">{REPLAYED}</p>' in html


def test_on_in_the_sandbox_the_same_code_is_accepted_again(
    config: StepupConfig, database_url: str, frozen: FrozenDateTimeFactory
) -> None:
    app = reuse_app(config, database_url)
    first = Client(Browser(app))
    claims(app, first.tokens(acr_values=LOA2)["id_token"])
    for _ in range(6):  # more than the five failures that would lock alice out
        other = Browser(app)
        client = Client(other)
        tokens = client.tokens(acr_values=LOA2)
        assert other.pages == ["password", "otp"]
        idt = claims(app, tokens["id_token"])
        assert (idt["acr"], idt["amr"]) == (LOA2, ["pwd", "otp", "mfa"])
    with app.extensions["stepup_provider"].db.session() as s:
        assert s.query(Throttle).count() == 0  # no failure was counted


def test_on_a_wrong_code_is_still_wrong(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory
) -> None:
    app = reuse_app(config, sqlite_url)
    wrong = "000000" if CODE != "000000" else "111111"
    status, html = second_device_types(app, wrong)
    assert status == 401
    assert parse_page(html).alerts == ["That is not right. Check it and try again."]


@pytest.mark.parametrize("on", [False, True])
def test_shown_on_the_sandbox_page_and_in_its_json(
    config: StepupConfig, sqlite_url: str, frozen: FrozenDateTimeFactory, on: bool
) -> None:
    app = reuse_app(config, sqlite_url) if on else create_app(config, database_url=sqlite_url)
    http = app.test_client()
    listing = http.get("/sandbox", headers={"Accept": "application/json"}).get_json()
    assert listing["settings"]["sandbox_allow_totp_reuse"] is on
    html = http.get("/sandbox").get_data(as_text=True)
    if on:
        assert "<strong>the replay check is off</strong>" in html
        assert "<code>sandbox_allow_totp_reuse = true</code>" in html
    else:
        assert "each code is accepted once (replay check on)" in html
        assert "sandbox_allow_totp_reuse" not in html


# --- refused outside sandbox mode -----------------------------------------------------------------

BASE = {
    "issuer": "http://127.0.0.1:9000",
    "acr_levels": [{"value": "urn:stepup:loa:1", "factors": ["pwd"]}],
}


def test_the_config_file_refuses_it_without_sandbox_mode() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "provider": {"sandbox_allow_totp_reuse": True}}, source="t.toml")
    assert str(caught.value) == (
        "t.toml: provider.sandbox_allow_totp_reuse: only in sandbox mode; it needs sandbox = true"
    )
    on = parse_config({**BASE, "provider": {"sandbox": True, "sandbox_allow_totp_reuse": True}})
    assert on.provider.sandbox_allow_totp_reuse is True
    assert parse_config({**BASE, "provider": {"sandbox": True}}).provider == ProviderSettings(
        sandbox=True
    )


def test_the_settings_object_refuses_it_without_sandbox_mode() -> None:
    with pytest.raises(ValueError, match="needs \\[provider\\] sandbox = true"):
        ProviderSettings(sandbox_allow_totp_reuse=True)
    with pytest.raises(ValueError, match="needs \\[provider\\] sandbox = true"):
        replace(ProviderSettings(sandbox=True, sandbox_allow_totp_reuse=True), sandbox=False)


def test_the_command_line_refuses_it_without_sandbox_mode(tmp_path: Path) -> None:
    config = tmp_path / "prod.toml"
    config.write_text(
        'issuer = "http://127.0.0.1:9000"\n'
        '[[acr_levels]]\nvalue = "urn:stepup:loa:1"\nfactors = ["pwd"]\n'
    )
    for command, ports in (("provider", ["--port", "0"]), ("sandbox", ["--provider-port", "0"])):
        # A real process with a deadline: were the option ignored, the server would run forever.
        database = f"sqlite:///{tmp_path / 'db'}"
        done = subprocess.run(
            [sys.executable, "-m", "stepup.cli", command, "--config", str(config), *ports,
             "--allow-totp-reuse", "--database", database],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr == (
            "stepup: configuration error: --allow-totp-reuse: provider.sandbox_allow_totp_reuse "
            "is a sandbox setting: it needs [provider] sandbox = true\n"
        )


@pytest.mark.e2e
def test_the_sandbox_started_with_the_option_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stepup.db'}"
    argv = ["sandbox", "--provider-port", "0", "--api-port", "0", "--database", url]
    banner = _banner([*argv, "--allow-totp-reuse"])
    line = "Sandbox: one-time codes may be reused within their 30 s step (replay check off)\n"
    assert line in banner
    assert line not in _banner(argv)
