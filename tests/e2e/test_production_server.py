"""``stepup provider --workers 2`` — the production server, several processes — against PostgreSQL.

Every request may land on either worker, so these pass only if nothing relies on one process: the
browser session and its cookie secret, the login throttle, authorization codes, refresh-token
rotation and reuse detection, and the signing keys all live in the database. And the server stops
as it should: SIGTERM lets a request in flight finish.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from provider.factors import totp
from tests.provider.flow import ALICE_SECRET, CLI_REDIRECT, LOA1, LOA2, parse_page, query_of

pytestmark = pytest.mark.e2e

LISTENING = re.compile(r"(\w+) listening on (http://\S+)")
ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@contextmanager
def running(argv: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[Any, str]]:
    """Start ``stepup ARGV`` for real; yield the process and the URL it says it listens on."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stepup.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    timer = threading.Timer(60, process.kill)  # a hung start fails the test, never the suite
    timer.start()
    try:
        assert process.stdout is not None
        url = None
        for line in process.stdout:
            if m := LISTENING.match(line):
                url = m.group(2)
                break
        assert url is not None, process.stderr.read() if process.stderr else ""
        yield process, url
    finally:
        timer.cancel()
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


def browse(browser: requests.Session, url: str, password: str = "wonderland") -> tuple[str, list]:
    """Act as the user: fill in the provider's pages until it redirects to the client."""
    pages: list[str] = []
    response = browser.get(url, allow_redirects=False)
    for _ in range(8):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(CLI_REDIRECT):
                return location, pages
            response = browser.get(location, allow_redirects=False)
            continue
        assert response.status_code == 200, response.text[:300]
        form = parse_page(response.text).forms[0]
        data: dict[str, Any] = {**form.hidden(), "action": "continue"}
        if field := form.by_autocomplete("current-password"):
            pages.append("password")
            data[field["name"]] = password
            data[form.by_autocomplete("username")["name"]] = "alice"  # type: ignore[index]
        elif field := form.by_autocomplete("one-time-code"):
            pages.append("otp")
            data[field["name"]] = totp.code_at(ALICE_SECRET, int(time.time()))
        response = browser.post(
            urljoin(response.url, form.action), data=data, allow_redirects=False
        )
    raise AssertionError("no redirect to the client")


