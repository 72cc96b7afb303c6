"""``stepup demo``: every scene behaves as narrated, and the narration says so.

One full run, plain text, checked line by line for what a learner must see; one run with
``--step`` and colour; one run whose scene fails, which must exit non-zero. The narration's
formatting is tested without servers.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from client_sdk import ApiResponseReceived
from stepup import demo
from stepup.demo import SCENES, Scene, run_demo
from stepup.narration import Check, Narrator, Style, path_of, split_header, terminal_width

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def plain() -> tuple[int, str]:
    out = io.StringIO()
    code = run_demo(step=False, color="auto", out=out, width=100)  # a StringIO is no terminal
    return code, out.getvalue()


def scene(output: str, number: int) -> str:
    start = output.index(f"Scene {number}/7")
    end = output.find(f"Scene {number + 1}/7")
    return output[start : end if end != -1 else None]


def test_every_scene_behaves_and_the_run_exits_0(plain: tuple[int, str]) -> None:
    code, output = plain
    assert code == 0, output
    assert "✗" not in output
    assert "7/7 scenes behaved as described." in output
    assert not ANSI.search(output), "plain text when not on a terminal"


def test_scene_1_reads_with_the_everyday_token(plain: tuple[int, str]) -> None:
    text = scene(plain[1], 1)
    assert "authorization request with no acr_values, no max_age, no prompt" in text
    assert "provider asks      password (pwd)\n" in text
    assert "acr=urn:stepup:loa:1  amr=[pwd]  auth_time=" in text
    assert "SDK → API          GET /accounts   (Bearer token with acr=urn:stepup:loa:1)" in text
    assert "API → SDK          200 OK" in text


def test_scene_2_shows_the_challenge_and_asks_only_the_otp(plain: tuple[int, str]) -> None:
    text = scene(plain[1], 2)
    assert "API → SDK          401 Unauthorized" in text
    assert 'WWW-Authenticate: Bearer error="insufficient_user_authentication",' in text
    assert 'acr_values="urn:stepup:loa:2",' in text
    assert "max_age=3600" in text
    assert "authorization request with acr_values=urn:stepup:loa:2, max_age=3600, no" in text
    assert "provider asks      one-time code (otp)\n" in text
    assert "password (pwd)" not in text
    assert "✓ only the OTP was asked: the provider's session already had the password" in text
    assert "acr=urn:stepup:loa:2  amr=[pwd, otp, mfa]" in text
    assert "API → SDK          201 Created" in text


def test_scene_3_has_no_step_up(plain: tuple[int, str]) -> None:
    text = scene(plain[1], 3)
    assert "✓ one request, 201 Created: no step-up on the second transfer" in text
    assert "401" not in text
    assert "authorization request" not in text


def test_scene_4_is_approved_on_alices_phone_for_that_payment_only(
    plain: tuple[int, str],
) -> None:
    text = scene(plain[1], 4)
    flat = " ".join(text.split())
    assert "POST /backchannel → 200 OK (backchannel)" in flat
    assert 'max_age=300, authorization_details="' in flat
    assert "POST /token → 400 Bad Request (ciba_poll)" in flat
    assert "alice's phone approves the payment ('PAY-1500') → 200" in flat
    assert "ID token acr=urn:stepup:loa:2 amr=[pwd, otp, mfa]" in flat
    assert (
        "✓ the new access token carries the approved payment (RFC 9396 authorization_details)"
        in flat
    )
    assert text.index("401 Unauthorized") < text.index("201 Created")


def test_scene_5_shows_the_providers_error_and_the_typed_sdk_error(
    plain: tuple[int, str],
) -> None:
    text = scene(plain[1], 5)
    assert "/otp   → 401 Unauthorized" in text
    assert 'provider says      "That is not right. Check it and try again."' in text
    assert "SDK raises         LoginFailed:" in text
    assert "201 Created" not in text


def test_scene_6_says_which_session_it_reuses_and_why_nobody_logs_in(
    plain: tuple[int, str],
) -> None:
    login_times = re.findall(r"auth_time=(\d\d:\d\d:\d\d UTC)", scene(plain[1], 2))
    text = scene(plain[1], 6)
    assert (
        "alice's browser still has its provider session from scene 2 (password and one-time "
        "code, within the level's elevation lifetime), which meets that level: no login happens"
    ) in " ".join(text.split())
    note = " ".join(text.split("SDK → API")[0].split())
    assert (
        "the SDK uses alice's browser of scenes 1-3 again (not scene 5's new device); its provider "
        f"session has her password and one-time code from scene 2's step-up at {login_times[-1]}"
    ) in note
    assert "provider asks      nothing: it answers from the existing session" in text
    assert (
        "✓ no login page: the session from scene 2 already meets urn:stepup:loa:2, and the "
        "provider answers at that level"
    ) in " ".join(text.split())


def test_scene_6_fails_bounded(plain: tuple[int, str]) -> None:
    text = scene(plain[1], 6)
    assert 'acr_values="urn:stepup:loa:3"' in text
    assert "SDK raises         LevelNotReached:" in text
    assert "SDK                stopped after 1 API request and 1 authorization request" in text
    assert "SDK raises         UnmetAuthenticationRequirements:" in text
    # once per SDK configuration: never a retry loop
    assert text.count("SDK → API          GET /vault") == 2


def test_step_waits_for_enter_and_colour_can_be_forced() -> None:
    out = io.StringIO()
    code = run_demo(step=True, color="always", out=out, stdin=io.StringIO("\n" * 6))
    output = out.getvalue()
    assert code == 0, ANSI.sub("", output)
    assert output.count("[Enter] for the next scene") == 6
    assert "\x1b[32m✓\x1b[0m" in output


def test_a_scene_that_misbehaves_makes_the_run_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(d: demo.Demo) -> list[Check]:
        return [Check(True, "this went well"), Check(False, "this did not")]

    def crashing(d: demo.Demo) -> list[Check]:
        raise RuntimeError("boom")

    monkeypatch.setattr(
        demo, "SCENES", (Scene("Broken", "…", broken), Scene("Crashing", "…", crashing))
    )
    out = io.StringIO()
    assert run_demo(step=False, color="never", out=out) == 1
    output = out.getvalue()
    assert "  ✗ this did not" in output
    assert "  ✗ the scene broke: RuntimeError: boom" in output
    assert "0/2 scenes behaved as described." in output


@pytest.fixture(scope="module")
def narrow() -> tuple[int, str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COLUMNS", "60")  # what shutil.get_terminal_size reads first
        out = io.StringIO()
        code = run_demo(step=False, color="never", out=out)
    return code, out.getvalue()


def test_output_wraps_to_the_terminals_width(narrow: tuple[int, str]) -> None:
    code, output = narrow
    assert code == 0, output
    assert "7/7 scenes behaved as described." in output
    too_long = [line for line in output.splitlines() if len(line) > 60]
    # Only a single word too long for any line (a URL, a JSON value) may stick out.
    assert [line for line in too_long if len(line.split()) > 1] == []
    # resource_metadata's URL (RFC 9728) is on every challenge the narration shows; scene 4's
    # authorization_details (base64url, and the JSON the SDK asks for) are single words too.
    long_words = [line for line in too_long if "resource_metadata=" not in line]
    assert len([line for line in long_words if "authorization_details" not in line]) <= 3
    # Narrow: who speaks on one line, what it says under it.
    assert "\n  provider asks\n    password (pwd)\n" in output
    assert "\n  API → SDK\n    401 Unauthorized\n" in output


@pytest.mark.parametrize(("columns", "width"), [("60", 60), ("300", 100), ("12", 40)])
def test_terminal_width_follows_the_terminal_within_bounds(
    columns: str, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    assert terminal_width() == width


def test_ctrl_c_exits_130_quietly() -> None:
    # As a terminal starts it: SIGINT at its default (a test runner may have been started with it
    # ignored, which Python then keeps and passes on — then no KeyboardInterrupt can be raised).
    launch = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['stepup', 'demo', '--step', '--color', 'never']; "
        "runpy.run_module('stepup.cli', run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", launch],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the signal can reach nothing else
    )
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + 120
    while b"[Enter] for the next scene" not in seen and time.monotonic() < deadline:
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    assert b"[Enter] for the next scene" in seen, seen.decode()
    process.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
    # stdin stays open until the process has ended: only the signal can end the pause (closing
    # it first would end the pause by EOF and race the signal).
    assert process.wait(timeout=60) == 130
    assert process.stderr is not None
    err = process.stderr.read()
    assert err == b"\n"  # ends the "^C" line; no traceback


def test_seven_scenes() -> None:
    assert len(SCENES) == 7


def test_scene_7_creates_a_passkey_in_the_step_up_then_signs_in_with_it_alone(
    plain: tuple[int, str],
) -> None:
    text = scene(plain[1], 7)
    assert 'acr_values="phr"' in text
    first, second = text.split("A new device")
    assert "provider asks      passkey\n" in first
    assert "/passkey/register   → 303 See Other" in first
    assert "acr=phr  amr=[swk, pin, mfa]" in first
    assert "SDK → API          GET /wire   (Bearer token with acr=phr" in first
    assert "provider asks      passkey\n" in second
    assert "provider asks      password" not in second
    assert "/passkey   → 303 See Other" in second


# --- narration, without servers --------------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "choice", "color"),
    [
        (io.StringIO(), "auto", False),
        (FakeTTY(), "auto", True),
        (FakeTTY(), "never", False),
        (io.StringIO(), "always", True),
    ],
)
def test_colour_only_on_a_terminal_unless_told(
    stream: io.StringIO, choice: str, color: bool
) -> None:
    assert Style.for_stream(stream, choice).color is color


def test_ascii_symbols_when_the_stream_cannot_encode_them() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    style = Style.for_stream(stream, "never")
    assert (style.arrow, style.ok_mark, style.fail_mark) == ("->", "OK", "FAIL")


def test_challenge_header_is_cut_between_parameters_only() -> None:
    value = 'Bearer error="insufficient_user_authentication", error_description="a, b", max_age=5'
    assert split_header(value) == [
        'Bearer error="insufficient_user_authentication",',
        'error_description="a, b",',
        "max_age=5",
    ]


def test_paths_shorten_opaque_ids() -> None:
    url = "http://127.0.0.1:1/interaction/Hh-dYIdjFoQDUwceEolW-OuY6_1WjTM8/otp?x=1"
    assert path_of(url) == "/interaction/Hh-dYI…/otp?…"


def test_response_line_shows_status_and_challenge() -> None:
    out = io.StringIO()
    narrator = Narrator(out, Style(False), now=lambda: 0, names={})
    narrator(ApiResponseReceived("GET", "http://api/x", 401, ('Bearer error="x", max_age=1',)))
    assert out.getvalue() == (
        "  API → SDK          401 Unauthorized\n"
        '                     WWW-Authenticate: Bearer error="x",\n'
        "                         max_age=1\n"
    )
