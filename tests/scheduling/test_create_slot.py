"""create_slot: one-off slots outside any schedule, and the inputs it refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_merchant, make_resource

from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.services import create_slot

pytestmark = pytest.mark.django_db

NINE = timeutil.local_datetime(dt.date(2026, 3, 2), dt.time(9, 0))
TEN = NINE + dt.timedelta(hours=1)


def test_creates_an_open_slot_with_its_resources(merchant, make_offering):
    coach = make_resource(merchant=merchant)

    slot = create_slot(offering=make_offering(), start=NINE, end=TEN, capacity=8, resources=[coach], price_fen=5000)

    slot.refresh_from_db()
    assert (slot.start, slot.end, slot.capacity, slot.reserved, slot.price_fen) == (NINE, TEN, 8, 0, 5000)
    assert slot.schedule is None
    assert list(slot.resources.all()) == [coach]


def test_naive_times_are_read_as_local_time(make_offering):
    slot = create_slot(
        offering=make_offering(), start=dt.datetime(2026, 3, 2, 9), end=dt.datetime(2026, 3, 2, 10), capacity=1
    )

    slot.refresh_from_db()
    assert slot.start == dt.datetime(2026, 3, 2, 1, tzinfo=dt.UTC)


def test_a_slot_on_a_statutory_holiday_is_marked(make_offering):
    start = timeutil.local_datetime(dt.date(2026, 10, 1), dt.time(9, 0))

    slot = create_slot(offering=make_offering(), start=start, end=start + dt.timedelta(hours=1), capacity=1)

    assert slot.is_holiday


@pytest.mark.parametrize("end", [NINE, NINE - dt.timedelta(minutes=1)])
def test_refuses_an_end_not_after_the_start(make_offering, end):
    with pytest.raises(DomainError) as refused:
        create_slot(offering=make_offering(), start=NINE, end=end, capacity=1)

    assert refused.value.code == "invalid"
    assert set(refused.value.fields) == {"end"}


def test_refuses_a_capacity_below_one(make_offering):
    with pytest.raises(DomainError) as refused:
        create_slot(offering=make_offering(), start=NINE, end=TEN, capacity=0)

    assert set(refused.value.fields) == {"capacity"}


def test_refuses_resources_of_another_merchant(make_offering):
    stranger = make_resource(merchant=make_merchant())

    with pytest.raises(DomainError) as refused:
        create_slot(offering=make_offering(), start=NINE, end=TEN, capacity=1, resources=[stranger])

    assert set(refused.value.fields) == {"resources"}
    assert not stranger.slots.exists()
