"""Browser tests in real Chromium: the pytest side (the worker process, a test's page, staff users).

A test's browser work is done by *steps*: module-level functions `step(page, **kwargs)` run in the browser
worker (tests/browser/driver.py, a fresh interpreter without eventlet), which may use Playwright's sync API
and `expect`, call `shot(page, name)`, and return something JSON can carry. The test itself, in the pytest
process, starts the city, runs steps with `browser.run(step, ...)` and checks the services and stores between
them. A test's page (and its cookies) lasts from one step to the next until the test ends.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import eventlet
import pytest
import sqlalchemy as sa
from eventlet.green import subprocess

from services.portal.models import AuditEntry
from tests.browser.driver import CHROMIUM
from tests.portal.support import PASSWORD, add_user

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "test-results" / "browser-worker.log"

START_TIMEOUT = 60.0
STEP_TIMEOUT = 90.0  # a step's own waits time out after 15 s each (driver.STEP_TIMEOUT_MS)


class BrowserWorker:
    """The session's one Chromium, in its own process; requests over a pipe, waited for cooperatively so the
    services' green threads in this process keep serving the browser meanwhile."""

    def __init__(self):
        if not os.access(CHROMIUM, os.X_OK):
            pytest.fail(f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium. Run "
                        "./run setup (it installs it in tests mode), or set TONGBAN_CHROMIUM to a Chromium "
                        "executable.", pytrace=False)
        LOG.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(LOG, "ab")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.browser.driver"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        started = self._reply(START_TIMEOUT, "starting Chromium")
        if not started["ok"]:
            self.close()
            pytest.fail(f"{started['error']}\nRun ./run setup (installs Debian's chromium); worker log: {LOG}",
                        pytrace=False)
        self.version = started["value"]

    def request(self, message: dict, timeout: float = STEP_TIMEOUT) -> dict:
        if self.proc.poll() is not None:
            raise AssertionError(f"the browser worker has exited ({self.proc.returncode}); see {LOG}")
        self.proc.stdin.write((json.dumps(message, ensure_ascii=False) + "\n").encode())
        self.proc.stdin.flush()
        return self._reply(timeout, message.get("step") or message["op"])

    def _reply(self, timeout: float, what: str) -> dict:
        try:
            with eventlet.Timeout(timeout):
                line = self.proc.stdout.readline()
        except eventlet.Timeout:
            self.close()
            raise AssertionError(f"the browser worker did not answer within {timeout:.0f} s ({what}); "
                                 f"see {LOG}") from None
        if not line:
            raise AssertionError(f"the browser worker ended ({what}); see {LOG}")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the worker closes Chromium and ends
                deadline = time.monotonic() + 10
                while self.proc.poll() is None and time.monotonic() < deadline:
                    eventlet.sleep(0.1)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
        self._log.close()


class Browser:
    """One test's page in the session's Chromium (a fresh context: no cookies from other tests)."""

    def __init__(self, worker: BrowserWorker, test_name: str):
        self.worker = worker
        self.test_name = test_name
        self.tablet = False
        self._open()

    def _open(self):
        self._check(self.worker.request({"op": "open", "test": self.test_name,
                                         "viewport": "tablet" if self.tablet else "desktop"}))

    def fresh(self) -> None:
        """A fresh page and context (signed out: another person at another desk), same viewport."""
        self._open()

    def use_tablet(self) -> None:
        """From now on a tablet (1024x768, touch) instead of the 1366x768 desktop; a fresh page, signed out."""
        self.tablet = True
        self._open()

    def run(self, step, **kwargs):
        """Run `step(page, **kwargs)` in the browser worker; its return value. A step's failure fails the
        test with the worker's traceback (and a screenshot <test>-failure.png)."""
        ref = step if isinstance(step, str) else f"{step.__module__}:{step.__qualname__}"
        return self._check(self.worker.request({"op": "run", "step": ref, "kwargs": kwargs}))

    def close(self):
        if self.worker.proc.poll() is None:
            self.worker.request({"op": "close"})

    @staticmethod
    def _check(reply: dict):
        if not reply["ok"]:
            where = f"\n(screenshot: {reply['screenshot']})" if reply.get("screenshot") else ""
            raise AssertionError(f"in the browser:\n{reply['error']}{where}")
        return reply["value"]


# --- the portal's directory -----------------------------------------------------------------------

def add_staff(city, staff_number: str, role: str, scope: str, name: str = "张敏", password: str = PASSWORD):
    """A staff user in the portal's directory (as city IT adds one); the portal must be started."""
    add_user(city, staff_number, name, role, scope, password)


def audit_events(city, staff_number: str) -> list[tuple[str, str | None]]:
    """The portal's audit log for one person, oldest first: (event, detail)."""
    store = city.cluster.platform("portal").store
    with store.transaction() as tx:
        rows = tx.session.scalars(sa.select(AuditEntry).where(AuditEntry.staff_number == staff_number)
                                  .order_by(AuditEntry.id))
        return [(r.event, r.detail) for r in rows]
