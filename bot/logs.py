"""One logging set-up for the bot and the command line: plain lines for a terminal, JSON lines for a
log collector, and the rules that keep personal data and secrets out of either.

What we log ourselves never names a person (ticket ids, message ids and counts only: see
docs/architecture.md, "Privacy invariants"). Two things could still leak through libraries, and are
stopped here rather than trusted to every call site:

- discord.py at DEBUG logs whole REST request bodies and gateway payloads (message text, user
  names and ids): its loggers are held at INFO or above whatever level is configured;
- a secret (the bot's token) that ends up in an exception's text: every record is scrubbed of the
  secrets given to :func:`configure_logging` before it is formatted.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("plain", "json")
# Libraries whose DEBUG output carries what people sent (payloads, bodies): never below INFO.
PAYLOAD_LOGGERS = ("discord", "aiohttp.client", "aiohttp.access")
_PLAIN = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
HANDLER_NAME = "removal-desk"
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and,
    for a failure, ``exception`` (the traceback as text)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes, as ``logging.lastResort`` does, so
    a handler made before stderr is redirected (a test's capture, a daemon's re-open) follows it."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> IO[str]:  # type: ignore[override]
        return sys.stderr


class _ScrubSecrets(logging.Filter):
    """Replaces each secret in a record's message, arguments and traceback with ``[redacted]``."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self._scrub(message), None
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
            record.exc_info = None  # formatted (and scrubbed) already
        return True


def configure_logging(
    level: str = "INFO",
    *,
    json_lines: bool = False,
    secrets: tuple[str, ...] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr), plain or as JSON lines.

    Called once by the command line before any command runs; calling it again replaces its handler
    (tests, a bot started twice in one process) rather than adding a second one."""
    if level.upper() not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    for old in [handler for handler in root.handlers if handler.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(_PLAIN))
    handler.addFilter(_ScrubSecrets([secret for secret in secrets if secret]))
    root.addHandler(handler)
    root.setLevel(level.upper())
    floor = max(logging.INFO, logging.getLevelNamesMapping()[level.upper()])
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(floor)
    return handler
