"""Time: stored in UTC, shown and reasoned about in the merchant's zone (Asia/Shanghai)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import chinese_calendar
from django.conf import settings
from django.utils import timezone


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def now() -> dt.datetime:
    return timezone.now()


def local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(local_zone()).date()


def local_datetime(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=local_zone())


def today() -> dt.date:
    return local_date(now())


def is_statutory_holiday(day: dt.date) -> bool:
    """A day off by the State Council's calendar (春节, 国庆节, ...), not an ordinary weekend."""
    return day in chinese_calendar.holidays


def is_makeup_workday(day: dt.date) -> bool:
    """A weekend day that is a working day because a holiday was moved (调休上班)."""
    return day in chinese_calendar.workdays


def is_workday(day: dt.date) -> bool:
    """Working day per the official calendar; years it does not cover fall back to Mon–Fri."""
    if is_statutory_holiday(day):
        return False
    return is_makeup_workday(day) or day.weekday() < 5
