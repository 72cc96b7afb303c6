"""``stepup totp USER`` and the ``demo`` command's arguments, through ``stepup.cli.main``.

Where the database is by default, and the commands that find none, are in ``test_state.py``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from freezegun import freeze_time

from provider import create_app
from provider.factors import totp
from provider.models import User
from stepup.cli import build_parser, main, sandbox_config
from tests.hostile import HUGE_INTEGER, NOT_ASCII_INTEGERS

ALICE_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
BOB_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
T0 = 1795262400  # 2026-11-21 12:00:00 UTC


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def started(tmp_path: Path, name: str = "stepup.db") -> str:
    """A database the sandbox provider has started on (users seeded)."""
    url = f"sqlite:///{tmp_path / name}"
    create_app(sandbox_config(), database_url=url).extensions["stepup_provider"].db.dispose()
    return url


@freeze_time("2026-11-21 12:00:00")
def test_totp_prints_the_current_code_of_a_seeded_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = started(tmp_path)
    capsys.readouterr()
    code, out = run("totp", "alice", "--database", url)
    assert (code, out) == (0, f"{totp.code_at(ALICE_SECRET, T0)}\n")
    # The code alone on stdout (for scripts); where it came from on stderr.
    assert capsys.readouterr().err == f"stepup totp: alice's code from {url}\n"


def test_totp_follows_the_clock(tmp_path: Path) -> None:
    db = started(tmp_path)
    with freeze_time("2026-11-21 12:00:00") as frozen:
        first = run("totp", "alice", "--database", db)[1]
        frozen.tick(30)
        second = run("totp", "alice", "--database", db)[1]
    assert (first, second) == (
        f"{totp.code_at(ALICE_SECRET, T0)}\n",
        f"{totp.code_at(ALICE_SECRET, T0 + 30)}\n",
    )


@freeze_time("2026-11-21 12:00:00")
def test_totp_reads_a_secret_enrolled_in_the_flow_from_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stepup.db'}"
    app = create_app(sandbox_config(), database_url=url)
    with app.extensions["stepup_provider"].db.session() as s:
        s.query(User).filter_by(username="bob").one().totp_secret = BOB_SECRET
        s.commit()
    assert run("totp", "bob", "--database", url) == (0, f"{totp.code_at(BOB_SECRET, T0)}\n")


def test_totp_for_a_user_without_the_factor_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = started(tmp_path)
    capsys.readouterr()
    code, out = run("totp", "bob", "--database", url)
    assert (code, out) == (1, "")
    assert capsys.readouterr().err == (
        f"stepup totp: 'bob' has no TOTP factor yet in {url}; "
        "it is set up at the user's first step-up\n"
    )


def test_totp_without_a_database_says_where_it_looked_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run("totp", "alice", "--database", f"sqlite:///{tmp_path / 'none.db'}")
    assert (code, out) == (1, "")
    assert capsys.readouterr().err == (
        f"stepup totp: no database at {tmp_path / 'none.db'}: start `stepup sandbox` "
        "(or `stepup provider`) first, or pass the server's --database\n"
    )
    assert not (tmp_path / "none.db").exists()


def test_demo_arguments() -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).color == "auto"
    args = parser.parse_args(["demo", "--step", "--color", "never"])
    assert (args.step, args.color) == (True, "never")
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--color", "sometimes"])


def test_totp_for_an_unknown_user_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = started(tmp_path)
    capsys.readouterr()
    code, out = run("totp", "mallory", "--database", url)
    assert (code, out) == (1, "")
    assert capsys.readouterr().err == f"stepup totp: no user 'mallory' in {url}\n"


def test_totp_with_a_database_without_provider_tables_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    url = f"sqlite:///{tmp_path / 'other.db'}"
    code, out = run("totp", "alice", "--database", url)
    assert (code, out) == (1, "")
    assert capsys.readouterr().err == f"stepup totp: {url} holds no stepup provider tables\n"


@freeze_time("2026-11-21 12:00:00")
def test_totp_reads_a_secret_enrolled_on_postgresql(postgres_url: str) -> None:
    app = create_app(sandbox_config(), database_url=postgres_url)
    db = app.extensions["stepup_provider"].db
    with db.session() as s:
        bob = s.query(User).filter_by(username="bob").one()
        bob.totp_secret = BOB_SECRET
        s.commit()
    code, out = run("totp", "bob", "--database", postgres_url)
    assert (code, out) == (0, f"{totp.code_at(BOB_SECRET, T0)}\n")


@pytest.mark.parametrize("flag", ["--port", "--provider-port", "--api-port"])
@pytest.mark.parametrize("value", [*NOT_ASCII_INTEGERS, HUGE_INTEGER, "65536", ""])
def test_ports_are_ascii_digits_from_0_to_65535(flag: str, value: str) -> None:
    command = "sandbox" if flag != "--port" else "provider"
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, flag, value])
    assert exit_.value.code == 2  # argparse's usage error


def test_ports_accept_ascii_digits() -> None:
    assert build_parser().parse_args(["provider", "--port", "0"]).port == 0
    args = build_parser().parse_args(["sandbox", "--provider-port", "09000", "--api-port", "65535"])
    assert (args.provider_port, args.api_port) == (9000, 65535)


def test_the_sandbox_banner_says_what_each_client_is_for() -> None:
    """A client without redirect URIs never meets a browser: the banner gives its grants and
    scope instead of an empty redirect, so a newcomer can tell the CIBA and factor-API clients
    apart; the client ids line up whatever their length."""
    from stepup.cli import print_credentials

    out = io.StringIO()
    print_credentials(sandbox_config(), out)
    clients = out.getvalue().split("Clients:\n", 1)[1].strip("\n").splitlines()
    by_id = {line.split()[0]: line for line in clients}
    assert (
        by_id["bank-cli"]
        == "  bank-cli       public (PKCE); redirect: http://127.0.0.1:8765/callback"
    )
    assert by_id["bank-payments"].endswith(
        " grants: urn:openid:params:grant-type:ciba; scope: openid profile"
    )
    assert by_id["back-office"].endswith(" grants: client_credentials; scope: stepup:factors")
    assert {
        line.index("public") if "public" in line else line.index("confidential") for line in clients
    } == {17}
