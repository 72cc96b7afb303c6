"""Browser tests: Debian's Chromium, headless, driven by Playwright over its own protocol.

Playwright's bundled browsers are never downloaded (a closed network refuses them): the tests
launch the Chromium the machine has, ``STEPUP_TEST_CHROMIUM`` or ``chromium`` on the ``PATH``.
Without one they are skipped with the reason; a ``STEPUP_TEST_CHROMIUM`` that is set but unusable
stops the run (``tests/conftest.py``), as CI sets it and must not pass with these tests skipped.

Each test gets a fresh browser context (no cookies shared between tests). ``screenshot(page, name)``
writes a full-page PNG to ``STEPUP_TEST_SCREENSHOTS`` when that is set (to look at them), else to
the test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stepup.inprocess import Sandbox, running_sandbox

pytest.importorskip("playwright", reason="Playwright: pip install -e '.[dev]'")

from playwright.sync_api import Browser, Page, sync_playwright

from .chromium import CHROMIUM_ARGS, chromium_path

Screenshot = Callable[[Page, str], Path]


# Per test, not per session: Playwright's sync API keeps an asyncio loop running on the thread
# while it is open, and a later test in the same worker that runs its own loop (anyio.run,
# asyncio.run) would fail with "Already running asyncio in this thread". A launch costs ~0.3 s.
@pytest.fixture
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium: set STEPUP_TEST_CHROMIUM or apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def screenshot(tmp_path: Path, request: pytest.FixtureRequest) -> Screenshot:
    folder = Path(os.environ.get("STEPUP_TEST_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = folder / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The built-in sandbox at ``http://localhost:PORT``: a host name, as WebAuthn needs one."""
    with running_sandbox(host="localhost") as running:
        yield running
