"""slots_for: the open slots of an offering on the merchant's local dates."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from factories import make_resource

from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.scheduling.models import Slot, SlotStatus
from yuyue.scheduling.selectors import slots_for
from yuyue.scheduling.services import create_slot

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2026, 3, 2)


def slot_at(offering: Offering, day: dt.date, time: dt.time) -> Slot:
    start = timeutil.local_datetime(day, time)
    return create_slot(offering=offering, start=start, end=start + dt.timedelta(minutes=10), capacity=1)


def test_returns_open_slots_starting_on_the_local_dates_in_order(make_offering):
    offering = make_offering()
    tuesday = MONDAY + dt.timedelta(days=1)
    late = slot_at(offering, tuesday, dt.time(23, 50))
    first = slot_at(offering, MONDAY, dt.time(0, 0))  # still Sunday in UTC: local dates decide
    noon = slot_at(offering, MONDAY, dt.time(12, 0))
    slot_at(offering, MONDAY - dt.timedelta(days=1), dt.time(23, 59))
    slot_at(offering, tuesday + dt.timedelta(days=1), dt.time(0, 0))

    found = slots_for(offering_id=offering.pk, date_from=MONDAY, date_to=tuesday)

    assert list(found) == [first, noon, late]


def test_leaves_out_closed_slots_and_other_offerings(make_offering):
    offering = make_offering()
    kept = slot_at(offering, MONDAY, dt.time(9, 0))
    closed = slot_at(offering, MONDAY, dt.time(10, 0))
    Slot.objects.filter(pk=closed.pk).update(status=SlotStatus.CLOSED)
    slot_at(make_offering(), MONDAY, dt.time(11, 0))

    assert list(slots_for(offering_id=offering.pk, date_from=MONDAY, date_to=MONDAY)) == [kept]


def test_resources_come_prefetched(merchant, make_offering):
    offering = make_offering()
    coach = make_resource(merchant=merchant)
    for hour in (9, 10, 11):
        slot_at(offering, MONDAY, dt.time(hour)).resources.set([coach])

    with CaptureQueriesContext(connection) as queries:
        slots = list(slots_for(offering_id=offering.pk, date_from=MONDAY, date_to=MONDAY))
        names = [[r.name for r in slot.resources.all()] for slot in slots]

    assert names == [[coach.name]] * 3
    assert len(queries) == 2  # the slots, then all their resources at once
