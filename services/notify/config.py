"""Notify's configuration, from `Settings.extra` (filled from the TONGBAN_SMS_*, TONGBAN_SMTP_* and
TONGBAN_NOTIFY_* variables by shared.config, or given by a test or `tongban up`). Read once at start: a
setting that does not parse stops the start with its name."""
from __future__ import annotations

from services.notify import domain
from services.notify.channels import PdfSource, SmsGateway, SmtpMail
from services.notify.templating import KINDS
from shared.config import Settings


class ConfigProblem(ValueError):
    """A notify setting that does not parse."""


def _pairs(text, name: str) -> dict:
    """`a=1,b=2` (or a dict already) -> {"a": "1", "b": "2"}."""
    if isinstance(text, dict):
        return dict(text)
    out = {}
    for part in (p.strip() for p in str(text or "").split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigProblem(f"{name}: {part!r} is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _number(value, name: str, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigProblem(f"{name} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigProblem(f"{name} must be positive, got {value!r}")
    return number


def intake_urls(value):
    """TONGBAN_NOTIFY_INTAKE_URLS: `http://intake-{town}:8000` (one pattern for every town, e.g. k8s services)
    or `320583101=http://…,320583102=http://…`."""
    if isinstance(value, dict) or value is None:
        return value or {}
    if "{town}" in str(value):
        return str(value)
    return _pairs(value, "TONGBAN_NOTIFY_INTAKE_URLS")


def sms_channel(extra: dict) -> SmsGateway | None:
    if not extra.get("sms_url"):
        return None
    missing = [n for n, k in (("TONGBAN_SMS_ACCOUNT", "sms_account"), ("TONGBAN_SMS_KEY", "sms_key"))
               if not extra.get(k)]
    if missing:
        raise ConfigProblem(f"TONGBAN_SMS_URL is set: {' and '.join(missing)} must be set too")
    templates = _pairs(extra.get("sms_templates"), "TONGBAN_SMS_TEMPLATES")
    unknown = sorted(set(templates) - set(KINDS) - {"default"})
    if unknown:
        raise ConfigProblem(f"TONGBAN_SMS_TEMPLATES: unknown notice kind(s) {', '.join(unknown)}")
    sign = extra.get("sms_sign", "全城通办")
    if sign and ("【" in sign or "】" in sign or len(sign) > 20):
        raise ConfigProblem(f"TONGBAN_SMS_SIGN is the sign's name without 【】 (at most 20 characters), got {sign!r}")
    return SmsGateway(extra["sms_url"], extra["sms_account"], extra["sms_key"], sign_name=sign or None,
                      templates=templates, timeout_seconds=_number(extra.get("sms_timeout"), "TONGBAN_SMS_TIMEOUT",
                                                                   10.0))


def email_channel(extra: dict) -> SmtpMail | None:
    if not extra.get("smtp_host"):
        return None
    sender = extra.get("smtp_from") or ""
    if "@" not in sender:
        raise ConfigProblem("TONGBAN_SMTP_HOST is set: TONGBAN_SMTP_FROM must be the sender's address")
    port = int(_number(extra.get("smtp_port"), "TONGBAN_SMTP_PORT", 25))
    timeout = _number(extra.get("smtp_timeout"), "TONGBAN_SMTP_TIMEOUT", 20.0)
    pdfs = PdfSource(intake_urls(extra.get("intake_urls")), extra.get("notify_token"),
                     timeout_seconds=min(timeout, 10.0))
    starttls = str(extra.get("smtp_starttls", "")).lower() in ("1", "true", "yes", "on")
    # the PDF is fetched within the send: its time counts in the channel's timeout
    return SmtpMail(extra["smtp_host"], port, sender, pdfs, user=extra.get("smtp_user"),
                    password=extra.get("smtp_password"), starttls=starttls,
                    timeout_seconds=timeout + pdfs.timeout_seconds)


def configured_channels(settings: Settings) -> dict:
    """The SMS and e-mail channels this deployment has configured (by name)."""
    extra = settings.extra
    channels = {}
    sms = sms_channel(extra)
    if sms is not None:
        channels["sms"] = sms
    mail = email_channel(extra)
    if mail is not None:
        channels["email"] = mail
    return channels


def fallback_orders(settings: Settings) -> dict:
    try:
        return domain.parse_fallback(settings.extra.get("notify_fallback"), KINDS)
    except ValueError as exc:
        raise ConfigProblem(f"TONGBAN_NOTIFY_FALLBACK: {exc}") from None
