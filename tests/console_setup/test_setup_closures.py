"""Closing a slot or a whole day: every booking cancelled with the reason, seats freed, nothing lost."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from factories import make_branch, make_schedule, make_slot, make_user

from yuyue.booking import services as engine
from yuyue.booking.models import Booking, BookingEvent, Status, WaitlistEntry, WaitlistStatus
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling import services
from yuyue.scheduling.models import ClosedDate, Slot, SlotStatus

pytestmark = pytest.mark.django_db

TODAY = timeutil.today()
NOW = timeutil.local_datetime(TODAY, dt.time(0, 30))
DAY = TODAY + dt.timedelta(days=2)


def at(hour: int, day: dt.date = DAY) -> dt.datetime:
    return timeutil.local_datetime(day, dt.time(hour))


@pytest.fixture
def owner() -> User:
    return User.objects.create_user("owner-closing")


def test_closing_a_slot_cancels_every_booking_with_the_reason_and_a_full_refund(make_offering, owner):
    slot = make_slot(offering=make_offering(price_fen=5000), start=at(10), capacity=3)
    paid = engine.book(user=make_user(), slot_id=slot.pk)
    engine.confirm(booking=paid)
    unpaid = engine.book(user=make_user(), slot_id=slot.pk)
    engine.book(user=make_user(), slot_id=slot.pk)
    waiting = engine.join_waitlist(user=make_user(), slot_id=slot.pk)

    closure = services.close_slot(slot=slot, reason="台风停课", by=owner, now=NOW)

    slot.refresh_from_db()
    assert slot.status == SlotStatus.CLOSED and slot.reserved == 0
    assert len(closure.cancelled) == 3 and closure.untouched == []
    assert set(Booking.objects.filter(slot=slot).values_list("status", "cancel_reason")) == {("cancelled", "台风停课")}
    event = BookingEvent.objects.get(booking=paid, action="close")
    assert event.actor == "staff" and event.actor_staff == owner and event.reason == "台风停课"
    assert event.data == {"closure": True, "refund_fen": 5000, "refund_percent": 100}
    assert BookingEvent.objects.get(booking=unpaid, action="close").data["refund_fen"] == 0
    assert closure.refund_fen == 5000 and closure.seats_freed == 3
    waiting.refresh_from_db()
    assert waiting.status == WaitlistStatus.CANCELLED and waiting.active_key is None
    with pytest.raises(DomainError) as refusal:
        engine.book(user=make_user(), slot_id=slot.pk)
    assert refusal.value.code == "not_allowed"


def test_a_slot_needs_a_reason_and_cannot_be_closed_twice(make_offering, owner):
    slot = make_slot(offering=make_offering(), start=at(10))
    with pytest.raises(DomainError) as refusal:
        services.close_slot(slot=slot, reason="  ", by=owner, now=NOW)
    assert set(refusal.value.fields) == {"reason"}
    services.close_slot(slot=slot, reason="场地维修", by=owner, now=NOW)
    slot.refresh_from_db()
    with pytest.raises(DomainError):
        services.close_slot(slot=slot, reason="场地维修", by=owner, now=NOW)


def test_reopening_a_closed_slot_lets_people_book_again(make_offering, owner):
    slot = make_slot(offering=make_offering(), start=at(10))
    services.close_slot(slot=slot, reason="临时", by=owner, now=NOW)
    services.reopen_slot(slot=slot, now=NOW)
    assert engine.book(user=make_user(), slot_id=slot.pk).status == Status.CONFIRMED


def test_closing_a_day_for_the_merchant_cancels_all_and_records_the_closed_date(merchant, make_offering, owner):
    morning = make_slot(offering=make_offering(), start=at(9))
    evening = make_slot(offering=make_offering(branch=make_branch(merchant=merchant)), start=at(19))
    next_day = make_slot(offering=make_offering(), start=at(9, DAY + dt.timedelta(days=1)))
    other_merchant = make_slot(start=at(9))
    for slot in (morning, evening, evening, next_day, other_merchant):
        engine.book(user=make_user(), slot_id=slot.pk)

    preview = services.closure_preview(merchant=merchant, day=DAY, now=NOW)
    assert (preview.slots, preview.bookings, preview.seats) == (2, 3, 3)

    closure = services.close_day(merchant=merchant, day=DAY, reason="台风红色预警", by=owner, now=NOW)

    assert closure.cancelled == 3 and len(closure.closures) == 2
    assert (
        ClosedDate.objects.filter(merchant=merchant, date=DAY, branch=None, offering=None).get().reason
        == "台风红色预警"
    )
    for slot in (morning, evening):
        slot.refresh_from_db()
        assert (slot.status, slot.reserved) == (SlotStatus.CLOSED, 0)
    for slot in (next_day, other_merchant):
        slot.refresh_from_db()
        assert (slot.status, slot.reserved) == (SlotStatus.OPEN, 1)


def test_closing_a_day_for_one_branch_leaves_the_others_open(merchant, make_offering, owner):
    north, south = make_branch(merchant=merchant), make_branch(merchant=merchant)
    in_north = make_slot(offering=make_offering(branch=north), start=at(9))
    in_south = make_slot(offering=make_offering(branch=south), start=at(9))

    services.close_day(merchant=merchant, day=DAY, branch=north, reason="停电", by=owner, now=NOW)

    assert Slot.objects.get(pk=in_north.pk).status == SlotStatus.CLOSED
    assert Slot.objects.get(pk=in_south.pk).status == SlotStatus.OPEN


def test_a_closed_day_keeps_rules_from_making_slots_on_it(merchant, make_offering, owner):
    offering = make_offering()
    make_schedule(offering=offering, valid_from=TODAY)
    services.close_day(merchant=merchant, day=DAY, offering=offering, reason="闭馆", by=owner, now=NOW)

    services.generate_slots(offering=offering, start=TODAY, days=10)

    assert not Slot.objects.filter(offering=offering, start=at(9), status=SlotStatus.OPEN).exists()
    assert Slot.objects.filter(offering=offering, status=SlotStatus.OPEN).count() == 9


def test_a_checked_in_booking_is_left_alone_and_reported(make_offering, owner):
    slot = make_slot(offering=make_offering(), start=at(10))
    here = engine.book(user=make_user(), slot_id=slot.pk)
    engine.check_in(voucher=engine.voucher_for(here), staff=owner, now=at(10) - dt.timedelta(minutes=30))
    engine.book(user=make_user(), slot_id=slot.pk)

    closure = services.close_slot(slot=slot, reason="教练受伤", by=owner, now=at(10) - dt.timedelta(minutes=20))

    assert [b.pk for b in closure.untouched] == [here.pk]
    assert len(closure.cancelled) == 1


def test_a_past_day_or_another_merchants_branch_is_refused(merchant, owner):
    with pytest.raises(DomainError) as refusal:
        services.close_day(
            merchant=merchant, day=TODAY - dt.timedelta(days=1), branch=make_branch(), reason="x", by=owner, now=NOW
        )
    assert set(refusal.value.fields) == {"date", "branch"}
    assert not ClosedDate.objects.exists()


def test_waiting_entries_are_removed_not_booked(make_offering, owner):
    slot = make_slot(offering=make_offering(), start=at(10), capacity=1)
    engine.book(user=make_user(), slot_id=slot.pk)
    entry = engine.join_waitlist(user=make_user(), slot_id=slot.pk)
    services.close_slot(slot=slot, reason="暂停", by=owner, now=NOW)
    assert WaitlistEntry.objects.get(pk=entry.pk).booking_id is None
    assert not Booking.objects.filter(slot=slot, status__in=["confirmed", "pending_payment"]).exists()


def test_a_booking_to_be_paid_at_the_venue_is_owed_no_refund(make_offering, owner):
    slot = make_slot(offering=make_offering(price_fen=3000, policy_overrides={"payment": "on_site"}), start=at(10))
    booking = engine.book(user=make_user(), slot_id=slot.pk)
    assert booking.status == Status.CONFIRMED

    closure = services.close_slot(slot=slot, reason="停电", by=owner, now=NOW)

    assert closure.refund_fen == 0
    assert BookingEvent.objects.get(booking=booking, action="close").data["refund_fen"] == 0
