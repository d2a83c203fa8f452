"""Booking changes → outbox rows, written in the transaction of the change.

The engine calls ``booking_event(event)`` from ``_record`` (every change of a booking passes
there); bans are seen through ``post_save`` of ``Ban``, which also runs inside the creating
transaction. Each row carries what the message needs to say about the change itself (refund,
reason); names and times are read when it is delivered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from yuyue.accounts.models import Ban
from yuyue.booking.models import Actor, Booking, BookingEvent, Status
from yuyue.core.hotcache import HotCache
from yuyue.notify import outbox
from yuyue.notify.models import OfferingReminders

EVENT_KIND = "notify.event"


def _event_row(
    booking: Booking, event: str, key: str, *, at: dt.datetime, due_at: dt.datetime | None = None, **data: Any
) -> outbox.OutboxItem:
    # "at": when the change happened (the engine's clock), so a message delivered much later is recognised.
    payload = {"event": event, "booking_id": booking.pk, "user_id": booking.user_id, "at": at.isoformat(), **data}
    return outbox.row(EVENT_KIND, payload, merchant_id=booking.merchant_id, due_at=due_at, key=key)


def _enqueue_event(
    booking: Booking, event: str, key: str, *, at: dt.datetime, due_at: dt.datetime | None = None, **data: Any
) -> None:
    outbox.enqueue_many([_event_row(booking, event, key, at=at, due_at=due_at, **data)])


def booking_event(event: BookingEvent) -> None:
    """Turn one recorded change into its notification rows (called inside the change's transaction)."""
    booking = event.booking
    action, to = event.action, event.to_status
    key = f"ev:{event.pk}"
    at = event.created_at
    if action in {"book", "approve", "confirm"} and to == Status.CONFIRMED:
        # The confirmation and its reminders: one insert (a booking's hot path).
        outbox.enqueue_many([_event_row(booking, "confirmed", key, at=at), *_reminder_rows(booking, now=at)])
    elif action == "promote":
        # The promoted booking was just "booked" in this transaction: say "promoted" instead.
        outbox.OutboxItem.objects.filter(
            key__startswith="ev:",
            kind=EVENT_KIND,
            status=outbox.OutboxStatus.PENDING,
            payload__booking_id=booking.pk,
            payload__event="confirmed",
        ).delete()
        _enqueue_event(booking, "waitlist_promoted", key, at=at)
    elif action == "cancel":
        drop_reminders(booking, reason="cancelled")
        by_merchant = event.actor == Actor.STAFF
        facts = event.data or {}  # what the engine recorded: the refund owed, a card's classes given back
        _enqueue_event(
            booking,
            "cancelled_by_merchant" if by_merchant else "cancelled",
            key,
            at=at,
            reason=event.reason,
            refund_fen=facts.get("refund_fen", 0),
            credit_back=bool(facts.get("credit_back")),
        )
    elif action == "close":
        drop_reminders(booking, reason="slot closed")
        facts = event.data or {}
        _enqueue_event(
            booking,
            "slot_closed",
            key,
            at=at,
            reason=event.reason,
            refund_fen=facts.get("refund_fen", booking.paid_fen),
            credit_back=bool(facts.get("credit_back")),
        )
    elif action == "refund":
        # The money reached the customer: after a cancellation, or a payment that came too late.
        _enqueue_event(booking, "refunded", key, at=at, refund_fen=(event.data or {}).get("refund_fen", 0))
    elif action in {"reject", "expire", "no_show"}:
        drop_reminders(booking, reason=action)
    elif action == "reschedule":
        move_reminders(booking, now=event.created_at)
        _enqueue_event(booking, "rescheduled", key, at=at, from_slot=(event.data or {}).get("from_slot"))
    elif action == "complete":
        _enqueue_event(booking, "review_request", key, at=at)


# --- reminders ---------------------------------------------------------------------------------


# An offering's own lead times, read on every confirmed booking: kept in the process for a few
# seconds (YUYUE_HOT_CACHE_SECONDS; see core/hotcache.py for how fresh that is).
_own_hours: HotCache[list[float] | None] = HotCache("reminder-hours")


def reminder_hours(offering_id: int) -> list[float]:
    own = _own_hours.get(
        offering_id,
        lambda: OfferingReminders.objects.filter(offering_id=offering_id).values_list("hours", flat=True).first(),
    )
    hours = own if own is not None else settings.NOTIFY_REMINDER_HOURS
    return sorted({float(h) for h in hours if float(h) > 0}, reverse=True)


@receiver([post_save, post_delete], sender=OfferingReminders, dispatch_uid="notify-reminder-hours-changed")
def _reminders_changed(sender: type[OfferingReminders], instance: OfferingReminders, **kwargs: Any) -> None:
    _own_hours.forget(instance.offering_id)


def _hours_label(hours: float) -> str:
    return f"{hours:g}"


def _reminder_rows(booking: Booking, *, now: dt.datetime) -> list[outbox.OutboxItem]:
    """One row per lead time, due that long before the start; keyed so a booking never gets one twice."""
    start = booking.slot.start
    rows = []
    for hours in reminder_hours(booking.offering_id):
        due = start - dt.timedelta(hours=hours)
        if due <= now:
            continue  # booked later than this reminder: the confirmation says it all
        rows.append(
            _event_row(
                booking,
                "reminder",
                f"reminder:{booking.pk}:{booking.slot_id}:{_hours_label(hours)}",
                at=due,
                due_at=due,
                slot_id=booking.slot_id,
                hours=hours,
            )
        )
    return rows


def schedule_reminders(booking: Booking, *, now: dt.datetime) -> int:
    """Write the booking's reminder rows (see ``_reminder_rows``); returns how many were due."""
    rows = _reminder_rows(booking, now=now)
    outbox.enqueue_many(rows)
    return len(rows)


def _pending_reminders(booking: Booking) -> Any:
    return outbox.OutboxItem.objects.filter(
        kind=EVENT_KIND,
        key__startswith=f"reminder:{booking.pk}:",
        status__in=(outbox.OutboxStatus.PENDING, outbox.OutboxStatus.FAILED),
    )


def drop_reminders(booking: Booking, *, reason: str) -> int:
    """A booking that ended gets no reminder (delivery checks again, for rows already claimed)."""
    return _pending_reminders(booking).update(status=outbox.OutboxStatus.SKIPPED, last_error=reason)


def move_reminders(booking: Booking, *, now: dt.datetime) -> int:
    """Rescheduled: the reminders for the old time go, those for the new time are scheduled."""
    _pending_reminders(booking).exclude(key__startswith=f"reminder:{booking.pk}:{booking.slot_id}:").delete()
    if booking.status != Status.CONFIRMED:
        return 0
    return schedule_reminders(booking, now=now)


@receiver(post_save, sender=Ban, dispatch_uid="notify-ban-applied")
def ban_applied(sender: type[Ban], instance: Ban, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    payload = {
        "event": "ban_applied",
        "booking_id": None,
        "user_id": instance.user_id,
        "reason": instance.reason,
        "until": instance.ends_at.isoformat(),
        "at": instance.starts_at.isoformat(),
    }
    outbox.enqueue(EVENT_KIND, payload, merchant_id=instance.merchant_id, key=f"ban:{instance.pk}")
