"""cancel(), reschedule(), approve/reject: changing one's mind, all or nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_offering, make_person, make_resource, make_slot, make_user

from yuyue.accounts.models import PointsEntry
from yuyue.accounts.services import change_points
from yuyue.booking import services
from yuyue.booking.models import Claim, ResourceClaim, Status
from yuyue.core.errors import DomainError

pytestmark = pytest.mark.django_db


def refused(code: str):
    return pytest.raises(DomainError, match=f"^{code}:")


def test_cancel_gives_the_seats_and_claims_back():
    slot = make_slot(offering=make_offering(kind="scenic"), capacity=2)
    person = make_person()
    booking = services.book(user=person.owner, slot_id=slot.pk, person_ids=[person.pk])
    services.cancel(booking=booking, by=person.owner, reason="行程有变")
    slot.refresh_from_db()
    assert (booking.status, slot.reserved) == (Status.CANCELLED, 0)
    assert not Claim.objects.filter(booking=booking).exists()
    # the same person may book again
    assert services.book(user=person.owner, slot_id=slot.pk, person_ids=[person.pk]).status == Status.CONFIRMED


def test_cancel_before_the_deadline_is_free():
    booking = services.book(user=make_user(), slot_id=make_slot(offering=make_offering(kind="course")).pk)
    preview = services.cancel_preview(booking=booking, now=booking.slot.start - dt.timedelta(hours=7))
    assert (preview.allowed, preview.points_penalty) == (True, 0)


def test_late_cancel_of_a_course_costs_ten_points():
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot(offering=make_offering(kind="course")).pk)
    change_points(user=user, merchant=booking.merchant, delta=30, reason="完成课程")
    late = booking.slot.start - dt.timedelta(hours=5)
    preview = services.cancel_preview(booking=booking, now=late)
    assert (preview.allowed, preview.points_penalty) == (True, 10)
    services.cancel(booking=booking, by=user, now=late)
    user.refresh_from_db()
    assert user.points_balance == 20
    assert PointsEntry.objects.filter(user=user).first().delta == -10


def test_staff_cancelling_does_not_cost_the_customer_points(django_user_model):
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot(offering=make_offering(kind="course")).pk)
    staff = django_user_model.objects.create_user("desk")
    services.cancel(booking=booking, by=staff, reason="教练请假", now=booking.slot.start - dt.timedelta(hours=1))
    user.refresh_from_db()
    assert user.points_balance == 0
    assert booking.events.last().actor == "staff"


def test_cannot_cancel_after_the_start():
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot().pk)
    with refused("too_late"):
        services.cancel(booking=booking, by=user, now=booking.slot.start + dt.timedelta(minutes=1))


def test_cannot_cancel_twice():
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot().pk)
    services.cancel(booking=booking, by=user)
    with refused("too_late"):
        services.cancel(booking=booking, by=user)


def test_paid_cancel_preview_refunds_in_full_before_the_deadline():
    offering = make_offering(kind="course", price_fen=9900, policy_overrides={"late_cancel_refund_percent": 50})
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot(offering=offering).pk)
    services.confirm(booking=booking)
    early = services.cancel_preview(booking=booking, now=booking.slot.start - dt.timedelta(hours=12))
    late = services.cancel_preview(booking=booking, now=booking.slot.start - dt.timedelta(hours=1))
    assert (early.refund_fen, late.refund_fen) == (9900, 4950)


def test_nothing_is_refunded_online_for_a_booking_paid_at_the_venue():
    offering = make_offering(kind="course", price_fen=9900, policy_overrides={"payment": "on_site"})
    booking = services.book(user=make_user(), slot_id=make_slot(offering=offering).pk)
    preview = services.cancel_preview(booking=booking, now=booking.slot.start - dt.timedelta(hours=12))
    assert (preview.allowed, preview.refund_fen) == (True, 0)


def test_approving_a_booking_paid_at_the_venue_confirms_it(django_user_model):
    offering = make_offering(price_fen=5000, policy_overrides={"requires_approval": True, "payment": "on_site"})
    booking = services.book(user=make_user(), slot_id=make_slot(offering=offering).pk)
    assert booking.status == Status.PENDING_APPROVAL
    staff = django_user_model.objects.create_user("dispatcher")
    assert services.approve(booking=booking, staff=staff).status == Status.CONFIRMED


def test_reschedule_moves_seat_and_keeps_the_code(tomorrow_10):
    offering = make_offering(kind="scenic")
    old = make_slot(offering=offering, start=tomorrow_10, capacity=2)
    new = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=1), capacity=2)
    person = make_person()
    booking = services.book(user=person.owner, slot_id=old.pk, person_ids=[person.pk])
    code = booking.code
    services.reschedule(booking=booking, slot_id=new.pk, by=person.owner)
    old.refresh_from_db()
    new.refresh_from_db()
    assert (booking.code, booking.slot_id, old.reserved, new.reserved) == (code, new.pk, 0, 1)
    assert booking.reschedule_count == 1
    assert all(f"slot:{new.pk}:" in k or k.startswith("day:") for k in booking.claims.values_list("key", flat=True))


def test_reschedule_to_a_full_slot_changes_nothing(tomorrow_10):
    offering = make_offering(kind="course")
    old = make_slot(offering=offering, start=tomorrow_10)
    full = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=1), capacity=1)
    services.book(user=make_user(), slot_id=full.pk)
    user = make_user()
    booking = services.book(user=user, slot_id=old.pk)
    claims_before = set(booking.claims.values_list("key", flat=True))
    with refused("slot_full"):
        services.reschedule(booking=booking, slot_id=full.pk, by=user)
    booking.refresh_from_db()
    old.refresh_from_db()
    assert (booking.slot_id, booking.reschedule_count, old.reserved) == (old.pk, 0, 1)
    assert set(booking.claims.values_list("key", flat=True)) == claims_before


def test_reschedule_respects_the_per_day_limit(tomorrow_10):
    offering = make_offering(kind="scenic")
    day1 = make_slot(offering=offering, start=tomorrow_10)
    day2_morning = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=1))
    day2_afternoon = make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=1, hours=4))
    person = make_person()
    services.book(user=person.owner, slot_id=day2_morning.pk, person_ids=[person.pk])
    booking = services.book(user=person.owner, slot_id=day1.pk, person_ids=[person.pk])
    with refused("limit_reached"):
        services.reschedule(booking=booking, slot_id=day2_afternoon.pk, by=person.owner)


def test_reschedule_limit(tomorrow_10):
    offering = make_offering(kind="course", policy_overrides={"max_reschedules": 1})
    slots = [make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=d)) for d in range(3)]
    user = make_user()
    booking = services.book(user=user, slot_id=slots[0].pk)
    services.reschedule(booking=booking, slot_id=slots[1].pk, by=user)
    with refused("limit_reached"):
        services.reschedule(booking=booking, slot_id=slots[2].pk, by=user)


def test_reschedule_only_within_the_same_offering():
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot().pk)
    with refused("invalid"):
        services.reschedule(booking=booking, slot_id=make_slot().pk, by=user)


def test_coach_cannot_be_in_two_branches_at_once(tomorrow_10):
    coach = make_resource(type="coach")
    yoga = make_offering(kind="course", merchant=coach.merchant)
    pilates = make_offering(kind="course", merchant=coach.merchant)
    at_a = make_slot(offering=yoga, start=tomorrow_10, resources=[coach])
    at_b = make_slot(offering=pilates, start=tomorrow_10 + dt.timedelta(minutes=30), resources=[coach])
    services.book(user=make_user(), slot_id=at_a.pk)
    services.book(user=make_user(), slot_id=at_a.pk)  # a second student in the same class is fine
    with refused("conflict"):
        services.book(user=make_user(), slot_id=at_b.pk)
    assert ResourceClaim.objects.filter(resource=coach).count() == 1


def test_coach_is_free_again_when_the_class_empties(tomorrow_10):
    coach = make_resource(type="coach")
    yoga = make_offering(kind="course", merchant=coach.merchant)
    at_a = make_slot(offering=yoga, start=tomorrow_10, resources=[coach])
    at_b = make_slot(offering=yoga, start=tomorrow_10, resources=[coach])
    user = make_user()
    booking = services.book(user=user, slot_id=at_a.pk)
    services.cancel(booking=booking, by=user)
    assert services.book(user=make_user(), slot_id=at_b.pk).status == Status.CONFIRMED


def test_back_to_back_slots_do_not_conflict(tomorrow_10):
    coach = make_resource(type="coach")
    yoga = make_offering(kind="course", merchant=coach.merchant)
    first = make_slot(offering=yoga, start=tomorrow_10, minutes=60, resources=[coach])
    second = make_slot(offering=yoga, start=tomorrow_10 + dt.timedelta(minutes=60), resources=[coach])
    services.book(user=make_user(), slot_id=first.pk)
    assert services.book(user=make_user(), slot_id=second.pk)


def test_reschedule_into_a_resource_conflict_changes_nothing(tomorrow_10):
    coach = make_resource(type="coach")
    yoga = make_offering(kind="course", merchant=coach.merchant)
    busy_elsewhere = make_slot(
        offering=make_offering(kind="course", merchant=coach.merchant), start=tomorrow_10, resources=[coach]
    )
    target = make_slot(offering=yoga, start=tomorrow_10, resources=[coach])
    origin = make_slot(offering=yoga, start=tomorrow_10 + dt.timedelta(days=1))
    services.book(user=make_user(), slot_id=busy_elsewhere.pk)
    user = make_user()
    booking = services.book(user=user, slot_id=origin.pk)
    with refused("conflict"):
        services.reschedule(booking=booking, slot_id=target.pk, by=user)
    target.refresh_from_db()
    booking.refresh_from_db()
    assert (target.reserved, booking.slot_id) == (0, origin.pk)


def test_postgres_exclusion_constraint_refuses_overlap_even_without_the_engine(tomorrow_10):
    from django.db import IntegrityError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("exclusion constraints exist on PostgreSQL only; elsewhere the engine locks the resource")
    coach = make_resource(type="coach")
    a = make_slot(start=tomorrow_10)
    b = make_slot(start=tomorrow_10 + dt.timedelta(minutes=15))
    ResourceClaim.objects.create(resource=coach, slot=a, starts_at=a.start, ends_at=a.end)
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceClaim.objects.create(resource=coach, slot=b, starts_at=b.start, ends_at=b.end)
