"""Minimum attendance: at its check time a class with too few people is cancelled, everyone gets back
what they paid (money or a card's class) and is told why; a slot is checked once."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_merchant, make_offering, make_slot, make_user

from yuyue import tasks
from yuyue.booking import services as engine
from yuyue.booking.models import AttendanceCheck, Booking, BookingEvent, Status
from yuyue.catalog.models import Offering, Resource
from yuyue.catalog.services import save_offering
from yuyue.console.forms_setup import OfferingForm
from yuyue.core import timeutil
from yuyue.memberships.models import CreditEntry
from yuyue.memberships.services import ProductSpec, grant_card, save_product
from yuyue.notify.models import InboxMessage
from yuyue.notify.outbox import OutboxItem, deliver_all_due
from yuyue.scheduling.models import SlotStatus
from yuyue.tenants.models import Branch

pytestmark = pytest.mark.django_db

START = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(19, 0))
CHECK = START - dt.timedelta(hours=3)  # the check time: 3 hours before
BOOKED_AT = START - dt.timedelta(days=1)


def small_class(minimum: int | None = 3, **policy):
    merchant = make_merchant()
    overrides = {"min_attendance": minimum, "min_attendance_check_hours": 3, **policy} if minimum else policy
    yoga = make_offering(kind="course", merchant=merchant, price_fen=8000, policy_overrides=overrides)
    return yoga, make_slot(offering=yoga, start=START, capacity=10)


def book_paid(slot) -> Booking:
    """A booking paid online (the payment arrives a minute later)."""
    booking = engine.book(user=make_user(), slot_id=slot.pk, now=BOOKED_AT)
    return engine.confirm(booking=booking, now=BOOKED_AT + dt.timedelta(minutes=1))


def book_with_card(yoga, slot):
    user = make_user()
    product = save_product(merchant=yoga.merchant, spec=ProductSpec(name="10次卡", credits=10, valid_days=90))
    card = grant_card(product=product, user=user, by=None, at=BOOKED_AT - dt.timedelta(days=1))
    booking = engine.book(user=user, slot_id=slot.pk, pay_with="credit", card_id=card.pk, now=BOOKED_AT)
    return booking, card


def test_below_the_minimum_the_class_is_cancelled_with_the_reason_and_everyone_refunded():
    yoga, slot = small_class(3)
    paid = book_paid(slot)
    by_card, card = book_with_card(yoga, slot)

    assert engine.check_min_attendance(now=CHECK) == 1

    slot.refresh_from_db()
    assert (slot.status, slot.reserved) == (SlotStatus.CLOSED, 0)
    reason = engine.min_attendance_reason()
    for booking in (paid, by_card):
        booking.refresh_from_db()
        assert (booking.status, booking.cancel_reason) == (Status.CANCELLED, reason)
    # Money: the closure event records the full refund of what was paid online (payments refunds it).
    event = BookingEvent.objects.get(booking=paid, action="close")
    assert (event.actor, event.reason, event.data["refund_fen"]) == ("system", reason, 8000)
    # The card's class comes back, with the reason.
    card.refresh_from_db()
    assert card.credits_left == 10
    assert reason in CreditEntry.objects.filter(card=card, delta=1).get().reason
    # Each customer is told, and the message carries why.
    told = OutboxItem.objects.filter(kind="notify.event", payload__event="slot_closed")
    assert sorted(item.payload["booking_id"] for item in told) == sorted([paid.pk, by_card.pk])
    assert {item.payload["reason"] for item in told} == {reason}
    assert AttendanceCheck.objects.get(slot=slot).cancelled
    # ...and what they get back: the money, or the card's class.
    deliver_all_due(now=CHECK)
    money_message = InboxMessage.objects.get(user=paid.user, event="slot_closed").body
    card_message = InboxMessage.objects.get(user=by_card.user, event="slot_closed").body
    assert reason in money_message and "¥80.00" in money_message
    assert reason in card_message and "课时已退回" in card_message and "¥" not in card_message


def test_the_reason_is_in_the_sites_language():
    assert engine.min_attendance_reason() == "人数不足，课程取消"


def test_at_the_minimum_the_class_goes_ahead_and_is_not_checked_again():
    _yoga, slot = small_class(2)
    first, second = book_paid(slot), book_paid(slot)
    assert engine.check_min_attendance(now=CHECK) == 0
    check = AttendanceCheck.objects.get(slot=slot)
    assert (check.seats_booked, check.minimum, check.cancelled) == (2, 2, False)
    # Someone cancels after the check: the class still goes ahead (a slot is checked once).
    engine.cancel(booking=second, by=second.user, now=CHECK + dt.timedelta(minutes=5))
    assert engine.check_min_attendance(now=CHECK + dt.timedelta(minutes=10)) == 0
    first.refresh_from_db()
    slot.refresh_from_db()
    assert (first.status, slot.status) == (Status.CONFIRMED, SlotStatus.OPEN)


def test_running_the_job_twice_changes_nothing_more():
    yoga, slot = small_class(3)
    _booking, card = book_with_card(yoga, slot)
    assert engine.check_min_attendance(now=CHECK) == 1
    entries, messages = CreditEntry.objects.count(), OutboxItem.objects.count()
    assert engine.check_min_attendance(now=CHECK + dt.timedelta(minutes=1)) == 0
    assert tasks.JOBS["check_min_attendance"]() == 0
    assert (CreditEntry.objects.count(), OutboxItem.objects.count()) == (entries, messages)
    card.refresh_from_db()
    assert card.credits_left == 10
    assert AttendanceCheck.objects.filter(slot=slot).count() == 1


def test_before_the_check_time_nothing_happens():
    _yoga, slot = small_class(3)
    book_paid(slot)
    assert engine.check_min_attendance(now=CHECK - dt.timedelta(minutes=1)) == 0
    slot.refresh_from_db()
    assert slot.status == SlotStatus.OPEN and not AttendanceCheck.objects.exists()


def test_an_offering_without_a_minimum_is_never_checked():
    _yoga, slot = small_class(None)
    book_paid(slot)
    assert engine.check_min_attendance(now=CHECK) == 0
    assert not AttendanceCheck.objects.exists()


def test_an_empty_class_below_its_minimum_is_closed_too():
    _yoga, slot = small_class(3)
    assert engine.check_min_attendance(now=CHECK) == 1
    slot.refresh_from_db()
    assert slot.status == SlotStatus.CLOSED
    with pytest.raises(engine.DomainError):
        engine.book(user=make_user(), slot_id=slot.pk, now=CHECK + dt.timedelta(minutes=1))


def test_the_offering_editor_sets_the_minimum_and_the_points_rules():
    merchant = make_merchant()
    data = {
        "kind": "course",
        "title": "小班流瑜伽",
        "price_yuan": "99",
        "is_active": "on",
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
        "min_attendance": "3",
        "min_attendance_check_hours": "4",
        "no_show_points": "",  # blank: the kind's default
        "points_may_go_negative": "on",
    }
    form = OfferingForm(
        data, branches=Branch.objects.filter(merchant=merchant), resources=Resource.objects.filter(merchant=merchant)
    )
    assert form.is_valid(), form.errors
    offering = save_offering(merchant=merchant, spec=form.spec([]))
    offering = Offering.objects.get(pk=offering.pk)
    policy = offering.policy
    assert (policy.min_attendance, policy.min_attendance_check_hours) == (3, 4)
    assert (policy.no_show_points, policy.completion_points, policy.points_may_go_negative) == (10, 10, True)
    assert set(offering.policy_overrides) >= {"min_attendance", "min_attendance_check_hours", "points_may_go_negative"}
    assert "no_show_points" not in offering.policy_overrides
