"""Fixtures for the browser tests: the session's Chromium (in a worker process, see tests/browser/driver.py)
and a fresh page per test at 1366x768."""
from __future__ import annotations

import pytest

from tests.browser.support import Browser, BrowserWorker


@pytest.fixture(scope="session")
def browser_worker():
    worker = BrowserWorker()
    yield worker
    worker.close()


@pytest.fixture
def browser(browser_worker, request):
    """This test's page (desktop 1366x768; `browser.use_tablet()` for a tablet); `browser.run(step, ...)`."""
    b = Browser(browser_worker, request.node.name)
    yield b
    b.close()
