"""Logging setup: quiet by default, ``-v`` for info, ``-vv`` for debug, ``--log-json`` for machines.

A redaction filter replaces every registered secret value with ``**********`` as a last line
of defence; the code is written not to log secrets in the first place.
"""

from __future__ import annotations

import json
import logging
import sys

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make sure ``value`` never appears in a log line."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "**********")
    return text


class RedactingFilter(logging.Filter):
    """Formats the record early and removes secrets from the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and extra ``fields``)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        return json.dumps(payload, default=str)


def configure(verbosity: int = 0, *, json_lines: bool = False, level: str | None = None) -> None:
    """Set up the ``hub`` logger on stderr."""
    if verbosity >= 2:
        lvl = logging.DEBUG
    elif verbosity == 1:
        lvl = logging.INFO
    else:
        lvl = getattr(logging, (level or "warning").upper(), logging.WARNING)
    logger = logging.getLogger("hub")
    logger.setLevel(lvl)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    logger.addHandler(handler)
    logger.propagate = False
