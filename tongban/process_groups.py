"""Instances in several processes on one host: a group of instances per process, so the suite uses every core
(one eventlet process uses one). `tongban up --processes N` and the benchmarks run them this way.

The groups follow the work: the front (portal, windows, village and town agents) answers people; the
approval departments decide; notify and evaluation follow every event. Each group is a child process
(`tongban serve-group SPEC`) started from a JSON spec of its instances' settings; it prints READY once every
instance serves and stops on SIGTERM.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.config import Settings

# the three kinds of work, in the order they start (the portal first: people's front door)
GROUPS = (("front", ("portal", "intake", "agent")), ("approval", ("approval",)),
          ("after", ("notify", "evaluation")))


def process_groups(layout: list[Settings], processes: int) -> list[tuple[str, list[Settings]]]:
    """The layout's instances in `processes` groups (at least one instance each; fewer groups when there are
    fewer instances): one group for 1; the front with the departments and the followers for 2; the three kinds
    for 3; beyond that the largest group split in halves until there are enough."""
    if processes < 1:
        raise ValueError("at least one process")
    kinds = [(name, [s for s in layout if s.service in services]) for name, services in GROUPS]
    kinds = [(name, group) for name, group in kinds if group]
    unknown = [s.instance for s in layout if not any(s in g for _, g in kinds)]
    if unknown:
        raise ValueError(f"no process group for {', '.join(unknown)}")
    if processes == 1:
        return [("all", list(layout))]
    if processes == 2 and len(kinds) == 3:
        return [("front+approval", kinds[0][1] + kinds[1][1]), kinds[2]]
    groups = list(kinds)
    while len(groups) < processes:
        i = max(range(len(groups)), key=lambda k: len(groups[k][1]))
        name, group = groups[i]
        if len(group) < 2:
            break
        half = (len(group) + 1) // 2
        groups[i:i + 1] = [(f"{name}-1", group[:half]), (f"{name}-2", group[half:])]
    return groups


def spec_of(settings: list[Settings], log_level: str) -> dict:
    return {"log_level": log_level,
            "instances": [{f.name: _plain(getattr(s, f.name)) for f in dataclasses.fields(s)} for s in settings]}


def settings_of(spec: dict) -> list[Settings]:
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    out = []
    for values in spec["instances"]:
        values = dict(values)
        values["data_dir"] = Path(values["data_dir"])
        for name, value in values.items():
            if isinstance(value, list) and "tuple" in str(types.get(name, "")):
                values[name] = tuple(value)
        out.append(Settings(**values))
    return out


def _plain(value):
    return str(value) if isinstance(value, Path) else value


class ProcessCluster:
    """Groups of instances, each in a child process of its own; their logs go to this process's stderr, or
    with `log_files` to a file per group in `run_dir`."""

    def __init__(self, run_dir: Path, log_level: str = "WARNING", log_files: bool = False):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_level = log_level
        self.log_files = log_files
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}

    def start(self, name: str, group: list[Settings]) -> None:
        spec = self.run_dir / f"{name}.json"
        spec.write_text(json.dumps(spec_of(group, self.log_level)))
        spec.chmod(0o600)  # it holds the database URLs and the portal's signing key
        log = self._logs.setdefault(name, open(self.run_dir / f"{name}.log", "a")) if self.log_files else None
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "tongban.cli", "serve-group", str(spec)],
                                            stdout=subprocess.PIPE, stderr=log, text=True)

    def ready(self, name: str, timeout: float = 180) -> None:
        """Wait for the group's READY (raises with where its log is if it ended or said something else)."""
        proc = self.procs[name]
        line = _readline(proc, timeout)
        if line != "READY":
            where = f" (its log: {self.run_dir / (name + '.log')})" if self.log_files else ""
            raise RuntimeError(f"process group {name} did not start{where}: {line!r}")

    def start_all(self, groups: list[tuple[str, list[Settings]]]) -> None:
        for name, group in groups:
            self.start(name, group)
        for name, _ in groups:
            self.ready(name)

    def stop(self, name: str, timeout: float = 60) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _wait(proc, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _wait(proc, 10)
        if proc.stdout:
            proc.stdout.close()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)
        for log in self._logs.values():
            log.close()
        self._logs.clear()

    def ended(self) -> list[str]:
        """Groups whose process ended by itself."""
        return [name for name, p in self.procs.items() if p.poll() is not None]


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One line of the child's stdout without blocking the caller's other green threads (eventlet's thread
    pool when it is in use)."""
    try:
        from eventlet import tpool

        return tpool.execute(_readline_blocking, proc, timeout)
    except ImportError:  # pragma: no cover - tongban always has eventlet
        return _readline_blocking(proc, timeout)


def _readline_blocking(proc: subprocess.Popen, timeout: float) -> str:
    import select

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            return proc.stdout.readline().strip()
        if proc.poll() is not None:
            return f"(ended with {proc.returncode})"
    return "(no answer in time)"


def _wait(proc: subprocess.Popen, timeout: float) -> None:
    try:
        from eventlet import tpool

        tpool.execute(proc.wait, timeout)
    except ImportError:  # pragma: no cover
        proc.wait(timeout)


def serve_group(spec_file: str) -> int:
    """The child's side: run the spec's instances until SIGTERM or SIGINT (eventlet patched already)."""
    import eventlet

    from shared.logging import configure_logging
    from tongban.runtime import Cluster, wait_for_stop_signal

    spec = json.loads(Path(spec_file).read_text())
    configure_logging(spec.get("log_level", "WARNING"))
    parent = os.getppid()

    def orphaned():
        # the parent killed outright (SIGKILL: it could not stop us): stop as on SIGTERM, not serve on alone
        while os.getppid() == parent:
            eventlet.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    eventlet.spawn(orphaned)
    cluster = Cluster()
    try:
        cluster.start_all(settings_of(spec))
        print("READY", flush=True)
        wait_for_stop_signal()
    finally:
        cluster.stop()
    print("STOPPED", flush=True)
    return 0
