"""change_capacity: one conditional UPDATE that never goes below what is booked."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot
from yuyue.scheduling.services import change_capacity, create_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def slot(make_offering) -> Slot:
    start = timeutil.local_datetime(dt.date(2026, 3, 2), dt.time(9, 0))
    slot = create_slot(offering=make_offering(), start=start, end=start + dt.timedelta(hours=1), capacity=10)
    Slot.objects.filter(pk=slot.pk).update(reserved=4)
    return slot


def test_raises_and_lowers_capacity_above_what_is_booked(slot):
    assert change_capacity(slot_id=slot.pk, capacity=20).capacity == 20
    assert change_capacity(slot_id=slot.pk, capacity=5).capacity == 5


def test_may_go_down_to_exactly_what_is_booked(slot):
    assert change_capacity(slot_id=slot.pk, capacity=4).capacity == 4


def test_refuses_to_go_below_what_is_booked_and_says_how_many(slot):
    with pytest.raises(DomainError) as refused, translation.override("en"):
        change_capacity(slot_id=slot.pk, capacity=3)

    assert refused.value.code == "invalid"
    with translation.override("en"):
        assert "4 places are already booked" in str(refused.value.fields["capacity"])
    assert Slot.objects.get(pk=slot.pk).capacity == 10


def test_refuses_a_capacity_below_one(slot):
    Slot.objects.filter(pk=slot.pk).update(reserved=0)

    with pytest.raises(DomainError) as refused:
        change_capacity(slot_id=slot.pk, capacity=0)

    assert set(refused.value.fields) == {"capacity"}


def test_an_unknown_slot_is_not_found(db):
    with pytest.raises(DomainError) as refused:
        change_capacity(slot_id=999_999, capacity=5)

    assert refused.value.code == "not_found"
