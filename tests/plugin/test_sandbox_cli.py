"""``stepup clock`` and ``stepup token`` against a running sandbox (the plugin's fixture)."""

from __future__ import annotations

import argparse
import io
import socket
import time
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from stepup.cli import main
from stepup.inprocess import Sandbox
from stepup.sandbox_cli import duration, negative_values

pytestmark = pytest.mark.e2e

LOA2 = "urn:stepup:loa:2"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def decode(sandbox: Sandbox, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(requests.get(f"{sandbox.issuer}/jwks", timeout=10).json())
    return dict(jwt.decode(token, keys).claims)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("-2h", -7200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "1.5h", "h", "10 m", "\u0661\u0660m", "9999999999s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        duration(text)


def test_negative_values_reach_their_options() -> None:
    assert negative_values(["token", "--user", "a", "--auth-time", "-2h"]) == [
        "token", "--user", "a", "--auth-time=-2h"
    ]  # fmt: skip
    assert negative_values(["clock", "advance", "-10m", "--issuer", "http://h"]) == [
        "clock", "advance", " -10m", "--issuer", "http://h"
    ]  # fmt: skip
    assert negative_values(["clock", "advance", "10m"]) == ["clock", "advance", "10m"]


def test_clock_advance_moves_the_running_sandbox(
    stepup_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run("clock", "advance", "10m", "--issuer", stepup_sandbox.issuer)
    assert status == 0
    assert stepup_sandbox.clock.offset == 600
    assert out.startswith("Sandbox time: ")
    assert out.endswith(f"epoch {stepup_sandbox.now()} (+600 s from the real clock)\n")
    assert run("clock", "advance", "-10m", "--issuer", stepup_sandbox.issuer)[0] == 0
    assert stepup_sandbox.clock.offset == 0
    status, out = run("clock", "show", "--issuer", stepup_sandbox.issuer)
    assert out.endswith("(the real time)\n")


def test_clock_set(stepup_sandbox: Sandbox) -> None:
    target = int(time.time()) + 86400
    assert run("clock", "set", str(target), "--issuer", stepup_sandbox.issuer)[0] == 0
    assert stepup_sandbox.clock.offset in (86400, 86399)


def test_token_with_chosen_claims(stepup_sandbox: Sandbox) -> None:
    stepup_sandbox.advance_clock(3600)
    status, out = run(
        "token", "--issuer", stepup_sandbox.issuer, "--user", "alice", "--acr", LOA2,
        "--amr", "pwd,otp", "--auth-time", "-2h", "--scope", "openid accounts:read",
    )  # fmt: skip
    assert status == 0
    claims = decode(stepup_sandbox, out.strip())
    assert (claims["acr"], claims["amr"], claims["scope"]) == (
        LOA2, ["pwd", "otp", "mfa"], "openid accounts:read"
    )  # fmt: skip
    # Two hours before the sandbox's (moved) now, not the wall clock's.
    assert stepup_sandbox.now() - claims["auth_time"] in (7200, 7201)


def test_token_with_the_id_token(stepup_sandbox: Sandbox) -> None:
    status, out = run("token", "--issuer", stepup_sandbox.issuer, "--user", "bob", "--id-token")
    assert status == 0
    access, id_token = out.splitlines()
    assert decode(stepup_sandbox, access)["acr"] == "urn:stepup:loa:1"
    assert decode(stepup_sandbox, id_token)["sub"] == decode(stepup_sandbox, access)["sub"]


def test_token_refused_says_why(
    stepup_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run("token", "--issuer", stepup_sandbox.issuer, "--user", "carol")
    assert (status, out) == (1, "")
    assert capsys.readouterr().err == "stepup token: no user 'carol'\n"


def test_no_sandbox_listening(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        status, _ = run("clock", "advance", "1m", "--issuer", issuer)
    assert status == 1
    assert capsys.readouterr().err == (
        f"stepup clock: no sandbox answers at {issuer} "
        "(start one with `stepup sandbox`, or pass --issuer)\n"
    )


def test_clock_advance_needs_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("clock", "advance")[0] == 2
    assert (
        capsys.readouterr().err == "stepup clock: advance needs a value (advance 10m, set EPOCH)\n"
    )


def test_fault_arms_lists_and_clears(stepup_sandbox: Sandbox) -> None:
    issuer = ("--issuer", stepup_sandbox.issuer)
    assert run("fault", "cancel", "alice", "--count", "2", *issuer) == (
        0,
        "cancel: alice's next 2 logins\n",
    )
    assert run("fault", "down", "2m", *issuer) == (
        0,
        "The provider is down for 120 more s of sandbox time.\ncancel: alice's next 2 logins\n",
    )
    assert requests.get(f"{stepup_sandbox.issuer}/jwks", timeout=10).status_code == 503
    assert stepup_sandbox.faults()["faults"] == [{"user": "alice", "fault": "cancel", "count": 2}]
    assert run("fault", "clear", *issuer) == (0, "No fault is armed.\n")
    assert run("fault", "list", *issuer) == (0, "No fault is armed.\n")
    assert requests.get(f"{stepup_sandbox.issuer}/jwks", timeout=10).status_code == 200


def test_fault_refusals(stepup_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    issuer = ("--issuer", stepup_sandbox.issuer)
    assert run("fault", "refuse", *issuer)[0] == 2
    assert "refuse needs a username" in capsys.readouterr().err
    assert run("fault", "cancel", "mallory", *issuer)[0] == 1
    assert "no user 'mallory'" in capsys.readouterr().err
    assert stepup_sandbox.faults() == {"faults": [], "down": None}
