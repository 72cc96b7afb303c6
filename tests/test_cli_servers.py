"""The server commands as a user meets them: ``--version``, a port that is taken, and the sandbox
banner, which must describe the users as the database has them (not as the config seeded them)."""

from __future__ import annotations

import gc
import io
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from provider import create_app
from provider.models import User
from stepup.cli import main, sandbox_config

ROOT = Path(__file__).resolve().parent.parent
BOB_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
SANDBOX_TOML = str(ROOT / "stepup" / "sandbox.toml")


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


def test_version_prints_the_installed_version_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out == f"stepup {version}\n"


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["provider", "--port", "{taken}", "--database", "{db}"], "--port"),
        (["api", "--port", "{taken}", "--database", "{db}"], "--port"),
        (
            ["sandbox", "--provider-port", "{taken}", "--api-port", "0", "--database", "{db}"],
            "--provider-port",
        ),
        (
            ["sandbox", "--provider-port", "0", "--api-port", "{taken}", "--database", "{db}"],
            "--api-port",
        ),
        (
            [
                "gateway",
                "--config",
                SANDBOX_TOML,
                "--upstream",
                "http://127.0.0.1:1",
                "--port",
                "{taken}",
            ],
            "--port",
        ),
        (["sideband", "--config", SANDBOX_TOML, "--port", "{taken}"], "--port"),
    ],
)
def test_a_taken_port_is_one_line_naming_the_option_before_anything_else(
    argv: list[str],
    option: str,
    taken: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    database = tmp_path / "stepup.db"
    args = [a.replace("{taken}", str(taken)).replace("{db}", f"sqlite:///{database}") for a in argv]
    code = main(args, out=out)
    assert code == 1
    assert out.getvalue() == ""  # no banner, no URLs: nothing before the error
    assert capsys.readouterr().err == (
        f"stepup {argv[0]}: port {taken} is already in use on 127.0.0.1; "
        f"choose another with {option} PORT\n"
    )
    assert not database.exists()  # it stopped before opening the database


def test_the_provider_port_is_released_when_the_api_port_is_taken(
    taken: int, tmp_path: Path
) -> None:
    provider_port = free_port()
    argv = ["sandbox", "--provider-port", str(provider_port), "--api-port", str(taken)]
    assert main([*argv, "--database", f"sqlite:///{tmp_path / 'db'}"], out=io.StringIO()) == 1
    with socket.create_server(("127.0.0.1", provider_port)):
        pass  # free again


def test_an_unknown_host_names_the_host_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["provider", "--host", "no-such-host.invalid"], out=io.StringIO())
    assert code == 1
    assert capsys.readouterr().err == (
        "stepup provider: cannot listen on no-such-host.invalid: no such host; "
        "choose another with --host\n"
    )


def test_a_server_command_that_fails_leaves_the_collector_on() -> None:
    """main() turns the garbage collector off while a server starts (docs/benchmarks.md); a
    start that fails must not leave it off in the calling process."""
    assert gc.isenabled()
    assert main(["provider", "--host", "no-such-host.invalid"], out=io.StringIO()) == 1
    assert gc.isenabled()


def _banner(argv: list[str]) -> str:
    """Start ``stepup ARGV`` for real, read what it prints until it is listening, stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stepup.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    timer = threading.Timer(60, process.kill)  # a hung start fails the test, never the suite
    timer.start()
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                break
    finally:
        timer.cancel()
        process.terminate()
        process.wait(timeout=30)
    return "".join(lines)


@pytest.mark.e2e
def test_sandbox_banner_shows_a_totp_enrolled_in_the_browser(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stepup.db'}"
    app = create_app(sandbox_config(), database_url=url)
    with app.extensions["stepup_provider"].db.session() as s:
        s.query(User).filter_by(username="bob").one().totp_secret = BOB_SECRET
        s.commit()
    banner = _banner(["sandbox", "--provider-port", "0", "--api-port", "0", "--database", url])
    assert "  bob      password: builder      password + TOTP (enrolled in the browser)\n" in banner
    assert f"           TOTP secret: {BOB_SECRET}\n" in banner
    assert "           current code: stepup totp bob\n" in banner
    assert "password only" not in banner


@pytest.mark.e2e
def test_provider_banner_of_a_fresh_database_says_bob_has_a_password_only(
    tmp_path: Path,
) -> None:
    banner = _banner(["provider", "--port", "0", "--database", f"sqlite:///{tmp_path / 'db'}"])
    assert "  bob      password: builder      password only (enrols TOTP on step-up)\n" in banner
    assert "  alice    password: wonderland   password + TOTP\n" in banner
    listening = [line for line in banner.splitlines() if line.startswith("Provider listening")]
    port = int(listening[0].rsplit(":", 1)[1])
    assert f"Issuer: http://127.0.0.1:{port}\n" in banner  # --port 0: the port really bound
    assert (
        "Passkeys: browsers refuse the IP address 127.0.0.1 as a WebAuthn RP ID; for passkeys "
        "in a browser, start with --host localhost\n"
    ) in banner


@pytest.mark.e2e
def test_sandbox_on_localhost_serves_passkeys_at_a_host_name(tmp_path: Path) -> None:
    """DESIGN.md contract 13: `stepup sandbox --host localhost` serves http://localhost:PORT."""
    url = f"sqlite:///{tmp_path / 'stepup.db'}"
    banner = _banner(
        [
            "sandbox",
            "--host",
            "localhost",
            "--provider-port",
            "0",
            "--api-port",
            "0",
            "--database",
            url,
        ]
    )
    listening = [line for line in banner.splitlines() if line.startswith("Provider listening")]
    port = int(listening[0].rsplit(":", 1)[1])
    assert f"Issuer: http://localhost:{port}\n" in banner
    assert f"Passkeys: RP ID localhost, origin http://localhost:{port}\n" in banner
