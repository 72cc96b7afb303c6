"""The quickstart's SDK script, as docs/quickstart.md prints it, run again and again (issue 16).

Each run is a new process in real life: a new ``HeadlessAuthenticator`` with no memory of the code
the last run sent. Within one 30-second step the provider refuses that code as a replay; the
authenticator must wait for the next step and send that code, and no run may fail or count
towards alice's lockout. Real provider and API over sockets on 127.0.0.1; time frozen, and the
authenticator's default sleep moves the frozen clock instead of waiting.
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select

from client_sdk.authenticators import headless
from provider.clock import Clock
from provider.models import Throttle, User
from stepup.cli import build_sandbox, sandbox_config

from ..servers import Slot, serving
from ..test_docs import ROOT, blocks

pytestmark = pytest.mark.e2e

T0 = "2026-11-21 12:00:20"  # 20 s into a TOTP step: the next one starts 10 s later
STEP = 1795262420 // 30
PRINTED = "201 {'acr': 'urn:stepup:loa:2', 'amr': ['pwd', 'otp', 'mfa']}"


def quickstart_script() -> str:
    (script,) = [
        b.commands[0]
        for b in blocks(ROOT / "docs" / "quickstart.md")
        if b.lang == "python" and "HeadlessAuthenticator" in b.commands[0]
    ]
    return script


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0) as f:
        yield f


def test_the_quickstart_script_runs_six_times_in_a_row_without_failing_or_locking_alice(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    frozen: FrozenDateTimeFactory,
) -> None:
    script = tmp_path / "transfer.py"
    script.write_text(quickstart_script())
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        frozen.tick(seconds)

    # The script as printed takes no sleep=; its authenticator uses the module's default.
    monkeypatch.setattr(headless, "_sleep", sleep)
    provider_slot, api_slot = Slot(), Slot()
    with serving(provider_slot) as issuer, serving(api_slot) as api:
        provider_app, api_app = build_sandbox(
            sandbox_config(issuer), f"sqlite:///{tmp_path}/stepup.db", Clock()
        )
        provider_slot.app, api_slot.app = provider_app, api_app
        monkeypatch.setenv("STEPUP_ISSUER", issuer)
        monkeypatch.setenv("STEPUP_API_URL", api)
        for _ in range(6):  # five refused codes in a row would lock alice out
            runpy.run_path(str(script), run_name="__main__")

    assert capsys.readouterr().out.splitlines() == [PRINTED] * 6
    # Run 1 used the step's code; run 2 was told "already used" and waited the 10 s to the next
    # step; every later run starts in the step the run before it used, and waits a whole one.
    assert slept == [10.0, 30.0, 30.0, 30.0, 30.0]
    op = provider_app.extensions["stepup_provider"]
    with op.db.session() as s:
        assert s.scalars(select(Throttle)).all() == []  # no failure left counting to a lock
        alice = s.scalar(select(User).where(User.username == "alice"))
        assert alice is not None
        assert alice.totp_last_step == STEP + 5  # one new step per run: no code accepted twice
