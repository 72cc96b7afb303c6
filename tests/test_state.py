"""Where the command keeps its state (issue 16): a default database that does not depend on the
working directory, announced by every command; commands that find no database say so instead of
creating one; a database that cannot be opened is one line on stderr; ``stepup sandbox --reset``
starts over and says what it removed. ``tests/conftest.py`` points ``XDG_DATA_HOME`` at a
temporary folder, so none of this touches the real per-user directory."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from provider import create_app
from provider.db import data_directory, default_database_url, display_url
from provider.factors import totp
from provider.models import SigningKey, User
from stepup.cli import build_sandbox, main, sandbox_config
from stepup.database import reset_database

BOB_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
T0 = 1795262400  # 2026-11-21 12:00:00 UTC
STEPUP = Path(sys.executable).parent / "stepup"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


# --- the default location ------------------------------------------------------------------------


def test_the_default_database_is_in_the_xdg_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_database_url() == f"sqlite:///{tmp_path / 'data' / 'stepup' / 'stepup.db'}"
    monkeypatch.chdir(tmp_path)  # not where a command starts
    assert default_database_url() == f"sqlite:///{tmp_path / 'data' / 'stepup' / 'stepup.db'}"


def test_without_xdg_data_home_it_is_under_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_directory() == tmp_path / ".local" / "share" / "stepup"
    # The XDG spec: a relative path is invalid and ignored.
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert data_directory() == tmp_path / ".local" / "share" / "stepup"


def test_commands_run_elsewhere_find_the_providers_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue: started in one folder, the provider's state was invisible from another —
    `stepup totp bob` said bob had no factor, `stepup rotate-keys` changed nothing."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    app = create_app(sandbox_config())  # the default database
    op = app.extensions["stepup_provider"]
    with op.db.session() as s:
        s.scalars(select(User).where(User.username == "bob")).one().totp_secret = BOB_SECRET
        s.commit()
    old_kid = op.keys.kid
    op.db.dispose()

    monkeypatch.chdir(tmp_path / "elsewhere")
    where = default_database_url()
    with freeze_time("2026-11-21 12:00:00"):
        assert run("totp", "bob") == (0, f"{totp.code_at(BOB_SECRET, T0)}\n")
    assert capsys.readouterr().err == f"stepup totp: bob's code from {where}\n"
    code, out = run("rotate-keys")
    assert code == 0
    kid = re.match(r"New signing key (\S+) in (\S+)\. ", out)
    assert kid is not None
    assert kid.group(2) == where
    with op.db.session() as s:
        current = s.scalars(select(SigningKey.kid).where(SigningKey.retired_at.is_(None))).all()
    assert current == [kid.group(1)]
    assert kid.group(1) != old_kid
    assert not list((tmp_path / "elsewhere").iterdir())  # nothing was created here


def test_rotate_keys_without_a_database_says_so_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "none" / "stepup.db"
    assert run("rotate-keys", "--database", f"sqlite:///{path}") == (1, "")
    assert capsys.readouterr().err == (
        f"stepup: no database at {path}: start `stepup sandbox` (or `stepup provider`) first, "
        "or pass the server's --database\n"
    )
    assert not path.parent.exists()


def test_a_0_1_0_database_in_the_current_folder_gets_a_note_on_how_to_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    create_app(sandbox_config(), database_url="sqlite:///.stepup/stepup.db")
    capsys.readouterr()
    assert run("totp", "bob")[0] == 1  # the new default has no database yet
    assert capsys.readouterr().err.splitlines()[0] == (
        f"stepup: note: {tmp_path / '.stepup' / 'stepup.db'} is a database of stepup 0.1.0, "
        f"which kept it under the current folder; this build uses {data_directory()}"
        "/stepup.db. To keep using the old one: --database sqlite:///.stepup/stepup.db"
    )


# --- databases that cannot be opened -------------------------------------------------------------


def test_a_database_that_cannot_be_opened_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}"  # a folder, not a file
    assert run("api", "--port", "0", "--database", url) == (1, "")
    assert capsys.readouterr().err == (
        f"stepup: cannot open the database {url}: unable to open database file\n"
    )


def test_postgresql_without_its_driver_says_to_install_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    commands = [
        ["provider", "--port", "0"],
        ["api", "--port", "0"],
        ["sandbox", "--provider-port", "0", "--api-port", "0"],
        ["db", "upgrade"],
    ]
    for argv in commands:
        assert run(*argv, "--database", "postgresql://u@127.0.0.1:5432/x") == (1, "")
        assert capsys.readouterr().err == (
            "stepup: PostgreSQL needs its driver: pip install 'stepup-stack[postgres]'\n"
        )


# --- servers from an empty folder, announcing their database -------------------------------------


def start(argv: list[str], cwd: Path, labels: int) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``stepup ARGV`` in ``cwd``; return once ``labels`` servers listen (or it ended)."""
    process = subprocess.Popen(
        [str(STEPUP), *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if sum(" listening on http://" in x for x in lines) == labels:
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout=90)
    return process, lines


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["api", "provider"])
def test_a_server_alone_in_an_empty_folder_starts_with_its_defaults(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16, item 3: `stepup api` in a fresh folder died with `unable to open database
    file` (its default database's folder did not exist)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # not created yet
    (tmp_path / "empty").mkdir()
    process, lines = start([command, "--port", free_port()], tmp_path / "empty", 1)
    try:
        assert process.poll() is None, "".join(lines)
        assert f"Database: sqlite:///{tmp_path}/data/stepup/stepup.db\n" in lines
    finally:
        stop(process)
    assert not list((tmp_path / "empty").iterdir())  # nothing written where it was started


@pytest.mark.e2e
def test_sandbox_reset_starts_over_and_says_what_it_removed(tmp_path: Path) -> None:
    ports = ["--provider-port", free_port(), "--api-port", free_port()]
    url = f"sqlite:///{tmp_path / 'sandbox.db'}"
    process, lines = start(["sandbox", "--reset", "--database", url, *ports], tmp_path, 2)
    stop(process)
    assert f"Reset: nothing to remove, no database at {tmp_path / 'sandbox.db'}\n" in lines
    assert f"Database: {url}\n" in lines
    process, lines = start(["sandbox", "--reset", "--database", url, *ports], tmp_path, 2)
    try:
        assert process.poll() is None, "".join(lines)
        removed = [x for x in lines if x.startswith("Reset: removed")]
        assert removed == [
            f"Reset: removed the file {tmp_path / 'sandbox.db'} (2 op_users, 6 op_clients, "
            "1 op_signing_keys, 1 op_settings)\n"
        ]
    finally:
        stop(process)


def test_reset_removes_what_the_sandbox_holds_on_either_database(database_url: str) -> None:
    config = sandbox_config()
    provider_app, api_app = build_sandbox(config, database_url)
    op = provider_app.extensions["stepup_provider"]
    with op.db.session() as s:
        bob = s.scalars(select(User).where(User.username == "bob")).one()
        bob.totp_secret = BOB_SECRET
        s.commit()
    op.db.dispose()
    api_app.extensions["bank"].engine.dispose()

    out = io.StringIO()
    reset_database(database_url, out)
    sqlite = database_url.startswith("sqlite")
    what = (
        f"the file {database_url.removeprefix('sqlite:///')}"
        if sqlite
        else f"stepup's tables in {display_url(database_url)}"
    )
    assert out.getvalue() == (
        f"Reset: removed {what} (2 op_users, 6 op_clients, 1 op_signing_keys, 1 op_settings)\n"
    )
    # Started again, it is the seeded state: bob has no factor yet.
    provider_app, _ = build_sandbox(config, database_url)
    with provider_app.extensions["stepup_provider"].db.session() as s:
        bob = s.scalars(select(User).where(User.username == "bob")).one()
        assert bob.totp_secret is None
