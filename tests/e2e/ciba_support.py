"""What the CIBA tests over sockets share: the ``stepup`` command run in process, and the shared
sandbox with none of alice's CIBA requests left pending by another test."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests

from stepup.cli import main
from stepup.inprocess import Sandbox


def run(*argv: str) -> tuple[int, str]:
    """``stepup ARGV…`` in this process: its exit status and what it printed."""
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


@pytest.fixture(name="sandbox")
def ciba_sandbox(stepup_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox with no CIBA request of alice's left pending by another test."""
    drain(stepup_sandbox)
    yield stepup_sandbox
    drain(stepup_sandbox)


def drain(sandbox: Sandbox) -> None:
    """Deny alice's pending requests, oldest first, until none is left."""
    while requests.post(f"{sandbox.issuer}/sandbox/device/alice/deny", timeout=10).ok:
        pass
