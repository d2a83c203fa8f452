"""generate_slots: which days get slots, how they are cut, and what they carry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models.functions import ExtractHour
from factories import make_branch, make_resource, make_schedule

from yuyue.core import timeutil
from yuyue.scheduling.models import ClosedDate, Slot
from yuyue.scheduling.services import generate_slots

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2026, 3, 2)  # an ordinary week: no holiday, no make-up working day
NATIONAL_DAY = dt.date(2026, 10, 1)  # statutory holiday (a Thursday)
MAKEUP_SATURDAY = dt.date(2026, 10, 10)  # a Saturday that is a working day (调休)


def slot_dates(**filters: object) -> list[dt.date]:
    return [timeutil.local_date(s.start) for s in Slot.objects.filter(**filters).order_by("start")]


def local_times() -> list[tuple[dt.time, dt.time]]:
    zone = timeutil.local_zone()
    return [(s.start.astimezone(zone).time(), s.end.astimezone(zone).time()) for s in Slot.objects.order_by("start")]


def test_slots_only_on_the_schedules_weekdays(make_offering):
    make_schedule(offering=make_offering(), weekdays=[0, 2])  # Monday, Wednesday

    generate_slots(start=MONDAY, days=7)

    assert slot_dates() == [MONDAY, MONDAY + dt.timedelta(days=2)]


def test_no_slots_outside_the_validity_window(make_offering):
    make_schedule(
        offering=make_offering(), valid_from=MONDAY + dt.timedelta(days=2), valid_until=MONDAY + dt.timedelta(days=3)
    )

    generate_slots(start=MONDAY, days=7)

    assert slot_dates() == [MONDAY + dt.timedelta(days=2), MONDAY + dt.timedelta(days=3)]


def test_days_counts_local_dates_from_start(make_offering):
    make_schedule(offering=make_offering())

    assert generate_slots(start=MONDAY, days=3) == 3
    assert slot_dates() == [MONDAY, MONDAY + dt.timedelta(days=1), MONDAY + dt.timedelta(days=2)]


def test_start_defaults_to_today(make_offering, monkeypatch):
    monkeypatch.setattr(timeutil, "today", lambda: MONDAY)
    make_schedule(offering=make_offering())

    generate_slots(days=1)

    assert slot_dates() == [MONDAY]


def test_slot_minutes_cut_the_hours_and_drop_a_short_tail(make_offering):
    make_schedule(offering=make_offering(), start_time=dt.time(9, 0), end_time=dt.time(10, 40), slot_minutes=30)

    generate_slots(start=MONDAY, days=1)

    assert local_times() == [
        (dt.time(9, 0), dt.time(9, 30)),
        (dt.time(9, 30), dt.time(10, 0)),
        (dt.time(10, 0), dt.time(10, 30)),
    ]


def test_without_slot_minutes_one_slot_from_start_to_end(make_offering):
    make_schedule(offering=make_offering(), start_time=dt.time(14, 0), end_time=dt.time(17, 30))

    generate_slots(start=MONDAY, days=1)

    slot = Slot.objects.get()
    assert (slot.start, slot.end) == (
        timeutil.local_datetime(MONDAY, dt.time(14, 0)),
        timeutil.local_datetime(MONDAY, dt.time(17, 30)),
    )


def test_second_run_creates_nothing(make_offering):
    make_schedule(offering=make_offering(), slot_minutes=20)
    first = generate_slots(start=MONDAY, days=7)

    second = generate_slots(start=MONDAY, days=7)

    assert (first, second) == (21, 0)
    assert Slot.objects.count() == 21


def test_a_longer_run_adds_only_the_new_days(make_offering):
    make_schedule(offering=make_offering())
    generate_slots(start=MONDAY, days=3)

    assert generate_slots(start=MONDAY, days=5) == 2
    assert Slot.objects.count() == 5


def test_closed_date_for_the_whole_merchant_skips_the_day(merchant, branch, make_offering):
    make_schedule(offering=make_offering(branch=branch))
    ClosedDate.objects.create(merchant=merchant, date=MONDAY)

    generate_slots(start=MONDAY, days=2)

    assert slot_dates() == [MONDAY + dt.timedelta(days=1)]


def test_closed_date_for_the_offerings_branch_skips_the_day(merchant, branch, make_offering):
    make_schedule(offering=make_offering(branch=branch))
    ClosedDate.objects.create(merchant=merchant, branch=branch, date=MONDAY)

    generate_slots(start=MONDAY, days=2)

    assert slot_dates() == [MONDAY + dt.timedelta(days=1)]


def test_closed_date_for_another_branch_does_not_apply(merchant, branch, make_offering):
    make_schedule(offering=make_offering(branch=branch))
    ClosedDate.objects.create(merchant=merchant, branch=make_branch(merchant=merchant), date=MONDAY)

    generate_slots(start=MONDAY, days=2)

    assert slot_dates() == [MONDAY, MONDAY + dt.timedelta(days=1)]


def test_closed_date_for_the_offering_skips_the_day_for_it_alone(merchant, make_offering):
    closed, other = make_offering(), make_offering()
    make_schedule(offering=closed)
    make_schedule(offering=other)
    ClosedDate.objects.create(merchant=merchant, offering=closed, date=MONDAY)

    generate_slots(start=MONDAY, days=1)

    assert slot_dates(offering=closed) == []
    assert slot_dates(offering=other) == [MONDAY]


def test_closed_date_of_another_merchant_does_not_apply(make_offering):
    make_schedule(offering=make_offering())
    ClosedDate.objects.create(merchant=make_branch().merchant, date=MONDAY)

    generate_slots(start=MONDAY, days=1)

    assert slot_dates() == [MONDAY]


def test_holiday_mode_closed_makes_no_slots_on_a_statutory_holiday(make_offering):
    make_schedule(offering=make_offering(policy_overrides={"holiday_mode": "closed"}))

    generate_slots(start=NATIONAL_DAY - dt.timedelta(days=1), days=2)

    assert slot_dates() == [NATIONAL_DAY - dt.timedelta(days=1)]


def test_holiday_mode_factor_scales_capacity_down_and_marks_the_slot(make_offering):
    offering = make_offering(policy_overrides={"holiday_mode": "factor", "holiday_capacity_factor": 0.57})
    make_schedule(offering=offering, capacity=100)

    generate_slots(start=NATIONAL_DAY - dt.timedelta(days=1), days=2)

    eve, holiday = Slot.objects.order_by("start")
    assert (eve.capacity, eve.is_holiday) == (100, False)
    assert (holiday.capacity, holiday.is_holiday) == (57, True)


def test_holiday_factor_never_leaves_less_than_one_place(make_offering):
    offering = make_offering(policy_overrides={"holiday_mode": "factor", "holiday_capacity_factor": 0.1})
    make_schedule(offering=offering, capacity=3)

    generate_slots(start=NATIONAL_DAY, days=1)

    assert Slot.objects.get().capacity == 1


def test_holiday_mode_normal_keeps_capacity_but_marks_the_slot(make_offering):
    make_schedule(offering=make_offering(policy_overrides={"holiday_mode": "normal"}), capacity=10)

    generate_slots(start=NATIONAL_DAY, days=1)

    slot = Slot.objects.get()
    assert (slot.capacity, slot.is_holiday) == (10, True)


def test_workdays_only_opens_on_a_makeup_working_saturday(make_offering):
    make_schedule(offering=make_offering(), weekdays=[], workdays_only=True)

    generate_slots(start=MAKEUP_SATURDAY, days=2)  # Saturday (调休上班), then an ordinary Sunday

    assert slot_dates() == [MAKEUP_SATURDAY]


def test_workdays_only_closes_on_a_statutory_holiday_weekday(make_offering):
    make_schedule(offering=make_offering(), weekdays=[0, 1, 2, 3, 4], workdays_only=True)

    generate_slots(start=NATIONAL_DAY - dt.timedelta(days=1), days=2)  # Wednesday, then Thursday 国庆

    assert slot_dates() == [NATIONAL_DAY - dt.timedelta(days=1)]


def test_schedule_resources_are_copied_onto_each_slot(merchant, make_offering):
    coach, room = make_resource(merchant=merchant), make_resource(merchant=merchant, type="room")
    make_schedule(offering=make_offering(), resources=[coach, room], slot_minutes=30)

    generate_slots(start=MONDAY, days=2)

    assert Slot.objects.count() == 4
    for slot in Slot.objects.prefetch_related("resources"):
        assert set(slot.resources.all()) == {coach, room}


def test_price_is_copied_from_the_schedule_or_left_to_the_offering(make_offering):
    offering = make_offering(price_fen=8000)
    make_schedule(offering=offering, price_fen=6000, start_time=dt.time(9, 0), end_time=dt.time(10, 0))
    make_schedule(offering=offering, start_time=dt.time(19, 0), end_time=dt.time(20, 0))

    generate_slots(start=MONDAY, days=1)

    morning, evening = Slot.objects.order_by("start")
    assert (morning.price_fen, morning.effective_price_fen) == (6000, 6000)
    assert (evening.price_fen, evening.effective_price_fen) == (None, 8000)


def test_local_nine_oclock_is_stored_as_one_oclock_utc(make_offering):
    make_schedule(offering=make_offering(), start_time=dt.time(9, 0), end_time=dt.time(10, 0))

    generate_slots(start=MONDAY, days=1)

    slot = Slot.objects.annotate(utc_hour=ExtractHour("start", tzinfo=dt.UTC)).get()
    assert slot.utc_hour == 1
    assert slot.start == dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def test_inactive_schedules_and_offerings_make_no_slots(make_offering):
    make_schedule(offering=make_offering(), is_active=False)
    make_schedule(offering=make_offering(is_active=False))

    assert generate_slots(start=MONDAY, days=7) == 0


def test_offering_argument_limits_the_run_to_that_offering(make_offering):
    wanted, other = make_offering(), make_offering()
    make_schedule(offering=wanted)
    make_schedule(offering=other)

    generate_slots(start=MONDAY, days=1, offering=wanted)

    assert list(Slot.objects.values_list("offering_id", flat=True)) == [wanted.pk]
