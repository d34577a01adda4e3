"""The command line patches eventlet before any library that does I/O is imported (no broker).

A module that took `from time import sleep` before the patch keeps the blocking sleep: kombu's reconnect loop
then stalls a whole process of instances after a broker restart (found by the chaos run)."""
from __future__ import annotations

import subprocess
import sys

PROBE = r"""
import builtins, runpy, sys
seen = {}
real_import = builtins.__import__

def watching(name, *args, **kwargs):
    if name.split(".")[0] in ("kombu", "amqp", "nameko", "psycopg2", "requests") and name not in seen:
        from eventlet import patcher
        seen[name] = patcher.is_monkey_patched("time") and patcher.is_monkey_patched("socket")
    return real_import(name, *args, **kwargs)

builtins.__import__ = watching
sys.argv = ["tongban", "--help"]
try:
    runpy.run_module("tongban.cli", run_name="__main__")
except SystemExit:
    pass
print(sorted(name for name, patched in seen.items() if not patched))
print(len(seen))
"""


def test_libraries_doing_io_are_imported_only_after_the_patch():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    unpatched, imported = r.stdout.strip().splitlines()[-2:]
    assert int(imported) > 0, r.stderr[-2000:]  # the probe saw the parser import them (or it tests nothing)
    assert unpatched == "[]", f"imported before eventlet's patch: {unpatched}"
