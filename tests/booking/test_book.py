"""book(): every rule that says yes or no, one behaviour per test."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_offering, make_person, make_resource, make_slot, make_user

from yuyue.accounts.models import Ban
from yuyue.booking import services
from yuyue.booking.models import Booking, Status
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot

pytestmark = pytest.mark.django_db


def refused(code: str):
    return pytest.raises(DomainError, match=f"^{code}:")


def test_free_booking_is_confirmed_and_takes_seats():
    slot = make_slot(capacity=3)
    booking = services.book(user=make_user(), slot_id=slot.pk)
    slot.refresh_from_db()
    assert booking.status == Status.CONFIRMED
    assert slot.reserved == 1
    assert booking.events.get().action == "book"


def test_paid_booking_waits_for_payment_with_a_hold():
    slot = make_slot(offering=make_offering(price_fen=8800))
    booking = services.book(user=make_user(), slot_id=slot.pk)
    assert booking.status == Status.PENDING_PAYMENT
    assert booking.amount_fen == 8800
    assert booking.hold_expires_at is not None
    assert booking.paid_fen == 0
    assert services.confirm(booking=booking).paid_fen == 8800


def test_booking_paid_at_the_venue_is_confirmed_at_once_and_unpaid():
    offering = make_offering(price_fen=8800, policy_overrides={"payment": "on_site"})
    booking = services.book(user=make_user(), slot_id=make_slot(offering=offering).pk)
    assert (booking.status, booking.amount_fen, booking.paid_fen) == (Status.CONFIRMED, 8800, 0)
    assert booking.hold_expires_at is None


def test_full_slot_is_refused_and_changes_nothing():
    slot = make_slot(capacity=1)
    services.book(user=make_user(), slot_id=slot.pk)
    with refused("slot_full"):
        services.book(user=make_user(), slot_id=slot.pk)
    slot.refresh_from_db()
    assert slot.reserved == 1
    assert Booking.objects.count() == 1


def test_party_takes_one_seat_each_and_pays_per_person():
    offering = make_offering(kind="scenic", price_fen=5000)
    slot = make_slot(offering=offering, capacity=10)
    user = make_user()
    people = [make_person(owner=user) for _ in range(3)]
    booking = services.book(user=user, slot_id=slot.pk, person_ids=[p.pk for p in people])
    slot.refresh_from_db()
    assert (booking.seats, booking.amount_fen, slot.reserved) == (3, 15000, 3)
    assert booking.attendees.count() == 3


def test_same_person_cannot_book_the_same_slot_twice():
    slot = make_slot(offering=make_offering(kind="scenic"))
    user = make_user()
    person = make_person(owner=user)
    services.book(user=user, slot_id=slot.pk, person_ids=[person.pk])
    with refused("duplicate"):
        services.book(user=user, slot_id=slot.pk, person_ids=[person.pk])


def test_same_resident_id_in_another_account_is_still_the_same_person():
    slot = make_slot(offering=make_offering(kind="exhibition"))
    first = make_person()
    services.book(user=first.owner, slot_id=slot.pk, person_ids=[first.pk])
    other = make_person(id_number=first.id_number)
    with refused("duplicate"):
        services.book(user=other.owner, slot_id=slot.pk, person_ids=[other.pk])


def test_scenic_allows_one_visit_per_id_per_day(tomorrow_10):
    offering = make_offering(kind="scenic")
    morning = make_slot(offering=offering, start=tomorrow_10)
    afternoon = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(hours=4))
    next_day = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=1))
    person = make_person()
    services.book(user=person.owner, slot_id=morning.pk, person_ids=[person.pk])
    with refused("limit_reached"):
        services.book(user=person.owner, slot_id=afternoon.pk, person_ids=[person.pk])
    services.book(user=person.owner, slot_id=next_day.pk, person_ids=[person.pk])


def test_per_day_limit_of_two_allows_exactly_two(tomorrow_10):
    offering = make_offering(kind="scenic", policy_overrides={"per_person_per_day": 2})
    slots = [make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(hours=h)) for h in range(3)]
    person = make_person()
    services.book(user=person.owner, slot_id=slots[0].pk, person_ids=[person.pk])
    services.book(user=person.owner, slot_id=slots[1].pk, person_ids=[person.pk])
    with refused("limit_reached"):
        services.book(user=person.owner, slot_id=slots[2].pk, person_ids=[person.pk])


def test_clinic_one_registration_per_person_per_department_per_day(tomorrow_10):
    merchant = make_offering(kind="clinic").merchant
    internal_a = make_offering(kind="clinic", merchant=merchant, limit_group="内科")
    internal_b = make_offering(kind="clinic", merchant=merchant, limit_group="内科")
    surgery = make_offering(kind="clinic", merchant=merchant, limit_group="外科")
    person = make_person()
    services.book(
        user=person.owner, slot_id=make_slot(offering=internal_a, start=tomorrow_10).pk, person_ids=[person.pk]
    )
    with refused("limit_reached"):
        services.book(
            user=person.owner,
            slot_id=make_slot(offering=internal_b, start=tomorrow_10 + dt.timedelta(hours=2)).pk,
            person_ids=[person.pk],
        )
    services.book(user=person.owner, slot_id=make_slot(offering=surgery, start=tomorrow_10).pk, person_ids=[person.pk])


def test_activity_one_sign_up_per_phone():
    offering = make_offering(kind="activity")
    slot = make_slot(offering=offering)
    answers = {"name": "李雷", "phone": "13912345678"}
    services.book(user=make_user(), slot_id=slot.pk, answers=answers)
    with refused("duplicate"):
        services.book(user=make_user(), slot_id=slot.pk, answers={"name": "韩梅梅", "phone": "+86 139 1234 5678"})


def test_custom_form_reports_every_bad_field_and_books_nothing():
    offering = make_offering(
        kind="activity",
        form_fields=[
            {"key": "name", "label": "姓名", "type": "text", "required": True},
            {"key": "size", "label": "尺码", "type": "choice", "choices": ["S", "M", "L"], "required": True},
            {"key": "age", "label": "年龄", "type": "number", "min": 6, "max": 12},
            {"key": "day", "label": "日期", "type": "date"},
            {"key": "mobile", "label": "手机", "type": "phone"},
            {"key": "idno", "label": "身份证", "type": "id_number"},
        ],
    )
    slot = make_slot(offering=offering)
    with pytest.raises(DomainError) as caught:
        services.book(
            user=make_user(),
            slot_id=slot.pk,
            answers={"size": "XL", "age": 30, "day": "2026-13-01", "mobile": "123", "idno": "110105199001010018"},
        )
    assert set(caught.value.fields) == {"name", "size", "age", "day", "mobile", "idno"}
    slot.refresh_from_db()
    assert slot.reserved == 0


def test_custom_form_answers_are_cleaned():
    offering = make_offering(
        kind="activity",
        form_fields=[
            {"key": "name", "label": "姓名", "type": "text", "required": True},
            {"key": "age", "label": "年龄", "type": "number"},
            {"key": "mobile", "label": "手机", "type": "phone"},
        ],
    )
    booking = services.book(
        user=make_user(),
        slot_id=make_slot(offering=offering).pk,
        answers={"name": " 王芳 ", "age": "9", "mobile": "+86 13912345678", "extra": "ignored"},
    )
    assert booking.answers == {"name": "王芳", "age": 9, "mobile": "13912345678"}


def test_real_name_kinds_need_an_id_for_everyone():
    slot = make_slot(offering=make_offering(kind="scenic"))
    user = make_user()
    nameless = make_person(owner=user, real_name=False)
    with refused("invalid"):
        services.book(user=user, slot_id=slot.pk, person_ids=[nameless.pk])


def test_people_must_belong_to_the_account():
    slot = make_slot(offering=make_offering(kind="scenic"))
    stranger = make_person()
    with refused("invalid"):
        services.book(user=make_user(), slot_id=slot.pk, person_ids=[stranger.pk])


def test_group_size_is_limited_to_five():
    slot = make_slot(offering=make_offering(kind="scenic"))
    user = make_user()
    people = [make_person(owner=user) for _ in range(6)]
    with refused("invalid"):
        services.book(user=user, slot_id=slot.pk, person_ids=[p.pk for p in people])


def _family(user, adults: int, children: int):
    grown = [make_person(owner=user) for _ in range(adults)]
    guardian = grown[0] if grown else make_person(owner=user)
    kids = [make_person(owner=user, birth_date=dt.date(2018, 3, 1), guardian_id=guardian.pk) for _ in range(children)]
    return grown + kids


def test_at_most_three_children_per_scenic_booking():
    slot = make_slot(offering=make_offering(kind="scenic"))
    user = make_user()
    with refused("invalid"):
        services.book(user=user, slot_id=slot.pk, person_ids=[p.pk for p in _family(user, 1, 4)])
    other = make_user()
    booking = services.book(user=other, slot_id=slot.pk, person_ids=[p.pk for p in _family(other, 1, 3)])
    assert booking.attendees.filter(is_minor=True).count() == 3


def test_children_only_with_an_adult_in_the_booking():
    slot = make_slot(offering=make_offering(kind="scenic"))
    user = make_user()
    kids = _family(user, 0, 2)
    with refused("invalid"):
        services.book(user=user, slot_id=slot.pk, person_ids=[p.pk for p in kids])


def test_clinic_child_needs_a_guardian_in_the_account():
    slot = make_slot(offering=make_offering(kind="clinic"))
    user = make_user()
    parent = make_person(owner=user)
    child = make_person(owner=user, birth_date=dt.date(2019, 6, 1), guardian_id=parent.pk)
    booking = services.book(user=user, slot_id=slot.pk, person_ids=[child.pk])
    attendee = booking.attendees.get()
    assert attendee.is_minor and attendee.guardian_name == parent.name


def test_clinic_child_without_guardian_is_refused():
    slot = make_slot(offering=make_offering(kind="clinic"))
    user = make_user()
    parent = make_person(owner=user)
    child = make_person(owner=user, birth_date=dt.date(2019, 6, 1), guardian_id=parent.pk)
    type(child).objects.filter(pk=child.pk).update(guardian=None)  # e.g. data imported from elsewhere
    with refused("invalid"):
        services.book(user=user, slot_id=slot.pk, person_ids=[child.pk])


def test_vehicle_passengers_fit_the_seats():
    vehicle = make_resource(type="vehicle", seats=7)
    offering = make_offering(kind="vehicle", merchant=vehicle.merchant)
    slot = make_slot(offering=offering, capacity=1, resources=[vehicle])
    answers = {"pickup": "虹桥机场T2", "destination": "外滩", "contact_phone": "13912345678"}
    with refused("invalid"):
        services.book(user=make_user(), slot_id=slot.pk, party_size=8, answers=answers)
    booking = services.book(user=make_user(), slot_id=slot.pk, party_size=7, answers=answers)
    assert booking.seats == 1  # the car is taken whole


def test_vehicle_needs_pickup_and_destination():
    offering = make_offering(kind="vehicle")
    with pytest.raises(DomainError) as caught:
        services.book(user=make_user(), slot_id=make_slot(offering=offering).pk, party_size=2, answers={})
    assert {"pickup", "destination"} <= set(caught.value.fields)


def test_booking_opens_seven_days_ahead_at_eight_pm():
    offering = make_offering(kind="scenic")
    day = timeutil.today() + dt.timedelta(days=8)
    slot = make_slot(offering=offering, start=timeutil.local_datetime(day, dt.time(9)))
    person = make_person()
    release = timeutil.local_datetime(day - dt.timedelta(days=7), dt.time(20, 0))
    with refused("not_open"):
        services.book(user=person.owner, slot_id=slot.pk, person_ids=[person.pk], now=release - dt.timedelta(seconds=1))
    assert services.book(user=person.owner, slot_id=slot.pk, person_ids=[person.pk], now=release)


def test_booking_closes_before_the_start():
    offering = make_offering(kind="course")  # closes 30 minutes before
    slot = make_slot(offering=offering)
    with refused("too_late"):
        services.book(user=make_user(), slot_id=slot.pk, now=slot.start - dt.timedelta(minutes=29))


def test_closed_slot_cannot_be_booked():
    slot = make_slot(status="closed")
    with refused("not_allowed"):
        services.book(user=make_user(), slot_id=slot.pk)


def test_unknown_slot_is_not_found():
    with refused("not_found"):
        services.book(user=make_user(), slot_id=999999)


def test_banned_account_cannot_book():
    slot = make_slot()
    user = make_user()
    Ban.objects.create(
        user=user, merchant=slot.offering.merchant, ends_at=timeutil.now() + dt.timedelta(days=3), reason="test"
    )
    with refused("banned"):
        services.book(user=user, slot_id=slot.pk)


def test_approval_required_holds_seats_until_staff_decide(django_user_model):
    staff = django_user_model.objects.create_user("dispatcher")
    offering = make_offering(kind="vehicle", policy_overrides={"requires_approval": True})
    slot = make_slot(offering=offering, capacity=1)
    answers = {"pickup": "公司", "destination": "客户", "contact_phone": "13912345678"}
    booking = services.book(user=make_user(), slot_id=slot.pk, party_size=2, answers=answers)
    assert booking.status == Status.PENDING_APPROVAL
    with refused("slot_full"):
        services.book(user=make_user(), slot_id=slot.pk, party_size=1, answers=answers)
    services.reject(booking=booking, staff=staff, reason="车辆检修")
    slot.refresh_from_db()
    assert (booking.status, slot.reserved) == (Status.REJECTED, 0)
    again = services.book(user=make_user(), slot_id=slot.pk, party_size=1, answers=answers)
    services.approve(booking=again, staff=staff)
    assert again.status == Status.CONFIRMED
    assert [e.action for e in again.events.all()] == ["book", "approve"]


def test_idempotency_key_returns_the_same_booking():
    slot = make_slot(capacity=5)
    user = make_user()
    first = services.book(user=user, slot_id=slot.pk, idempotency_key="k-1")
    again = services.book(user=user, slot_id=slot.pk, idempotency_key="k-1")
    assert again.pk == first.pk and again.replayed and not first.replayed
    slot.refresh_from_db()
    assert slot.reserved == 1


def test_idempotency_key_reused_for_another_request_is_refused():
    user = make_user()
    offering = make_offering()
    services.book(user=user, slot_id=make_slot(offering=offering).pk, idempotency_key="k-2")
    with refused("invalid"):
        services.book(user=user, slot_id=make_slot(offering=offering).pk, idempotency_key="k-2")


def test_reserved_can_never_exceed_capacity_even_bypassing_the_engine():
    from django.db import IntegrityError, transaction

    slot = make_slot(capacity=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(reserved=3)


def test_weekly_club_allows_one_sign_up_per_phone_per_session(tomorrow_10):
    offering = make_offering(kind="activity", policy_overrides={"unique_answers_per": "slot"})
    this_week = make_slot(offering=offering, start=tomorrow_10)
    next_week = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=7))
    answers = {"name": "李雷", "phone": "13912345678"}
    services.book(user=make_user(), slot_id=this_week.pk, answers=answers)
    with refused("duplicate"):
        services.book(user=make_user(), slot_id=this_week.pk, answers=answers)
    assert services.book(user=make_user(), slot_id=next_week.pk, answers=answers)
