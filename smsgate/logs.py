"""Logging for ``serve`` and ``worker``: one line per event, as text or JSON.

``SMSGATE_LOG_FORMAT=json`` writes one JSON object per line (``time``, ``level``, ``logger``,
``message`` and the event's own fields) for log shippers; the default is plain text. Events
carry their fields as ``extra={"fields": {...}}`` so both formats show the same facts.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send smsgate's log lines to standard error as ``text`` or ``json`` (``Settings.log_format``;
    idempotent)."""
    chosen = log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name("smsgate")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "smsgate"] + [handler]
    root.setLevel(level)
    # Alembic narrates every plugin it loads at INFO; only its warnings matter to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class RateLimit:
    """At most ``per_minute`` lines per key and minute, so an attack cannot fill the disk.

    ``allow`` returns (allowed, suppressed): how many lines of this key were dropped since the
    last one let through, so the next line can say so. Per process, in memory: it bounds what
    one process writes, which is what the disk cares about.
    """

    def __init__(self, per_minute: int = 30) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int, int]] = {}

    def allow(self, key: str, now: float | None = None) -> tuple[bool, int]:
        minute = int((time.monotonic() if now is None else now) // 60)
        with self._lock:
            window, count, suppressed = self._windows.get(key, (minute, 0, 0))
            if window != minute:
                window, count = minute, 0
            if count < self.per_minute:
                self._windows[key] = (window, count + 1, 0)
                return True, suppressed
            self._windows[key] = (window, count, suppressed + 1)
            return False, suppressed + 1


def mask_phone(phone: str) -> str:
    """``+6281234567890`` -> ``+62812****7890``: enough to tell senders apart in a log, not to call."""
    phone = (phone or "").strip()
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:6] + "*" * (len(phone) - 10 if len(phone) > 10 else 1) + phone[-4:]
