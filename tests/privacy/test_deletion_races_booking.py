"""An account deleted at the very moment it books: either the booking stands and the deletion is
refused (an upcoming booking blocks it), or the account is gone and the booking refused — never a
booking, with its visitors' personal data, for a deleted account. Real threads, real commits."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from factories import make_person, make_slot
from racing import race

from yuyue.accounts.models import EndUser
from yuyue.booking import services as engine
from yuyue.booking.models import Attendee, Booking
from yuyue.core import timeutil
from yuyue.privacy import services as privacy

pytestmark = pytest.mark.django_db(transaction=True)


def start_at(hour: int) -> dt.datetime:
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(hour))


def test_a_booking_that_waits_on_a_deletion_finds_the_account_gone(make_offering, monkeypatch):
    """The deletion holds the account's row (checked its blockers: none) while the booking starts."""
    slot = make_slot(offering=make_offering(kind="scenic"), start=start_at(10), capacity=5)
    visitor = make_person()
    customer = visitor.owner
    locked, booking_sent = threading.Event(), threading.Event()
    check = privacy.deletion_blockers

    def blockers_then_hold(user, **kwargs):
        found = check(user, **kwargs)
        locked.set()
        booking_sent.wait(10)
        threading.Event().wait(0.5)  # the booking is now waiting on the row (or would slip through)
        return found

    monkeypatch.setattr(privacy, "deletion_blockers", blockers_then_hold)

    def book():
        locked.wait(10)
        booking_sent.set()
        return engine.book(user=customer, slot_id=slot.pk, person_ids=[visitor.pk])

    deletion, booking = race(lambda: privacy.delete_account(customer), book)

    assert deletion.label == "ok"
    assert booking.label == "forbidden"
    assert not Booking.objects.filter(user=customer).exists()
    assert not Attendee.objects.filter(person=visitor).exists()
    slot.refresh_from_db()
    assert slot.reserved == 0


@pytest.mark.parametrize("round_", range(8))
def test_booking_and_deletion_at_once_never_leave_a_booking_on_a_deleted_account(make_offering, round_):
    slot = make_slot(offering=make_offering(kind="scenic"), start=start_at(10), capacity=5)
    visitor = make_person()
    customer = visitor.owner

    booking, deletion = race(
        lambda: engine.book(user=customer, slot_id=slot.pk, person_ids=[visitor.pk]),
        lambda: privacy.delete_account(customer),
    )

    deleted = not EndUser.objects.get(pk=customer.pk).is_active
    made = Booking.objects.filter(user=customer).count()
    if deleted:  # the deletion won: the booking was refused and left nothing behind
        assert (deletion.label, made) == ("ok", 0)
        # "forbidden" when it waited on the account's row, "invalid" when it came late enough to
        # find the visitor already removed from the account.
        assert booking.label in {"forbidden", "invalid"}
        assert not Attendee.objects.filter(person=visitor).exists()
    else:  # the booking won: the deletion saw it and was refused
        assert (booking.label, deletion.label, made) == ("ok", "not_allowed", 1)
        assert list(deletion.refusal.fields) == ["bookings"]
    slot.refresh_from_db()
    assert slot.reserved == made
