"""Check-in by voucher, no-shows and the ban they lead to, completion and reviews."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_offering, make_person, make_resource, make_slot, make_user

from yuyue.accounts.models import Ban
from yuyue.booking import services
from yuyue.booking.models import Status
from yuyue.core import timeutil
from yuyue.core.errors import DomainError

pytestmark = pytest.mark.django_db


def refused(code: str):
    return pytest.raises(DomainError, match=f"^{code}:")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("gate")


def _booked(offering=None, **slot_fields):
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot(offering=offering or make_offering(), **slot_fields).pk)
    return user, booking


def test_check_in_once(staff):
    _, booking = _booked()
    at = booking.slot.start - dt.timedelta(minutes=10)
    checked = services.check_in(voucher=services.voucher_for(booking), staff=staff, now=at)
    assert checked.status == Status.CHECKED_IN and checked.checked_in_at == at
    assert checked.events.last().actor_staff == staff


def test_second_check_in_says_when_the_first_was(staff):
    _, booking = _booked()
    at = booking.slot.start - dt.timedelta(minutes=10)
    services.check_in(voucher=services.voucher_for(booking), staff=staff, now=at)
    with pytest.raises(DomainError) as caught:
        services.check_in(voucher=services.voucher_for(booking), staff=staff, now=at + dt.timedelta(minutes=2))
    assert caught.value.code == "duplicate"
    assert caught.value.details["checked_in_at"] == at.isoformat()
    local = at.astimezone(timeutil.local_zone())
    assert f"{local:%H:%M:%S}" in caught.value.message


def test_forged_voucher_is_refused(staff):
    _, booking = _booked()
    with refused("not_found"):
        services.check_in(voucher=f"{booking.code}.000000000000", staff=staff, now=booking.slot.start)
    with refused("not_found"):
        services.check_in(voucher=booking.code, staff=staff, now=booking.slot.start)


def test_voucher_of_another_merchant_is_not_found(staff):
    _, booking = _booked()
    with refused("not_found"):
        services.check_in(
            voucher=services.voucher_for(booking),
            staff=staff,
            merchant=make_offering().merchant,
            now=booking.slot.start,
        )


def test_check_in_not_before_it_opens_nor_after_the_end(staff):
    _, booking = _booked()
    voucher = services.voucher_for(booking)
    with refused("not_open"):
        services.check_in(voucher=voucher, staff=staff, now=booking.slot.start - dt.timedelta(hours=3))
    with refused("too_late"):
        services.check_in(voucher=voucher, staff=staff, now=booking.slot.end)


def test_cancelled_booking_cannot_be_checked_in(staff):
    user, booking = _booked()
    services.cancel(booking=booking, by=user)
    with refused("not_allowed"):
        services.check_in(voucher=services.voucher_for(booking), staff=staff, now=booking.slot.start)


def test_unpaid_booking_cannot_be_checked_in(staff):
    _, booking = _booked(make_offering(price_fen=100))
    with refused("not_allowed"):
        services.check_in(voucher=services.voucher_for(booking), staff=staff, now=booking.slot.start)


def test_no_show_only_after_the_start(staff):
    _, booking = _booked()
    with refused("not_allowed"):
        services.mark_no_show(booking=booking, staff=staff, now=booking.slot.start - dt.timedelta(minutes=1))
    services.mark_no_show(booking=booking, staff=staff, now=booking.slot.start + dt.timedelta(minutes=15))
    assert booking.status == Status.NO_SHOW


def test_three_clinic_no_shows_in_ninety_days_ban_for_ninety_days(staff):
    clinic = make_offering(kind="clinic")
    user = make_user()
    person = make_person(owner=user)
    base = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(9))
    bookings = [
        services.book(
            user=user, slot_id=make_slot(offering=clinic, start=base + dt.timedelta(days=d)).pk, person_ids=[person.pk]
        )
        for d in range(3)
    ]
    for booking in bookings[:2]:
        services.mark_no_show(booking=booking, staff=staff, now=booking.slot.end)
    assert not Ban.objects.filter(user=user).exists()
    services.mark_no_show(booking=bookings[2], staff=staff, now=bookings[2].slot.end)
    ban = Ban.objects.get(user=user, merchant=clinic.merchant)
    assert ban.ends_at - ban.starts_at == dt.timedelta(days=90)
    with refused("banned"):
        services.book(
            user=user,
            slot_id=make_slot(offering=clinic, start=base + dt.timedelta(days=4)).pk,
            person_ids=[person.pk],
            now=bookings[2].slot.end,
        )


def test_courses_do_not_ban_for_no_shows(staff):
    user = make_user()
    offering = make_offering(kind="course")
    base = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(9))
    for d in range(4):
        booking = services.book(user=user, slot_id=make_slot(offering=offering, start=base + dt.timedelta(days=d)).pk)
        services.mark_no_show(booking=booking, staff=staff, now=booking.slot.end)
    assert not Ban.objects.exists()


def test_checked_in_bookings_complete_after_the_end(staff):
    _, booking = _booked()
    services.check_in(voucher=services.voucher_for(booking), staff=staff, now=booking.slot.start)
    assert services.complete_finished(now=booking.slot.end - dt.timedelta(minutes=1)) == 0
    assert services.complete_finished(now=booking.slot.end) == 1
    booking.refresh_from_db()
    assert booking.status == Status.COMPLETED


def test_review_after_the_visit_updates_ratings(staff):
    coach = make_resource(type="coach")
    offering = make_offering(merchant=coach.merchant)
    user, booking = _booked(offering, resources=[coach])
    with refused("not_allowed"):
        services.add_review(booking=booking, user=user, rating=5)
    services.check_in(voucher=services.voucher_for(booking), staff=staff, now=booking.slot.start)
    booking.refresh_from_db()
    services.add_review(booking=booking, user=user, rating=4, text="老师很专业")
    offering.refresh_from_db()
    coach.refresh_from_db()
    assert offering.rating == 4 and coach.rating == 4
    with refused("duplicate"):
        services.add_review(booking=booking, user=user, rating=5)


def test_review_rating_between_one_and_five(staff):
    user, booking = _booked()
    services.check_in(voucher=services.voucher_for(booking), staff=staff, now=booking.slot.start)
    booking.refresh_from_db()
    with refused("invalid"):
        services.add_review(booking=booking, user=user, rating=6)


def test_only_the_booker_reviews(staff):
    _, booking = _booked()
    services.check_in(voucher=services.voucher_for(booking), staff=staff, now=booking.slot.start)
    booking.refresh_from_db()
    with refused("forbidden"):
        services.add_review(booking=booking, user=make_user(), rating=5)
