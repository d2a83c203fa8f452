"""Every kind of booking change writes its notification in the same transaction, and reminders
are never sent for cancelled bookings, never twice, and move with a reschedule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from factories import make_merchant, make_offering, make_slot, make_user

from yuyue.booking import services
from yuyue.booking.models import Status
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.notify import outbox
from yuyue.notify.events import EVENT_KIND
from yuyue.notify.models import InboxMessage, OfferingReminders, OutboxItem, OutboxStatus

pytestmark = pytest.mark.django_db


def events(**filters: object) -> list[str]:
    return [item.payload["event"] for item in OutboxItem.objects.filter(kind=EVENT_KIND, **filters).order_by("id")]


def reminders() -> list[OutboxItem]:
    return list(OutboxItem.objects.filter(kind=EVENT_KIND, payload__event="reminder").order_by("next_attempt_at"))


@pytest.fixture
def start() -> dt.datetime:
    return timeutil.now().replace(microsecond=0) + dt.timedelta(days=3)


def test_booking_confirmed_with_reminders_24h_and_2h(start: dt.datetime) -> None:
    slot = make_slot(start=start)
    booking = services.book(user=make_user(), slot_id=slot.pk)
    assert booking.status == Status.CONFIRMED
    assert events(status=OutboxStatus.PENDING) == ["confirmed", "reminder", "reminder"]
    assert [r.next_attempt_at for r in reminders()] == [start - dt.timedelta(hours=24), start - dt.timedelta(hours=2)]
    assert {r.payload["hours"] for r in reminders()} == {24.0, 2.0}


def test_a_failed_booking_writes_nothing(start: dt.datetime) -> None:
    slot = make_slot(start=start, capacity=1)
    services.book(user=make_user(), slot_id=slot.pk)
    before = OutboxItem.objects.count()
    with pytest.raises(DomainError):
        services.book(user=make_user(), slot_id=slot.pk)
    assert OutboxItem.objects.count() == before


def test_offering_reminder_times_and_late_bookings(start: dt.datetime) -> None:
    offering = make_offering()
    OfferingReminders.objects.create(offering=offering, hours=[48, 1])
    slot = make_slot(offering=offering, start=start)
    services.book(user=make_user(), slot_id=slot.pk)
    assert [r.payload["hours"] for r in reminders()] == [48.0, 1.0]
    # Booked 90 minutes before the start: only the 1 h reminder is still ahead.
    OutboxItem.objects.all().delete()
    soon = make_slot(offering=offering, start=timeutil.now() + dt.timedelta(minutes=90))
    services.book(user=make_user(), slot_id=soon.pk)
    assert [r.payload["hours"] for r in reminders()] == [1.0]


def test_cancelled_by_user_with_refund_and_no_reminder(start: dt.datetime) -> None:
    offering = make_offering(
        price_fen=8000, policy_overrides={"cancel_deadline_hours": 100, "late_cancel_refund_percent": 50}
    )
    slot = make_slot(offering=offering, start=start)
    user = make_user()
    booking = services.book(user=user, slot_id=slot.pk)
    assert booking.status == Status.PENDING_PAYMENT and events() == []
    services.confirm(booking=booking)
    assert events() == ["confirmed", "reminder", "reminder"]
    services.cancel(booking=booking, by=user, reason="有事")
    cancelled = OutboxItem.objects.get(payload__event="cancelled")
    assert cancelled.payload["refund_fen"] == 4000  # late: half of what was paid, as the preview said
    assert {r.status for r in reminders()} == {OutboxStatus.SKIPPED}
    # Even a reminder already claimed by a worker is not sent: checked again at delivery.
    OutboxItem.objects.filter(payload__event="reminder").update(status=OutboxStatus.PENDING)
    outbox.deliver_all_due(now=start)
    assert {r.status for r in reminders()} == {OutboxStatus.SKIPPED}
    assert not InboxMessage.objects.filter(event="reminder").exists()
    assert set(InboxMessage.objects.values_list("event", flat=True)) == {"confirmed", "cancelled"}
    assert "¥40.00" in InboxMessage.objects.get(event="cancelled").body


def test_the_refund_reaching_the_customer_is_told_with_its_amount(start: dt.datetime) -> None:
    offering = make_offering(price_fen=8000, policy_overrides={"cancel_deadline_hours": 1})
    booking = services.book(user=make_user(), slot_id=make_slot(offering=offering, start=start).pk)
    services.confirm(booking=booking)
    services.cancel(booking=booking, by=booking.user)
    services.mark_refunded(booking=booking, refund_fen=8000)
    item = OutboxItem.objects.get(payload__event="refunded")
    assert item.payload["refund_fen"] == 8000
    outbox.deliver_all_due(now=start)
    message = InboxMessage.objects.get(event="refunded")
    assert "¥80.00" in message.body and booking.code in message.body


def test_cancelled_by_merchant(start: dt.datetime) -> None:
    slot = make_slot(start=start)
    booking = services.book(user=make_user(), slot_id=slot.pk)
    staff = User.objects.create(username="desk")
    services.cancel(booking=booking, by=staff, reason="教练生病")
    item = OutboxItem.objects.get(payload__event="cancelled_by_merchant")
    assert item.payload["reason"] == "教练生病" and item.payload["refund_fen"] == 0


def test_slot_closed_by_the_merchant_full_refund(start: dt.datetime) -> None:
    offering = make_offering(price_fen=5000)
    slot = make_slot(offering=offering, start=start)
    booking = services.book(user=make_user(), slot_id=slot.pk)
    services.confirm(booking=booking)
    services.cancel_for_closure(slot_id=slot.pk, by=None, reason="台风")
    item = OutboxItem.objects.get(payload__event="slot_closed")
    assert (item.payload["reason"], item.payload["refund_fen"]) == ("台风", 5000)
    assert {r.status for r in reminders()} == {OutboxStatus.SKIPPED}
    outbox.deliver_all_due()
    message = InboxMessage.objects.get(event="slot_closed")
    assert "台风" in message.body and "¥50.00" in message.body


def test_rescheduled_moves_the_reminders(start: dt.datetime) -> None:
    offering = make_offering()
    old, new = (
        make_slot(offering=offering, start=start),
        make_slot(offering=offering, start=start + dt.timedelta(days=2)),
    )
    booking = services.book(user=make_user(), slot_id=old.pk)
    services.reschedule(booking=booking, slot_id=new.pk, by=booking.user)
    assert "rescheduled" in events()
    due = [(r.payload["slot_id"], r.next_attempt_at) for r in reminders() if r.status == OutboxStatus.PENDING]
    assert due == [(new.pk, new.start - dt.timedelta(hours=24)), (new.pk, new.start - dt.timedelta(hours=2))]
    assert not [r for r in reminders() if r.payload["slot_id"] == old.pk]
    # Nothing goes out at the old times; each new reminder goes once.
    outbox.deliver_all_due(now=old.start)
    assert not InboxMessage.objects.filter(event="reminder").exists()
    outbox.deliver_all_due(now=new.start - dt.timedelta(hours=2))
    outbox.deliver_all_due(now=new.start)
    assert InboxMessage.objects.filter(event="reminder").count() == 2


def test_reminder_never_twice(start: dt.datetime) -> None:
    slot = make_slot(start=start)
    booking = services.book(user=make_user(), slot_id=slot.pk)
    from yuyue.notify.events import schedule_reminders

    assert schedule_reminders(booking, now=timeutil.now()) == 2  # same keys: no new rows
    assert len(reminders()) == 2
    outbox.deliver_all_due(now=start - dt.timedelta(hours=2))
    outbox.deliver_all_due(now=start - dt.timedelta(hours=1))
    assert InboxMessage.objects.filter(event="reminder").count() == 2


def test_waitlist_promoted_instead_of_confirmed(start: dt.datetime) -> None:
    slot = make_slot(start=start, capacity=1)
    first = services.book(user=make_user(), slot_id=slot.pk)
    waiting = make_user()
    services.join_waitlist(user=waiting, slot_id=slot.pk)
    services.cancel(booking=first, by=first.user)
    mine = events(payload__user_id=waiting.pk)
    assert "waitlist_promoted" in mine and "confirmed" not in mine
    assert mine.count("reminder") == 2


def test_review_request_after_completion_and_no_show_ban(start: dt.datetime) -> None:
    merchant = make_merchant()
    offering = make_offering(
        merchant=merchant,
        policy_overrides={"no_show_ban": {"count": 1, "ban_days": 30}, "closes_minutes_before_start": 0},
    )
    now = timeutil.now()
    slot = make_slot(offering=offering, start=now + dt.timedelta(minutes=30))
    booking = services.book(user=make_user(), slot_id=slot.pk)
    services.check_in(voucher=services.voucher_for(booking), staff=None, now=now)
    services.complete_finished(now=slot.end + dt.timedelta(minutes=1))
    assert "review_request" in events()

    other = make_slot(offering=offering, start=now + dt.timedelta(minutes=40))
    no_show = services.book(user=make_user(), slot_id=other.pk)
    services.mark_no_show(booking=no_show, staff=None, now=other.start + dt.timedelta(minutes=5))
    ban = OutboxItem.objects.get(payload__event="ban_applied")
    assert ban.payload["user_id"] == no_show.user_id and ban.merchant_id == merchant.pk
    outbox.deliver_all_due()
    assert "暂停" in InboxMessage.objects.get(event="ban_applied").body
