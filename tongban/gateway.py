"""A small SMS gateway of ours playing the operator (短信网关), for `tongban up` and the tests.

    python -m tongban.gateway --port 18900 --out var/sms.jsonl --account tongban --key secret [--fail N]
                              [--fail-always]

POST /sms/send (JSON, or a form with `params` as JSON text): account, key, sign_name, template_id, params,
text, phone, idempotency_key (or the Idempotency-Key header). Answers:
- 401 for a wrong account or key; 400 for a missing phone or text/template (what is missing said);
- 503 while told to fail (`--fail N`: the next N sends, `--fail-always`, or POST /control
  {"fail_next": N, "fail_always": true|false});
- 200 {"code": "OK", "message_id", "segments", "duplicate"}: the SMS is written as one JSON line to the
  output file (phone masked: the file is a log, and logs show no phone numbers). A second send with the same
  idempotency key is answered as the first and not written again (keys are read back from the file at start).
GET /messages lists what was received (JSON), GET /health says ok.
"""
from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from services.notify.domain import sms_segments
from shared.pii import mask_phone


class Gateway:
    """The operator's state: credentials, what it was told to fail, what it received."""

    def __init__(self, out: Path, account: str, key: str, fail_next: int = 0, fail_always: bool = False):
        self.out = Path(out)
        self.account, self.key = account, key
        self.fail_next, self.fail_always = fail_next, fail_always
        self.lock = threading.Lock()
        self.answers: dict[str, dict] = {}
        self.attempts = 0  # every authorised send, failed or not
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.out.exists():  # a restarted gateway still knows the keys it answered
            for line in self.out.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.answers[record["idempotency_key"]] = self._answer(record)

    @staticmethod
    def _answer(record: dict) -> dict:
        return {"code": "OK", "message_id": record["message_id"], "segments": record["segments"]}

    def received(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text(encoding="utf-8").splitlines() if line.strip()]

    def send(self, body: dict, header_key: str | None) -> tuple[int, dict]:
        if body.get("account") != self.account or body.get("key") != self.key:
            return 401, {"code": "UNAUTHORIZED", "message": "wrong account or key"}
        key = str(body.get("idempotency_key") or header_key or "")
        phone, text, template = body.get("phone"), body.get("text"), body.get("template_id")
        missing = [n for n, v in (("idempotency_key", key), ("phone", phone)) if not v]
        if not text and not template:
            missing.append("text or template_id")
        if missing:
            return 400, {"code": "BAD_REQUEST", "message": f"missing {', '.join(missing)}"}
        with self.lock:
            self.attempts += 1
            if key in self.answers:
                return 200, {**self.answers[key], "duplicate": True}
            if self.fail_always or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                return 503, {"code": "BUSY", "message": "gateway told to fail"}
            sign = body.get("sign_name") or ""
            if not text:  # template mode: the operator fills its template (ours: the parameters in order)
                text = f"【{sign}】" + "".join(str(v) for v in (body.get("params") or {}).values())
            segments = sms_segments(text)
            record = {"received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                      "idempotency_key": key, "message_id": f"SM{len(self.answers) + 1:08d}",
                      "phone": mask_phone(str(phone)), "sign_name": sign, "template_id": template,
                      "params": body.get("params") or {}, "text": text, "segments": segments.count,
                      "encoding": segments.encoding}
            with self.out.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.answers[key] = self._answer(record)
            return 200, {**self.answers[key], "duplicate": False}


def make_handler(gateway: Gateway):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the file is the record
            pass

        def _reply(self, status: int, body) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                body = {k: v[0] for k, v in parse_qs(raw).items()}
                if isinstance(body.get("params"), str):
                    body["params"] = json.loads(body["params"])
                return body
            value = json.loads(raw or "{}")
            if not isinstance(value, dict):
                raise ValueError("the body must be an object")
            return value

        def do_GET(self):
            if self.path == "/health":
                return self._reply(200, {"status": "ok"})
            if self.path == "/messages":
                return self._reply(200, {"messages": gateway.received(), "attempts": gateway.attempts})
            return self._reply(404, {"code": "NOT_FOUND"})

        def do_POST(self):
            try:
                body = self._body()
            except ValueError as exc:
                return self._reply(400, {"code": "BAD_REQUEST", "message": f"unreadable body: {exc}"})
            if self.path == "/sms/send":
                return self._reply(*gateway.send(body, self.headers.get("Idempotency-Key")))
            if self.path == "/control":
                with gateway.lock:
                    gateway.fail_next = int(body.get("fail_next", gateway.fail_next))
                    gateway.fail_always = bool(body.get("fail_always", gateway.fail_always))
                return self._reply(200, {"fail_next": gateway.fail_next, "fail_always": gateway.fail_always})
            return self._reply(404, {"code": "NOT_FOUND"})

    return Handler


def serve(port: int, out: Path, account: str, key: str, fail_next: int = 0, fail_always: bool = False,
          host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A running gateway (call `serve_forever()`; `shutdown()` ends it)."""
    gateway = Gateway(out, account, key, fail_next, fail_always)
    server = ThreadingHTTPServer((host, port), make_handler(gateway))
    server.gateway = gateway
    return server


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tongban.gateway", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="where each received SMS is written (JSON lines)")
    p.add_argument("--account", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--fail", type=int, default=0, help="fail the next N sends (503)")
    p.add_argument("--fail-always", action="store_true")
    args = p.parse_args(argv)
    server = serve(args.port, args.out, args.account, args.key, args.fail, args.fail_always, args.host)
    print(f"sms gateway on http://{args.host}:{args.port}/sms/send writing {args.out}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
