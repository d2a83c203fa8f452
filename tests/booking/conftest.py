"""Fixtures for engine tests: a moment in time and slots relative to it."""

from __future__ import annotations

import datetime as dt

import pytest

from yuyue.core import timeutil


@pytest.fixture
def tomorrow_10() -> dt.datetime:
    """Tomorrow 10:00 in Asia/Shanghai: inside every kind's booking window."""
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(10, 0))
