"""The browser worker: a fresh Python interpreter (no eventlet) that drives one Chromium for the whole test
session, run by tests/browser/support.py.

Why a separate process: the services under test run as green threads in the pytest process (tests/conftest.py
monkey-patches it with eventlet). Playwright's sync API inside that process loads pages, but it hangs when it
stops (and, with another asyncio child watcher, when it starts): its asyncio loop waits for the Node driver's
exit through a child watcher that eventlet's patching breaks. Here Playwright runs unpatched, and the pytest
process only waits on a green pipe, so the portal keeps answering while the browser works.

Protocol: one JSON object per line, requests on stdin, one reply per request on stdout (a private duplicate of
it: fd 1 itself then points at stderr, so a step's print() cannot corrupt the replies). The first reply, before
any request, says whether Chromium started (its version) or why not.

    {"op": "open", "test": NAME, "viewport": "desktop" | "tablet"}  -> a new context and page for the test
    {"op": "run", "step": "module:function", "kwargs": {...}}       -> the step's JSON return value
    {"op": "close"}                                                  -> the test's context closed
Replies: {"ok": true, "value": ...} or {"ok": false, "error": "traceback", "screenshot": path | null}.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

CHROMIUM = os.environ.get("TONGBAN_CHROMIUM", "/usr/bin/chromium")
# no sandbox (containers run as root), nothing fetched in the background, no GPU (headless servers)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {
    # the window clerk's screen
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    # a village agent's tablet, held landscape
    "tablet": {"viewport": {"width": 1024, "height": 768}, "has_touch": True, "is_mobile": True,
               "device_scale_factor": 2},
}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
STEP_TIMEOUT_MS = 15_000  # an element or a page that does not come fails the step, not the session

_current_test = "test"


def shot(page, name: str) -> str:
    """A full-page screenshot as test-results/screenshots/<test>-<name>.png; its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{_safe(_current_test)}-{_safe(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return str(path)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120]


def _step(ref: str):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class Worker:
    def __init__(self, browser):
        self.browser = browser
        self.context = None
        self.page = None

    def handle(self, request: dict):
        global _current_test
        op = request["op"]
        if op == "open":
            self.close()
            _current_test = request.get("test") or "test"
            self.context = self.browser.new_context(locale="zh-CN", **VIEWPORTS[request.get("viewport", "desktop")])
            self.context.set_default_timeout(STEP_TIMEOUT_MS)
            self.page = self.context.new_page()
            return None
        if op == "run":
            if self.page is None:
                raise RuntimeError("no page open: send op=open first")
            return _step(request["step"])(self.page, **request.get("kwargs", {}))
        if op == "close":
            self.close()
            return None
        raise ValueError(f"unknown op {op!r}")

    def close(self):
        if self.context is not None:
            try:
                self.context.close()
            finally:
                self.context = self.page = None


def main() -> int:
    # replies go to a private copy of stdout; fd 1 becomes stderr, so stray prints never mix in
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            replies.write(json.dumps({"ok": False, "error": f"Chromium did not start: {exc}"}) + "\n")
            return 1
        replies.write(json.dumps({"ok": True, "value": browser.version}) + "\n")
        worker = Worker(browser)
        for line in sys.stdin:
            request = json.loads(line)
            try:
                reply = {"ok": True, "value": worker.handle(request)}
            except BaseException as exc:  # a failed step is a reply: the session's browser lives on
                reply = {"ok": False, "error": "".join(traceback.format_exception(exc)), "screenshot": None}
                if worker.page is not None and request.get("op") == "run":
                    try:
                        reply["screenshot"] = shot(worker.page, "failure")
                    except Exception:
                        pass
            replies.write(json.dumps(reply, ensure_ascii=False, default=str) + "\n")
        worker.close()
        browser.close()
    return 0


if __name__ == "__main__":
    # the steps import `shot` from tests.browser.driver: let them find this module, not a second copy
    sys.modules["tests.browser.driver"] = sys.modules[__name__]
    sys.exit(main())