def production_config(tmp_path: Path) -> str:
    """The built-in users and clients, not in sandbox mode (a sandbox runs one process: its
    clock lives there), at a free port."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    text = (ROOT / "stepup" / "sandbox.toml").read_text()
    text = text.replace("sandbox = true", "sandbox = false")
    # A sandbox-only switch is refused outside sandbox mode: drop it with the mode.
    text = text.replace("sandbox_loopback_clients = true", "")
    text = re.sub(r'^issuer = ".*"$', f'issuer = "http://127.0.0.1:{port}"', text, flags=re.M)
    path = tmp_path / "stepup.toml"
    path.write_text(text)
    return str(path)


def test_two_workers_on_postgresql_code_flow_step_up_refresh_and_reuse(
    postgres_url: str, tmp_path: Path
) -> None:
    config = production_config(tmp_path)
    with running(
        ["provider", "--workers", "2", "--config", config, "--database", postgres_url]
    ) as (
        process,
        issuer,
    ):
        assert len(children(process.pid)) == 2  # the two workers, forked from the command
        meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
        browser = requests.Session()
        verifier = "v" * 20 + "erifier-of-at-least-43-characters-long"

        def sign_in(acr: str) -> tuple[dict[str, Any], list[str], OAuth2Session]:
            client = OAuth2Session(
                "bank-cli",
                redirect_uri=CLI_REDIRECT,
                scope="openid offline_access",
                code_challenge_method="S256",
            )
            url, state = client.create_authorization_url(
                meta["authorization_endpoint"], code_verifier=verifier, acr_values=acr
            )
            callback, pages = browse(browser, url)
            assert query_of(callback)["state"] == state
            token = client.fetch_token(
                meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
            )
            return dict(token), pages, client

        _, pages, _ = sign_in(LOA1)
        assert pages == ["password"]
        second, pages, client = sign_in(LOA2)
        assert pages == ["otp"]  # the session (and its cookie) held across workers
        stepped = jwt.decode(second["id_token"], keys, algorithms=["RS256"]).claims
        assert (stepped["acr"], stepped["amr"]) == (LOA2, ["pwd", "otp", "mfa"])

        refreshed = client.refresh_token(
            meta["token_endpoint"], refresh_token=second["refresh_token"]
        )
        claims = jwt.decode(refreshed["id_token"], keys, algorithms=["RS256"]).claims
        # Refresh never upgrades nor renews: the original acr, amr and auth_time.
        assert (claims["acr"], claims["amr"], claims["auth_time"]) == (
            LOA2,
            ["pwd", "otp", "mfa"],
            stepped["auth_time"],
        )
        # The rotated refresh token presented again — whichever worker gets it — is refused,
        # and its family, the token just issued included, revoked (RFC 9700 §4.14.2).
        reuse = requests.post(
            meta["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": second["refresh_token"],
                "client_id": "bank-cli",
            },
            timeout=10,
        )
        assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
        again = requests.post(
            meta["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": refreshed["refresh_token"],
                "client_id": "bank-cli",
            },
            timeout=10,
        )
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_two_workers_share_the_login_throttle(postgres_url: str, tmp_path: Path) -> None:
    config = production_config(tmp_path)
    with running(
        ["provider", "--workers", "2", "--config", config, "--database", postgres_url]
    ) as (
        _,
        issuer,
    ):
        browser = requests.Session()
        client = OAuth2Session(
            "bank-cli", redirect_uri=CLI_REDIRECT, scope="openid", code_challenge_method="S256"
        )
        url, _ = client.create_authorization_url(
            f"{issuer}/authorize", code_verifier="v" * 43, acr_values=LOA1
        )
        page = browser.get(url, allow_redirects=True)
        statuses = []
        for _ in range(6):
            form = parse_page(page.text).forms[0]
            data = {**form.hidden(), "action": "continue"}
            data[form.by_autocomplete("username")["name"]] = "alice"  # type: ignore[index]
            data[form.by_autocomplete("current-password")["name"]] = "wrong"  # type: ignore[index]
            page = browser.post(urljoin(page.url, form.action), data=data)
            statuses.append(page.status_code)
        # Five failures are free, the sixth is locked out — counted in the database, so the
        # two workers that took turns answering count together.
        assert statuses == [401, 401, 401, 401, 401, 429]


def test_a_sandbox_config_runs_one_worker_and_refuses_more(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'stepup.db'}"
    with running(["provider", "--port", "0", "--database", database]) as (process, _):
        assert len(children(process.pid)) == 1  # the sandbox clock lives in that one process
    refused = subprocess.run(
        [sys.executable, "-m", "stepup.cli", "provider", "--workers", "2", "--port", "0",
         "--database", database],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        "stepup: configuration error: --workers must be 1 with a sandbox config: the sandbox "
        "clock lives in one process (use a config without `sandbox = true` for more workers)\n"
    )


SLOW_APP = """
import pathlib, sys, time
from stepup.listening import listen
from stepup.serve import serve

started, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

def app(environ, start_response):
    started.touch()
    while not release.exists():  # the test decides when this request may finish
        time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"finished"]

listener = listen("127.0.0.1", 0, "--port")
port = listener.port
serve(app, listener.sock, workers=1,
      on_started=lambda: print(f"App listening on http://127.0.0.1:{port}", flush=True))
"""


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    script = tmp_path / "slow.py"
    script.write_text(SLOW_APP)
    process = subprocess.Popen(
        [sys.executable, str(script), str(started), str(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    timer = threading.Timer(60, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        m = LISTENING.match(line)
        assert m is not None, line + (process.stderr.read() if process.stderr else "")
        answer: list[requests.Response] = []
        request = threading.Thread(
            target=lambda: answer.append(requests.get(m.group(2), timeout=30))
        )
        request.start()
        deadline = time.monotonic() + 30
        while not started.exists():  # the request is being handled
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        # Give the signal time to reach the worker (nothing to poll for: a draining server
        # looks like a busy one); the request must still be waiting, and the server with it.
        time.sleep(0.5)
        assert process.poll() is None
        assert not answer
        release.touch()
        request.join(timeout=30)
        assert process.wait(timeout=30) == 0
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    (response,) = answer
    assert (response.status_code, response.text) == (200, "finished")
