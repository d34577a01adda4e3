"""Configuration from environment variables, the same names in docker-compose and k8s.

Every service instance gets one `Settings`; `tongban up` builds several in one host.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEV_BUS_SECRET = "tongban-dev-bus-secret-change-me"
# a kind's broker password given outright (a pod of that kind gets only its own)
BUS_PASSWORD_VARIABLES = {"intake": "TONGBAN_BUS_PASSWORD_INTAKE", "approval": "TONGBAN_BUS_PASSWORD_APPROVAL",
                          "agent": "TONGBAN_BUS_PASSWORD_AGENT", "notify": "TONGBAN_BUS_PASSWORD_NOTIFY",
                          "evaluation": "TONGBAN_BUS_PASSWORD_EVALUATION", "portal": "TONGBAN_BUS_PASSWORD_PORTAL"}

#: Development mode must be asked for: `tongban up`, `tongban demo` and the tests set it. Outside it a
#: service refuses to start with the published development bus secret (or none), or without the token keys
#: it is to trust: the broker passwords derived from a published secret would be known, and a development
#: key pair (kept in the data folder) could sign any token.
DEV_MODE_VARIABLE = "TONGBAN_DEV"
# what one service kind alone reads, as text in Settings.extra (the service checks it when it starts)
EXTRA_VARIABLES = {
    "waybill_ranges": "TONGBAN_WAYBILL_RANGES",  # intake: the EMS waybill ranges (shared.s10.parse_ranges)
    "portal_url": "TONGBAN_PORTAL_URL",  # intake: the portal's public URL, where the notices' QR codes point
    "rectify_days": "TONGBAN_RECTIFY_DAYS",  # evaluation: a bad rating's 整改 due, working days (5-15; 15)
    "complaint_days": "TONGBAN_COMPLAINT_DAYS",  # evaluation: a complaint's due, working days (5)
    # evaluation's deadline supervision: seconds between the watcher's passes; the yellow threshold; the
    # forecast's horizon and decision-rate window (working days)
    "supervision_interval": "TONGBAN_SUPERVISION_INTERVAL",
    "yellow_days": "TONGBAN_YELLOW_DAYS",
    "forecast_days": "TONGBAN_FORECAST_DAYS",
    "forecast_window_days": "TONGBAN_FORECAST_WINDOW_DAYS",
    # the portal: the other instances' API base URLs it calls on people's behalf, as JSON {instance: URL}
    "upstreams": "TONGBAN_PORTAL_UPSTREAMS",
    # the portal: how many reverse proxies in front of it append X-Forwarded-For (0: the headers are ignored)
    "proxy_hops": "TONGBAN_PROXY_HOPS",
}


def development_mode(env=None) -> bool:
    raw = (os.environ if env is None else env).get(DEV_MODE_VARIABLE, "")
    return raw.strip().lower() in ("1", "true", "yes", "on")


class InsecureSettings(RuntimeError):
    """A service would run with a development secret outside development mode."""


def secret_problems(settings: Settings, env=None) -> list[str]:
    """What keeps `settings` from running outside development mode (empty in development mode)."""
    if development_mode(env):
        return []
    problems = []
    if not settings.token_public_keys:
        problems.append("TONGBAN_TOKEN_PUBLIC_KEYS (the portal's public key set, JWKS) is unset")
    if settings.service == "portal" and not settings.token_private_key:
        problems.append("TONGBAN_TOKEN_PRIVATE_KEY (the portal's Ed25519 signing key, PEM) is unset")
    from shared import busauth

    # the kind's broker password is derived from the bus secret unless given outright (or users are off)
    if (settings.bus_users and settings.service in busauth.KINDS and not settings.bus_passwords.get(settings.service)
            and (not settings.bus_secret or settings.bus_secret == DEV_BUS_SECRET)):
        problems.append(f"TONGBAN_BUS_SECRET (or {BUS_PASSWORD_VARIABLES[settings.service]}) is unset or the "
                        "published development secret")
    return problems


def check_secrets(settings: Settings, env=None) -> None:
    """Raise InsecureSettings with a one-line message naming what to set (see `secret_problems`)."""
    problems = secret_problems(settings, env)
    if problems:
        raise InsecureSettings(f"{settings.instance} refuses to start: {'; '.join(problems)}. Set a real secret, "
                               f"or {DEV_MODE_VARIABLE}=1 for development on this machine only.")


#: notify's channels, templates and fallbacks (read from `Settings.extra` by services/notify/config.py)
NOTIFY_VARIABLES = {
    "TONGBAN_SMS_URL": "sms_url", "TONGBAN_SMS_ACCOUNT": "sms_account", "TONGBAN_SMS_KEY": "sms_key",
    "TONGBAN_SMS_SIGN": "sms_sign", "TONGBAN_SMS_TEMPLATES": "sms_templates", "TONGBAN_SMS_TIMEOUT": "sms_timeout",
    "TONGBAN_SMTP_HOST": "smtp_host", "TONGBAN_SMTP_PORT": "smtp_port", "TONGBAN_SMTP_FROM": "smtp_from",
    "TONGBAN_SMTP_USER": "smtp_user", "TONGBAN_SMTP_PASSWORD": "smtp_password",
    "TONGBAN_SMTP_STARTTLS": "smtp_starttls", "TONGBAN_SMTP_TIMEOUT": "smtp_timeout",
    "TONGBAN_NOTIFY_TEMPLATES": "notify_templates", "TONGBAN_NOTIFY_FALLBACK": "notify_fallback",
    "TONGBAN_NOTIFY_INTAKE_URLS": "intake_urls",
    # notify's own API token (role service), minted by city IT with `tongban token`: to fetch a notice's PDF
    "TONGBAN_NOTIFY_TOKEN": "notify_token",
}

_INSTANCE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


DEFAULT_RETRY_DELAYS = (1.0, 10.0, 60.0, 300.0, 1800.0)


def _env_delays(name: str, default: tuple) -> tuple:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        delays = tuple(float(x) for x in raw.replace(" ", "").split(",") if x)
    except ValueError:
        raise ValueError(f"{name} must be seconds separated by commas, e.g. 1,10,60, got {raw!r}") from None
    if any(d <= 0 for d in delays):
        raise ValueError(f"{name}: every delay must be positive, got {raw!r}")
    return delays


def _bus_users(env) -> str | None:
    """TONGBAN_BUS_USERS: unset, the users are named after the bus prefix; `off`, none are used."""
    raw = env.get("TONGBAN_BUS_USERS")
    if raw is None or raw == "":
        return ""
    return None if raw.lower() in ("off", "no", "0", "false") else raw


def _text_or_file(name: str) -> str:
    """A variable holding either the text itself (a JWKS, a PEM key) or the path of a file with it."""
    raw = (os.environ.get(name) or "").strip()
    if not raw or raw.startswith(("{", "-----")):
        return raw
    try:
        return Path(raw).read_text()
    except OSError as exc:
        raise ValueError(f"{name}: cannot read {raw}: {exc.strerror}") from None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """One service instance's settings."""

    service: str  # intake | approval | agent | notify | evaluation
    instance: str  # unique per deployment, e.g. intake-320583101 or approval-minzheng
    amqp_url: str = DEFAULT_AMQP_URL
    bus_prefix: str = "tongban"  # exchange and queue names start with it (tests isolate by it)
    data_dir: Path = Path("var")
    database_url: str | None = None  # default: one SQLite file per instance under data_dir
    # API tokens (shared.tokens): the public key set every service checks tokens with (JWKS text), and the
    # private key that signs them, which only the portal (and city IT's `tongban token`) holds
    token_public_keys: str = ""
    token_private_key: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    town: str | None = None  # intake: the centre's town code (9 digits)
    department: str | None = None  # approval: the department code
    delivery_limit: int = 5  # broker redeliveries before a message is dead-lettered
    retry_delays: tuple = DEFAULT_RETRY_DELAYS  # seconds a failed message waits before each new try
    # each service kind connects as its own broker user `<bus_users>-<kind>` (shared.busauth); None:
    # every instance connects with amqp_url as given
    bus_users: str | None = None
    bus_secret: str = DEV_BUS_SECRET  # the kinds' passwords are derived from it (HMAC) …
    bus_passwords: dict = field(default_factory=dict)  # … unless given here, by kind
    relay_interval: float = 0.5  # seconds between outbox polls when idle
    relay_window: int = 500  # outbox rows published per round, confirms outstanding
    relay_min_gap: float = 0.05  # seconds at least between the starts of two rounds (batches commits)
    relay_confirm_timeout: float = 10.0  # seconds to wait for a window's confirms before trying again
    relay_lease: float = 30.0  # seconds a claimed row is left to its relay before another may take it
    outbox_max_age: float = 60.0  # /health is degraded when an unsent outbox row is older (seconds)
    health_interval: float = 1.0  # seconds between background health checks
    # published outbox rows and inbox rows older than this are purged (shared.store.Store.purge); inbox rows
    # are kept at least `inbox_retention_seconds` whatever this says
    outbox_retention_days: float = 7.0
    retention_interval: float = 3600.0  # seconds between purges
    retention_batch: int = 1000  # rows deleted per (short) transaction
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not _INSTANCE_RE.match(self.instance):
            raise ValueError(f"instance name {self.instance!r} must be lowercase letters, digits, - or _")

    @property
    def outbox_retention_seconds(self) -> float:
        return self.outbox_retention_days * 86400.0

    @property
    def inbox_retention_seconds(self) -> float:
        """How long an inbox row (a message handled) is kept: the retention, but never less than the longest
        window in which the same message can come again -- every retry delay of the failure path
        (`retry_delays`, ~36 min by default) plus the broker's redeliveries, each within a relay lease -- with
        a day's margin for a backlog in the queue. A row purged earlier would let a late copy be handled twice."""
        window = sum(self.retry_delays) + self.delivery_limit * self.relay_lease
        return max(self.outbox_retention_seconds, window + 86400.0)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(Path(self.data_dir) / (self.instance + '.db')).resolve()}"

    @property
    def service_amqp_url(self) -> str:
        """The URL this instance connects with: its service kind's own broker user (shared.busauth)."""
        from shared import busauth

        if not self.bus_users or self.service not in busauth.KINDS:
            return self.amqp_url
        user = busauth.user_name(self.bus_users, self.service)
        u = urlsplit(self.amqp_url)
        host = u.netloc.rsplit("@", 1)[-1]
        return urlunsplit((u.scheme, f"{quote(user, safe='')}:{quote(self.bus_password(self.service), safe='')}@{host}",
                           u.path, u.query, u.fragment))

    def bus_password(self, kind: str) -> str:
        from shared import busauth

        return self.bus_passwords.get(kind) or busauth.password_for(self.bus_secret,
                                                                    busauth.user_name(self.bus_users, kind))

    def signing_key(self):
        """The token signing key (shared.tokens.SigningKey): the configured one, or in development mode the
        data folder's development key; None where this instance may not sign."""
        from shared import tokens

        if self.token_private_key:
            return tokens.SigningKey.from_pem(self.token_private_key)
        if development_mode() and self.service in ("portal", "cli"):
            return tokens.dev_keys(Path(self.data_dir) / "keys")
        return None

    def public_keys(self) -> str:
        """The JWKS tokens are checked against: the configured set, or in development mode the data folder's
        development key's public half."""
        from shared import tokens

        if self.token_public_keys:
            return self.token_public_keys
        if development_mode():
            return tokens.jwks_text(tokens.dev_keys(Path(self.data_dir) / "keys"))
        return ""

    def with_dev_keys(self) -> Settings:
        """In development mode, the settings with the data folder's development keys filled in where unset
        (what `tongban up` hands each instance; secret_problems then sees them set)."""
        if not development_mode() or self.token_public_keys:
            return self
        changes = {"token_public_keys": self.public_keys()}
        if self.service in ("portal", "cli") and not self.token_private_key:
            changes["token_private_key"] = self.signing_key().to_pem()
        return self.with_(**changes)

    @property
    def web_address(self) -> str:
        return f"{self.http_host}:{self.http_port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, service: str, **overrides) -> Settings:
        """Read TONGBAN_* variables; keyword overrides win (the CLI passes its flags)."""
        env = os.environ
        values = dict(
            service=service,
            instance=env.get("TONGBAN_INSTANCE") or service,
            amqp_url=env.get("TONGBAN_AMQP_URL") or DEFAULT_AMQP_URL,
            bus_prefix=env.get("TONGBAN_BUS_PREFIX") or "tongban",
            data_dir=Path(env.get("TONGBAN_DATA_DIR") or "var"),
            database_url=env.get("TONGBAN_DATABASE_URL") or None,
            token_public_keys=_text_or_file("TONGBAN_TOKEN_PUBLIC_KEYS"),
            # nobody but the portal (and the CLI, which signs `tongban token`) reads the signing key
            token_private_key=_text_or_file("TONGBAN_TOKEN_PRIVATE_KEY") if service in ("portal", "cli") else "",
            http_host=env.get("TONGBAN_HTTP_HOST") or "127.0.0.1",
            http_port=_env_int("TONGBAN_HTTP_PORT", 8000),
            town=env.get("TONGBAN_TOWN") or None,
            department=env.get("TONGBAN_DEPARTMENT") or None,
            delivery_limit=_env_int("TONGBAN_DELIVERY_LIMIT", 5),
            retry_delays=_env_delays("TONGBAN_RETRY_DELAYS", DEFAULT_RETRY_DELAYS),
            # on by default, named after the bus prefix; TONGBAN_BUS_USERS=off connects with the URL as given
            bus_users=_bus_users(env),
            bus_secret=env.get("TONGBAN_BUS_SECRET") or DEV_BUS_SECRET,
            bus_passwords={kind: env[name] for kind, name in BUS_PASSWORD_VARIABLES.items() if env.get(name)},
            relay_interval=_env_float("TONGBAN_RELAY_INTERVAL", 0.5),
            relay_window=_env_int("TONGBAN_RELAY_WINDOW", 500),
            relay_min_gap=_env_float("TONGBAN_RELAY_MIN_GAP", 0.05),
            relay_confirm_timeout=_env_float("TONGBAN_RELAY_CONFIRM_TIMEOUT", 10.0),
            relay_lease=_env_float("TONGBAN_RELAY_LEASE", 30.0),
            outbox_max_age=_env_float("TONGBAN_OUTBOX_MAX_AGE", 60.0),
            health_interval=_env_float("TONGBAN_HEALTH_INTERVAL", 1.0),
            outbox_retention_days=_env_float("TONGBAN_RETENTION_DAYS", 7.0),
            extra={**{key: env[name] for key, name in EXTRA_VARIABLES.items() if env.get(name)},
                   **{key: env[name] for name, key in NOTIFY_VARIABLES.items() if env.get(name)}},
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["bus_users"] == "" or (not env.get("TONGBAN_BUS_USERS") and "bus_users" not in overrides):
            values["bus_users"] = values["bus_prefix"]  # the users are named after the bus they may use
        return cls(**values)
