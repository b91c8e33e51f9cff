"""Logging setup: quiet by default, ``-v`` for info, ``-vv`` for debug, ``--log-json`` for machines.

Everything that logs goes through the same door, the hub's own loggers and any plugin's
(``logging.getLogger("hub_intercom")``) alike:

- redaction happens when a log record is *created* (a record factory), so a secret is gone
  before any handler sees it, whichever handler a plugin attached;
- the handler and the formatter sit on the root logger, so ``--log-json`` and the level
  apply to every logger that propagates (the default).

Only secrets are redacted (``SecretStr`` settings and values resolved from ``env:``/``file:``
references to them), with the forms they travel in (URL-encoded, inside Basic base64); URLs
and e-mail addresses stay readable. JSON lines carry UTC ``Z`` timestamps and the record's
structured ``fields`` (``extra={"fields": {...}}``: connection, stream, counts).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading

_secrets: list[str] = []
_lock = threading.Lock()
MASK = "**********"


def register_secret(value: str | None) -> None:
    """Make sure ``value`` (and its encoded forms) never appears in a log line."""
    if not value or len(value) < 4:
        return
    from hub.http.responses import expand_secrets

    with _lock:
        known = set(_secrets)
        for form in expand_secrets([value]):
            if form not in known:
                _secrets.append(form)
        _secrets.sort(key=len, reverse=True)


def forget_secrets() -> None:
    """Drop every registered secret (tests)."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _redact_record(record: logging.LogRecord) -> None:
    if not _secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the logger's problem, not ours
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        record.fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))


_base_factory = logging.getLogRecordFactory()


def _factory(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _redact_record(record)
    return record


logging.setLogRecordFactory(_factory)


class RedactingFilter(logging.Filter):
    """Removes secrets from a record (extra ``fields`` set after creation included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: UTC time with ``Z``, level, logger, message, ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        payload = {
            "ts": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                payload.setdefault(key, value)
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class _HubHandler(logging.StreamHandler):
    """The handler ``configure`` installs (recognised so a second call replaces it)."""


def configure(verbosity: int = 0, *, json_lines: bool = False, level: str | None = None) -> None:
    """Send every logger's records to stderr, redacted, as text or JSON lines."""
    if verbosity >= 2:
        lvl = logging.DEBUG
    elif verbosity == 1:
        lvl = logging.INFO
    else:
        lvl = getattr(logging, (level or "warning").upper(), logging.WARNING)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _HubHandler):
            root.removeHandler(handler)
    handler = _HubHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root.addHandler(handler)
    root.setLevel(lvl)
    hub_logger = logging.getLogger("hub")
    for old in list(hub_logger.handlers):
        hub_logger.removeHandler(old)
    hub_logger.setLevel(logging.NOTSET)  # the root's level decides, for plugins' loggers too
    hub_logger.propagate = True
    # Libraries' per-request chatter only at -vv.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
