"""Logging filters.

Django logs every 4xx answer as a warning on ``django.request`` ("Conflict: /api/v1/bookings").
During a rush most answers are sold-out 409s and refused 429s: thousands of lines a second that
say nothing went wrong. ``ClientErrorsAsInfo`` turns those records into INFO and lets them through
only when ``YUYUE_LOG_CLIENT_ERRORS=on``; server errors (5xx) are never touched.
"""

from __future__ import annotations

import logging


class ClientErrorsAsInfo(logging.Filter):
    def __init__(self, keep: bool = False) -> None:
        super().__init__()
        self.keep = keep

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
            return self.keep
        return True
