"""JSON logs with structlog; every line masks ID-card and phone numbers (个人信息保护法).

Work context (case number, town, department, nameko call id) is bound with contextvars
by the service plumbing, so every line a handler writes carries it.
"""
from __future__ import annotations

import logging
import sys

import structlog

from shared.pii import mask_value

_configured = False

def mask_pii(_logger, _method, event_dict):
    """structlog processor: mask ID and phone numbers anywhere in the event, tracebacks included."""
    return mask_value(event_dict)


# Until configure_logging runs (tests, a command that logs little), structlog's own defaults apply, changed
# three ways: to stderr, not stdout (a command's output, `tongban calendar due --json`, stays clean when it
# warns); masked like every other line; and plain tracebacks (with rich installed, for tongban status's tables,
# structlog renders every frame's locals: about a second each, so a consumer failing many messages in a row
# stalls).
if not structlog.is_configured():
    structlog.configure(
        processors=[*structlog.get_config()["processors"][:-1], mask_pii,
                    structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)],
        logger_factory=lambda *_args: structlog.PrintLogger(sys.stderr))


def _shared_processors():
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_pii,
    ]


def configure_logging(level: str = "INFO", stream=None) -> None:
    """Route structlog and the standard library (nameko, kombu) through one masked JSON renderer."""
    global _configured
    stream = stream or sys.stderr
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors()[:-2] + [structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.processors.format_exc_info,
            mask_pii,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_tongban", False):
            root.removeHandler(old)
    handler._tongban = True
    root.addHandler(handler)
    root.setLevel(level)
    # kombu and amqp are chatty at INFO about reconnects we already report
    logging.getLogger("amqp").setLevel(logging.WARNING)
    _configured = True


def get_logger(name: str | None = None):
    return structlog.get_logger(name)


def bind_context(**values) -> None:
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()
