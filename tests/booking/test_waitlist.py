"""The waitlist: join when full, promoted first come first served when seats free up."""

from __future__ import annotations

import pytest
from factories import make_offering, make_person, make_slot, make_user

from yuyue.booking import services
from yuyue.booking.models import Status, WaitlistEntry, WaitlistStatus
from yuyue.core.errors import DomainError

pytestmark = pytest.mark.django_db


def refused(code: str):
    return pytest.raises(DomainError, match=f"^{code}:")


def _full_slot(capacity: int = 1):
    slot = make_slot(capacity=capacity)
    holders = [make_user() for _ in range(capacity)]
    bookings = [services.book(user=u, slot_id=slot.pk) for u in holders]
    return slot, holders, bookings


def test_join_when_full_and_see_your_position():
    slot, _, _ = _full_slot()
    first = services.join_waitlist(user=make_user(), slot_id=slot.pk)
    second = services.join_waitlist(user=make_user(), slot_id=slot.pk)
    assert (services.waitlist_position(first), services.waitlist_position(second)) == (1, 2)


def test_cannot_join_while_seats_are_left():
    slot = make_slot(capacity=2)
    with refused("invalid"):
        services.join_waitlist(user=make_user(), slot_id=slot.pk)


def test_cannot_join_twice():
    slot, _, _ = _full_slot()
    user = make_user()
    services.join_waitlist(user=user, slot_id=slot.pk)
    with refused("duplicate"):
        services.join_waitlist(user=user, slot_id=slot.pk)


def test_cancel_promotes_the_first_in_line():
    slot, holders, bookings = _full_slot()
    first, second = make_user(), make_user()
    entry = services.join_waitlist(user=first, slot_id=slot.pk)
    services.join_waitlist(user=second, slot_id=slot.pk)
    services.cancel(booking=bookings[0], by=holders[0])
    entry.refresh_from_db()
    slot.refresh_from_db()
    assert entry.status == WaitlistStatus.PROMOTED and entry.active_key is None
    assert entry.booking.user == first and entry.booking.status == Status.CONFIRMED
    assert slot.reserved == 1
    assert [e.action for e in entry.booking.events.all()] == ["book", "promote"]


def test_promotion_is_strictly_in_order():
    """A party of two waiting first is not overtaken by a single person behind it."""
    offering = make_offering(kind="scenic")
    slot = make_slot(offering=offering, capacity=2)
    holder = make_person()
    other = make_person()
    mine = services.book(user=holder.owner, slot_id=slot.pk, person_ids=[holder.pk])
    services.book(user=other.owner, slot_id=slot.pk, person_ids=[other.pk])
    pair_owner = make_user()
    pair = [make_person(owner=pair_owner), make_person(owner=pair_owner)]
    pair_entry = services.join_waitlist(user=pair_owner, slot_id=slot.pk, person_ids=[p.pk for p in pair])
    single = make_person()
    single_entry = services.join_waitlist(user=single.owner, slot_id=slot.pk, person_ids=[single.pk])
    services.cancel(booking=mine, by=holder.owner)  # one seat frees: not enough for the pair
    pair_entry.refresh_from_db()
    single_entry.refresh_from_db()
    assert (pair_entry.status, single_entry.status) == (WaitlistStatus.WAITING, WaitlistStatus.WAITING)


def test_someone_who_now_breaks_a_rule_is_skipped():
    offering = make_offering(kind="scenic")
    slot = make_slot(offering=offering, capacity=1)
    holder = make_person()
    booking = services.book(user=holder.owner, slot_id=slot.pk, person_ids=[holder.pk])
    waiting = make_person()
    entry = services.join_waitlist(user=waiting.owner, slot_id=slot.pk, person_ids=[waiting.pk])
    # meanwhile the waiting person booked another slot that day (per-ID-per-day limit 1)
    services.book(user=waiting.owner, slot_id=make_slot(offering=offering, start=slot.end).pk, person_ids=[waiting.pk])
    behind = make_person()
    behind_entry = services.join_waitlist(user=behind.owner, slot_id=slot.pk, person_ids=[behind.pk])
    services.cancel(booking=booking, by=holder.owner)
    entry.refresh_from_db()
    behind_entry.refresh_from_db()
    assert entry.status == WaitlistStatus.SKIPPED and entry.note
    assert behind_entry.status == WaitlistStatus.PROMOTED


def test_leaving_the_waitlist_allows_joining_again():
    slot, _, _ = _full_slot()
    user = make_user()
    entry = services.join_waitlist(user=user, slot_id=slot.pk)
    services.leave_waitlist(entry=entry)
    assert services.join_waitlist(user=user, slot_id=slot.pk).pk != entry.pk
    assert WaitlistEntry.objects.filter(slot=slot, status=WaitlistStatus.WAITING).count() == 1


def test_someone_already_booked_cannot_also_wait():
    slot = make_slot(capacity=1)
    user = make_user()
    services.book(user=user, slot_id=slot.pk)
    with refused("duplicate"):
        services.join_waitlist(user=user, slot_id=slot.pk)


def test_an_expired_hold_promotes_the_waitlist():
    import datetime as dt

    slot = make_slot(offering=make_offering(price_fen=5000), capacity=1)
    unpaid = services.book(user=make_user(), slot_id=slot.pk)
    waiting = services.join_waitlist(user=make_user(), slot_id=slot.pk)
    assert services.release_expired_holds(now=unpaid.hold_expires_at - dt.timedelta(seconds=1)) == 0
    assert services.release_expired_holds(now=unpaid.hold_expires_at) == 1
    unpaid.refresh_from_db()
    waiting.refresh_from_db()
    assert unpaid.status == Status.EXPIRED
    assert waiting.booking.status == Status.PENDING_PAYMENT
