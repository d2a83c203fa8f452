"""The points ledger: per merchant, earned on completion, taken for late cancels and no-shows,
never below zero unless the policy allows it, every change with its reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from factories import make_merchant, make_offering, make_slot, make_user

from yuyue.accounts.models import PointsBalance, PointsEntry
from yuyue.accounts.services import change_points, points_at
from yuyue.booking import services as engine
from yuyue.booking.models import Status

pytestmark = pytest.mark.django_db


def balance_is_the_sum_of_entries(user, merchant) -> None:
    total = PointsEntry.objects.filter(user=user, merchant=merchant).aggregate(s=Sum("delta"))["s"] or 0
    assert points_at(user=user, merchant_id=merchant.pk) == total


def test_points_are_kept_per_merchant():
    user, studio, museum = make_user(), make_merchant(), make_merchant()
    change_points(user=user, merchant=studio, delta=30, reason="完成课程")
    change_points(user=user, merchant=museum, delta=5, reason="参观")
    assert (points_at(user=user, merchant_id=studio.pk), points_at(user=user, merchant_id=museum.pk)) == (30, 5)
    user.refresh_from_db()
    assert user.points_balance == 35  # the account's total over all merchants
    assert PointsBalance.objects.filter(user=user).count() == 2


def test_a_deduction_is_capped_at_the_balance_and_says_so():
    user, studio = make_user(), make_merchant()
    change_points(user=user, merchant=studio, delta=4, reason="完成课程")
    entry = change_points(user=user, merchant=studio, delta=-10, reason="迟取消")
    assert (entry.delta, entry.balance_after) == (-4, 0)
    assert "迟取消" in entry.reason and "10" in entry.reason
    nothing_left = change_points(user=user, merchant=studio, delta=-10, reason="迟取消")
    assert (nothing_left.delta, nothing_left.balance_after) == (0, 0)  # recorded, with why nothing was taken
    user.refresh_from_db()
    assert user.points_balance == 0
    balance_is_the_sum_of_entries(user, studio)


def test_a_policy_may_let_points_go_negative():
    user, studio = make_user(), make_merchant()
    entry = change_points(user=user, merchant=studio, delta=-10, reason="迟取消", may_go_negative=True)
    assert (entry.delta, entry.balance_after, entry.reason) == (-10, -10, "迟取消")
    capped = change_points(user=user, merchant=studio, delta=-5, reason="爽约")  # below zero already: takes 0
    assert (capped.delta, capped.balance_after) == (0, -10)
    balance_is_the_sum_of_entries(user, studio)


def test_completing_a_class_earns_the_policys_points():
    user = make_user()
    yoga = make_offering(kind="course")  # the course kind earns 10 points per completed class
    slot = make_slot(offering=yoga)
    booking = engine.book(user=user, slot_id=slot.pk)
    engine.check_in(voucher=engine.voucher_for(booking), staff=None, now=slot.start)
    assert engine.complete_finished(now=slot.end) == 1
    entry = PointsEntry.objects.get(user=user)
    assert (entry.delta, entry.booking_id, entry.merchant_id) == (10, booking.pk, yoga.merchant_id)
    assert yoga.title in entry.reason
    assert engine.complete_finished(now=slot.end) == 0  # already completed: no second award
    assert PointsEntry.objects.filter(user=user).count() == 1


def test_an_offering_without_completion_points_earns_none():
    user = make_user()
    visit = make_offering(kind="activity")
    slot = make_slot(offering=visit)
    booking = engine.book(user=user, slot_id=slot.pk, answers={"name": "张三", "phone": user.phone})
    engine.check_in(voucher=engine.voucher_for(booking), staff=None, now=slot.start)
    engine.complete_finished(now=slot.end)
    booking.refresh_from_db()
    assert booking.status == Status.COMPLETED and not PointsEntry.objects.filter(user=user).exists()


def test_a_no_show_costs_the_policys_points_capped_at_the_balance():
    user = make_user()
    yoga = make_offering(kind="course")
    change_points(user=user, merchant=yoga.merchant, delta=6, reason="完成课程")
    slot = make_slot(offering=yoga)
    booking = engine.book(user=user, slot_id=slot.pk)
    engine.mark_no_show(booking=booking, staff=None, now=slot.start + dt.timedelta(minutes=5))
    entry = PointsEntry.objects.get(user=user, booking=booking)
    assert (entry.delta, entry.balance_after) == (-6, 0)
    balance_is_the_sum_of_entries(user, yoga.merchant)


def test_a_no_show_may_go_negative_when_the_policy_says_so():
    user = make_user()
    yoga = make_offering(kind="course", policy_overrides={"points_may_go_negative": True, "no_show_points": 15})
    slot = make_slot(offering=yoga)
    booking = engine.book(user=user, slot_id=slot.pk)
    engine.mark_no_show(booking=booking, staff=None, now=slot.start + dt.timedelta(minutes=5))
    assert points_at(user=user, merchant_id=yoga.merchant_id) == -15


def test_a_late_cancel_is_capped_unless_the_policy_allows_negative_points():
    user = make_user()
    strict = make_offering(kind="course")
    lenient = make_offering(kind="course", merchant=strict.merchant, policy_overrides={"points_may_go_negative": True})
    for offering, expected in ((strict, 0), (lenient, -10)):
        booking = engine.book(user=user, slot_id=make_slot(offering=offering).pk)
        engine.cancel(booking=booking, by=user, now=booking.slot.start - dt.timedelta(hours=1))
        assert points_at(user=user, merchant_id=strict.merchant_id) == expected
    assert [e.delta for e in PointsEntry.objects.filter(user=user).order_by("id")] == [0, -10]
