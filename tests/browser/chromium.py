"""Where the test run finds Chromium, and the flags it starts it with."""

from __future__ import annotations

import os
import shutil

ENV = "STEPUP_TEST_CHROMIUM"

# Headless, as root in CI (no sandbox), and quiet on a closed network: without the
# background-networking flags Chromium keeps dialling Google's hosts and logging the refusals.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str | None:
    """``STEPUP_TEST_CHROMIUM`` when set, else ``chromium`` on the ``PATH``, else ``None``."""
    return os.environ.get(ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
