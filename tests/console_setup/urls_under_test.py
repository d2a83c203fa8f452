"""The set-up pages' rows of the console permission matrix (tests/console/test_console_permissions.py).

``setup_url_cases(shop)`` returns ``(url_name, kwargs, method, required_permission[, post_data])``
for every URL of ``yuyue.console.urls_setup``, built on the objects of a ``console_world.Shop``.
It may be called several times for one shop (once per role tried), so the extra objects it needs
(a weekly rule, a closed slot, a closed date) are made once and found again afterwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from yuyue.core import timeutil
from yuyue.scheduling.models import ClosedDate, Schedule, Slot, SlotStatus

MARK = "permission-matrix"


def _schedule(shop: Any) -> Schedule:
    found = Schedule.objects.filter(offering=shop.course, name=MARK).first()
    if found is not None:
        return found
    return Schedule.objects.create(
        offering=shop.course,
        name=MARK,
        weekdays=[5],
        start_time=dt.time(18),
        end_time=dt.time(19),
        capacity=5,
        valid_from=timeutil.today(),
    )


def _closed_slot(shop: Any) -> Slot:
    start = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=5), dt.time(7))
    slot, _created = Slot.objects.get_or_create(
        offering=shop.course,
        start=start,
        defaults={"end": start + dt.timedelta(hours=1), "capacity": 5, "status": SlotStatus.CLOSED},
    )
    return slot


def _closed_date(shop: Any) -> ClosedDate:
    day = timeutil.today() + dt.timedelta(days=40)
    closed, _created = ClosedDate.objects.get_or_create(merchant=shop.merchant, date=day, defaults={"reason": MARK})
    return closed


def schedule_data(shop: Any) -> dict[str, Any]:
    return {
        "offering": shop.course.pk,
        "weekdays": ["6"],
        "start_time": "20:00",
        "end_time": "21:00",
        "capacity": "6",
        "valid_from": timeutil.today().isoformat(),
    }


def offering_data(**changes: Any) -> dict[str, Any]:
    """A complete, valid offering form (course defaults, no extra questions)."""
    data = {
        "kind": "course",
        "title": "矩阵课程",
        "price_yuan": "88",
        "is_active": "on",
        "opens_days_ahead": "14",
        "closes_minutes_before_start": "30",
        "max_party_size": "1",
        "payment": "online",
        "limit_scope": "offering",
        "cancel_deadline_hours": "6",
        "late_cancel_points": "10",
        "late_cancel_refund_percent": "100",
        "max_reschedules": "2",
        "holiday_mode": "normal",
        "holiday_capacity_factor": "1",
        "ff-TOTAL_FORMS": "0",
        "ff-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


def setup_url_cases(shop: Any) -> list[tuple[Any, ...]]:
    rule = _schedule(shop)
    closed = _closed_slot(shop)
    closed_day = _closed_date(shop)
    later = (timeutil.today() + dt.timedelta(days=30)).isoformat()
    resource = {"name": "矩阵教练", "type": "coach", "is_active": "on"}
    return [
        ("calendar", {}, "GET", "schedules.view"),
        ("schedules", {}, "GET", "schedules.view"),
        ("schedule_new", {}, "GET", "schedules.change"),
        ("schedule_new", {}, "POST", "schedules.change", schedule_data(shop)),
        ("schedule_edit", {"schedule_id": rule.pk}, "GET", "schedules.change"),
        (
            "schedule_edit",
            {"schedule_id": rule.pk},
            "POST",
            "schedules.change",
            {**schedule_data(shop), "capacity": "9"},
        ),
        ("schedule_toggle", {"schedule_id": rule.pk}, "POST", "schedules.change"),
        ("slot_new", {}, "GET", "schedules.change"),
        (
            "slot_new",
            {},
            "POST",
            "schedules.change",
            {"offering": shop.course.pk, "day": later, "start_time": "06:00", "end_time": "07:00", "capacity": "3"},
        ),
        ("slot_detail", {"slot_id": shop.slot.pk}, "GET", "schedules.view"),
        ("slot_capacity", {"slot_id": shop.slot.pk}, "POST", "schedules.change", {"capacity": "20"}),
        ("slot_close", {"slot_id": shop.later_slot.pk}, "POST", "schedules.change", {"reason": "矩阵测试"}),
        ("slot_reopen", {"slot_id": closed.pk}, "POST", "schedules.change"),
        ("closed_dates", {}, "GET", "schedules.view"),
        ("close_day", {}, "GET", "schedules.change"),
        (
            "close_day",
            {},
            "POST",
            "schedules.change",
            {"day": later, "scope": "merchant", "reason": "矩阵测试", "confirm": "yes"},
        ),
        ("closed_date_delete", {"closed_date_id": closed_day.pk}, "POST", "schedules.change"),
        ("resources", {}, "GET", "catalog.view"),
        ("resource_new", {}, "GET", "catalog.change"),
        ("resource_new", {}, "POST", "catalog.change", resource),
        ("resource_edit", {"resource_id": shop.coach.pk}, "GET", "catalog.change"),
        ("resource_edit", {"resource_id": shop.coach.pk}, "POST", "catalog.change", resource),
        ("offerings", {}, "GET", "catalog.view"),
        ("offering_new", {}, "GET", "catalog.change"),
        ("offering_new", {}, "POST", "catalog.change", offering_data()),
        ("offering_edit", {"offering_id": shop.course.pk}, "GET", "catalog.change"),
        ("offering_edit", {"offering_id": shop.course.pk}, "POST", "catalog.change", offering_data(title="改名")),
    ]
