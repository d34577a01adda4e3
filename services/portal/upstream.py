"""The other services' APIs, called on the signed-in person's behalf (the gateway pattern): each call
carries a short token the portal signs for that person, so every service checks their role and scope
itself and the portal never widens them."""
from __future__ import annotations

from dataclasses import dataclass

import requests

from shared import tokens

CALL_TOKEN_SECONDS = 120


@dataclass
class Answer:
    status: int
    body: object  # parsed JSON, or bytes for other content
    content_type: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def message(self) -> str:
        """What went wrong, in the service's words (its JSON error's message)."""
        if isinstance(self.body, dict):
            details = self.body.get("details")
            text = self.body.get("message") or self.body.get("error") or ""
            return f"{text}: {details}" if details else text
        return f"HTTP {self.status}"


class UpstreamDown(Exception):
    """A service did not answer (the page says so rather than failing)."""


class Upstreams:
    def __init__(self, urls: dict[str, str], key: tokens.SigningKey | None, timeout: float = 15.0):
        self.urls = dict(urls or {})
        self.key = key
        self.timeout = timeout
        self.http = requests.Session()

    def instances(self, prefix: str) -> list[str]:
        return sorted(i for i in self.urls if i.startswith(prefix))

    def token_for(self, user) -> str:
        return tokens.issue(self.key, user.staff_number, user.role, user.scope, ttl_seconds=CALL_TOKEN_SECONDS,
                            name=user.name)

    def call(self, user, method: str, instance: str, path: str, body=None, params=None,
             headers: dict | None = None) -> Answer:
        base = self.urls.get(instance)
        if base is None:
            return Answer(404, {"error": "not_found", "message": f"no service {instance} here"}, "application/json")
        h = {"Authorization": f"Bearer {self.token_for(user)}", **(headers or {})}
        try:
            r = self.http.request(method, base.rstrip("/") + path, json=body, params=params, headers=h,
                                  timeout=self.timeout)
        except requests.RequestException as exc:
            raise UpstreamDown(f"{instance} did not answer ({type(exc).__name__})") from None
        ctype = r.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                return Answer(r.status_code, r.json(), ctype)
            except ValueError:
                pass
        return Answer(r.status_code, r.content, ctype)
