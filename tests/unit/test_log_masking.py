"""Every log line is masked by the one masking function: structlog events and the standard library's
(nameko, kombu) alike, free text and tracebacks included."""
from __future__ import annotations

import io
import json
import logging

from shared.logging import configure_logging, get_logger

RAW = ("11010519491231002X", "13912345678", "91350100M000100Y43", "138-1234-5678")


def test_log_lines_mask_identifiers_in_any_text():
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        get_logger("t").info("case.returned", reason="请致电13912345678或138-1234-5678",
                             applicant={"name": "张三11010519491231002X"}, note="单位91350100M000100Y43")
        logging.getLogger("nameko.t").warning("stdlib line with 13912345678 and 11010519491231002X")
        try:
            raise ValueError("bad 91350100M000100Y43")
        except ValueError:
            get_logger("t").exception("failed", case_number="320583101-20261125-00001")
    finally:
        configure_logging("INFO")  # back to stderr for the other tests
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    text = stream.getvalue()
    for raw in RAW:
        assert raw not in text
    assert "139****5678" in text and "9135**********0Y43" in text
    assert lines[2]["case_number"] == "320583101-20261125-00001", "case numbers are not masked"


def test_before_logging_is_configured_a_line_goes_to_stderr_masked():
    """A command that never configures logging (a warning from `tongban calendar due --json`) keeps its
    stdout for its output, and its lines are masked like every other (its own process: the setting is global)."""
    import subprocess
    import sys

    code = ("from shared.logging import get_logger\n"
            "get_logger('x').warning('calendar.unknown_year', phone='13812345678', id='110101199003071234')\n"
            "print('{\"ok\": true}')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(r.stdout) == {"ok": True}
    assert "calendar.unknown_year" in r.stderr and "138****5678" in r.stderr
    assert "13812345678" not in r.stderr and "110101199003071234" not in r.stderr
