"""``stepup gateway`` and ``stepup sideband`` as a user runs them: options, the listening line,
a served request, and one-line errors for a bad config, a bad upstream and a taken port."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import requests

from .support import STEPUP, echo_upstream, running_command

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "stepup.toml"
    path.write_text((ROOT / "stepup" / "sandbox.toml").read_text())
    return path


def test_sideband_command_serves(config_file: Path) -> None:
    with running_command("sideband", "--config", str(config_file), "--port", "0") as (label, url):
        assert label == "Sideband"
        assert requests.get(url + "/health", timeout=10).json() == {"status": "ok"}
        response = requests.get(url + "/sideband/nginx", timeout=10, headers={
            "X-Original-Method": "GET", "X-Original-URI": "/accounts"})  # fmt: skip
        assert response.status_code == 401
        assert response.headers["X-Stepup-Status"] == "401"


def test_gateway_command_proxies(config_file: Path) -> None:
    with echo_upstream() as echo:
        args = ("gateway", "--config", str(config_file), "--upstream", echo.url, "--port", "0",
                "--public", "/health")  # fmt: skip
        with running_command(*args) as (label, url):
            assert label == "Gateway"
            forwarded = requests.get(url + "/health", timeout=10, headers={
                "X-Forwarded-For": "203.0.113.9", "X_Stepup_Subject": "mallory",
                "X-Stepup-Acr": "urn:stepup:loa:2"})  # fmt: skip
            assert forwarded.status_code == 200
            assert requests.get(url + "/accounts", timeout=10).status_code == 401
    [got] = echo.received
    assert got.target == "/health"
    # granian rewrites nothing from X-Forwarded-*: the real peer is appended
    assert got.header("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert [k for k, _ in got.headers if "stepup" in k.lower()] == []


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STEPUP, *args], capture_output=True, text=True, timeout=60)


def test_errors_are_one_line(config_file: Path, tmp_path: Path) -> None:
    bad = run("gateway", "--config", str(config_file), "--upstream", "ftp://x", "--port", "0")
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith(
        "error: argument --upstream: must be an http(s) URL, not 'ftp://x'"
    )
    missing = run("sideband", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = run("sideband", "--config", str(config_file), "--port", port)
    assert busy.returncode == 1
    assert busy.stderr.strip() == (
        f"stepup sideband: port {port} is already in use on 127.0.0.1; "
        "choose another with --port PORT"
    )
    assert busy.stdout == ""
    needs = run("gateway", "--config", str(config_file))
    assert needs.returncode == 2
    assert "--upstream" in needs.stderr
