"""Two members of staff saving at the same moment still cannot put one coach in two places.

Each client is a thread with its own connection, released together by a barrier, with real
commits. The resource row lock taken before the conflict check makes the second save wait for
the first and then see it; the last test switches the lock off and shows the race is real on
PostgreSQL and MariaDB (every save passes the check). A closure racing bookings leaves no
active booking on the closed slot.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from factories import make_branch, make_resource
from racing import race as race_clients
from racing import tally

from yuyue.core import timeutil
from yuyue.scheduling import services
from yuyue.scheduling.models import Schedule, Slot, SlotStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

TODAY = timeutil.today()


def race(*clients: Callable[[], Any]) -> Counter[str]:
    """Run the clients at once; tally "ok" and refusal codes. Any other exception fails the test."""
    return Counter(tally(race_clients(*clients)))


def test_two_overlapping_rules_for_one_coach_saved_at_once_one_is_refused(merchant, make_offering):
    coach = make_resource(merchant=merchant)
    offerings = [make_offering(branch=make_branch(merchant=merchant)) for _ in range(4)]

    def save(offering: Any, hour: int) -> Callable[[], Any]:
        spec = services.ScheduleSpec(
            weekdays=[0, 2, 4],
            start_time=dt.time(hour),
            end_time=dt.time(hour + 2),
            capacity=8,
            valid_from=TODAY,
            resources=[coach],
        )
        return lambda: services.save_schedule(offering=offering, spec=spec)

    # 9-11, 10-12, 9-11, 10-12: every pair overlaps, so only one rule may win.
    outcome = race(*(save(o, 9 + i % 2) for i, o in enumerate(offerings)))

    assert outcome == Counter({"ok": 1, "conflict": 3})
    assert Schedule.objects.count() == 1
    # The slots the coach is in never overlap.
    spans = sorted(Slot.objects.filter(resources=coach, status=SlotStatus.OPEN).values_list("start", "end"))
    assert all(end <= nxt for (_s, end), (nxt, _e) in itertools.pairwise(spans))


def test_ten_one_off_slots_for_one_driver_at_the_same_time_exactly_one_is_made(merchant, make_offering):
    driver = make_resource(merchant=merchant, type="driver")
    start = timeutil.local_datetime(TODAY + dt.timedelta(days=3), dt.time(8))

    def add(minutes: int) -> Callable[[], Any]:
        offering = make_offering(kind="vehicle")
        return lambda: services.add_slot(
            offering=offering,
            start=start + dt.timedelta(minutes=minutes),
            end=start + dt.timedelta(minutes=minutes + 90),
            capacity=1,
            resources=[driver],
        )

    outcome = race(*(add(5 * n) for n in range(10)))

    assert outcome == Counter({"ok": 1, "conflict": 9})
    assert Slot.objects.filter(resources=driver).count() == 1


def test_a_rule_and_a_one_off_slot_racing_for_one_doctor_never_both_win(merchant, make_offering):
    doctor = make_resource(merchant=merchant, type="doctor")
    day = TODAY + dt.timedelta(days=2)
    rule_offering, extra_offering = make_offering(kind="clinic"), make_offering(kind="clinic")
    spec = services.ScheduleSpec(
        weekdays=[day.weekday()],
        start_time=dt.time(8),
        end_time=dt.time(12),
        slot_minutes=30,
        capacity=20,
        valid_from=TODAY,
        resources=[doctor],
    )

    outcome = race(
        lambda: services.save_schedule(offering=rule_offering, spec=spec),
        lambda: services.add_slot(
            offering=extra_offering,
            start=timeutil.local_datetime(day, dt.time(11)),
            end=timeutil.local_datetime(day, dt.time(13)),
            capacity=5,
            resources=[doctor],
        ),
    )

    assert outcome == Counter({"ok": 1, "conflict": 1})
    midnight = timeutil.local_datetime(day, dt.time.min)
    on_day = Slot.objects.filter(resources=doctor, start__gte=midnight, start__lt=midnight + dt.timedelta(days=1))
    offerings = set(on_day.values_list("offering_id", flat=True))
    assert len(offerings) == 1


def test_closing_a_slot_while_people_book_it_leaves_no_active_booking(make_offering):
    from factories import make_slot, make_user

    from yuyue.booking import services as engine
    from yuyue.booking.models import ACTIVE_STATUSES, Booking

    slot = make_slot(
        offering=make_offering(), start=timeutil.local_datetime(TODAY + dt.timedelta(days=2), dt.time(10)), capacity=30
    )
    for _ in range(5):
        engine.book(user=make_user(), slot_id=slot.pk)
    users = [make_user() for _ in range(15)]

    outcome = race(
        *(lambda u=u: engine.book(user=u, slot_id=slot.pk) for u in users),
        lambda: services.close_slot(slot=Slot.objects.get(pk=slot.pk), reason="台风", by=None),
    )

    slot.refresh_from_db()
    assert slot.status == SlotStatus.CLOSED
    assert not Booking.objects.filter(slot=slot, status__in=ACTIVE_STATUSES).exists()
    assert slot.reserved == 0
    assert set(outcome) <= {"ok", "not_allowed", "slot_full"}
    assert Booking.objects.filter(slot=slot, status="cancelled", cancel_reason="台风").count() == 5 + outcome["ok"] - 1


def test_without_the_resource_lock_the_same_race_double_books(merchant, make_offering, monkeypatch):
    """The lock is what holds the line: with it switched off, concurrent saves all pass the check."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): the race cannot happen there")
    monkeypatch.setattr(services, "_lock_resources", lambda resource_ids: None)
    driver = make_resource(merchant=merchant, type="driver")
    start = timeutil.local_datetime(TODAY + dt.timedelta(days=4), dt.time(8))
    offerings = [make_offering(kind="vehicle") for _ in range(10)]

    outcome = race(
        *(
            lambda o=o: services.add_slot(
                offering=o, start=start, end=start + dt.timedelta(hours=1), capacity=1, resources=[driver]
            )
            for o in offerings
        )
    )

    assert outcome["ok"] > 1
    assert Slot.objects.filter(resources=driver).count() == outcome["ok"]
