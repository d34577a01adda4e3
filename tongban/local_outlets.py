"""Where notices land on one host when no real SMS gateway or SMTP server is configured: our SMS gateway
(tongban/gateway.py) and a local SMTP server (aiosmtpd), each in a process of its own, writing under the
data folder. `tongban up` starts them; the tests start them the same way (real servers, no fakes).

    python -m tongban.local_outlets smtp --port 18925 --dir var/mail     # one .eml file per message
"""
from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import requests


class MailDrop:
    """aiosmtpd handler: every accepted message becomes <dir>/<time>-<n>.eml."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = len(list(self.folder.glob("*.eml")))

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{self.count:05d}.eml"
        tmp = self.folder / (name + ".part")
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.folder / name)  # whole files only: a reader never sees half a message
        return "250 OK queued as " + name


def read_mail(folder: Path) -> list:
    """The messages in a mail folder, oldest first (email.message.EmailMessage)."""
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(Path(folder).glob("*.eml"))]


def run_smtp(port: int, folder: Path, host: str = "127.0.0.1") -> int:
    from aiosmtpd.controller import Controller

    controller = Controller(MailDrop(folder), hostname=host, port=port)
    controller.start()
    print(f"smtp server on {host}:{port} writing {folder}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} ended at start (exit {proc.returncode}): {proc.stderr.read().decode()[-500:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


@dataclass
class LocalOutlets:
    """The SMS gateway and the SMTP server of one host, as subprocesses, with what notify needs to use them."""

    folder: Path
    account: str = "tongban"
    key: str = field(default_factory=lambda: secrets.token_hex(8))
    sms_port: int = 0
    smtp_port: int = 0
    sign: str = "全城通办"
    _procs: list = field(default_factory=list)

    @property
    def sms_file(self) -> Path:
        return Path(self.folder) / "sms.jsonl"

    @property
    def mail_dir(self) -> Path:
        return Path(self.folder) / "mail"

    @property
    def sms_url(self) -> str:
        return f"http://127.0.0.1:{self.sms_port}"

    def start(self, fail: int = 0, fail_always: bool = False) -> LocalOutlets:
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        self.sms_port = self.sms_port or _free_port()
        self.smtp_port = self.smtp_port or _free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                          os.environ.get("PYTHONPATH")]))}
        gateway = [sys.executable, "-m", "tongban.gateway", "--port", str(self.sms_port), "--out", str(self.sms_file),
                   "--account", self.account, "--key", self.key, "--fail", str(fail)]
        gateway += ["--fail-always"] if fail_always else []
        smtp = [sys.executable, "-m", "tongban.local_outlets", "smtp", "--port", str(self.smtp_port),
                "--dir", str(self.mail_dir)]
        for cmd, port, what in ((gateway, self.sms_port, "the SMS gateway"), (smtp, self.smtp_port, "the SMTP server")):
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._procs.append(proc)
            try:
                _wait_listening(port, proc, what)
            except Exception:
                self.stop()
                raise
        return self

    def notify_extra(self, sender: str = "notices@tongban.local") -> dict:
        """Settings.extra for notify (the same keys as the TONGBAN_SMS_* / TONGBAN_SMTP_* variables)."""
        return {"sms_url": f"{self.sms_url}/sms/send", "sms_account": self.account, "sms_key": self.key,
                "sms_sign": self.sign, "smtp_host": "127.0.0.1", "smtp_port": self.smtp_port, "smtp_from": sender}

    # what the gateway received, and how it behaves (the tests tell it to fail)
    def sms(self) -> list[dict]:
        return requests.get(f"{self.sms_url}/messages", timeout=5).json()["messages"]

    def sms_attempts(self) -> int:
        return requests.get(f"{self.sms_url}/messages", timeout=5).json()["attempts"]

    def fail_sms(self, next_n: int = 0, always: bool = False) -> None:
        requests.post(f"{self.sms_url}/control", json={"fail_next": next_n, "fail_always": always},
                      timeout=5).raise_for_status()

    def mail(self) -> list:
        return read_mail(self.mail_dir)

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
        self._procs.clear()


def for_up(layout: list, data_dir: Path, env=None) -> tuple[list, LocalOutlets | None, list[str]]:
    """`tongban up`: where no real SMS gateway (TONGBAN_SMS_URL) or SMTP server (TONGBAN_SMTP_HOST) is
    configured, ours run beside the instances and notify uses them. Returns the layout (notify's settings
    completed), the running outlets (None when both are real) and the lines that say where notices land."""
    env = os.environ if env is None else env
    if env.get("TONGBAN_SMS_URL") and env.get("TONGBAN_SMTP_HOST"):
        return layout, None, []
    outlets = LocalOutlets(Path(data_dir) / "outlets").start()
    extra = outlets.notify_extra()
    lines = []
    if env.get("TONGBAN_SMS_URL"):
        extra = {k: v for k, v in extra.items() if not k.startswith("sms_")}
    else:
        lines.append(f"  SMS (our gateway, {outlets.sms_url}/sms/send) land in {outlets.sms_file}")
    if env.get("TONGBAN_SMTP_HOST"):
        extra = {k: v for k, v in extra.items() if not k.startswith("smtp_")}
    else:
        lines.append(f"  e-mail (local SMTP server, 127.0.0.1:{outlets.smtp_port}) lands in {outlets.mail_dir}/")
    layout = [s.with_(extra={**s.extra, **extra}) if s.service == "notify" else s for s in layout]
    return layout, outlets, lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tongban.local_outlets")
    sub = p.add_subparsers(dest="what", required=True)
    smtp = sub.add_parser("smtp", help="a local SMTP server writing each message as a .eml file")
    smtp.add_argument("--host", default="127.0.0.1")
    smtp.add_argument("--port", type=int, required=True)
    smtp.add_argument("--dir", type=Path, required=True)
    args = p.parse_args(argv)
    return run_smtp(args.port, args.dir, args.host)


if __name__ == "__main__":
    raise SystemExit(main())
