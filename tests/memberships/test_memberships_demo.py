"""The demo shows points and cards: the yoga studio's 10次卡, the demo user's card with classes used,
and a points history with completed classes and a late cancellation."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Sum

from yuyue.accounts.models import PointsBalance, PointsEntry
from yuyue.accounts.services import get_or_create_user_by_phone
from yuyue.booking.models import Booking, PaidBy
from yuyue.memberships.models import Card, CardProduct, CreditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(demo_db: Any) -> None:
    """The demo, loaded once for every module that reads it (conftest.demo_db)."""


def test_the_demo_user_holds_a_yoga_card_with_classes_used(loaded):
    me = get_or_create_user_by_phone("13800000001")
    product = CardProduct.objects.get(merchant__slug="demo-course", name="10次卡")
    card = Card.objects.get(user=me, product=product)
    assert 0 < card.credits_left < card.credits_total == 10
    used = Booking.objects.filter(user=me, card=card, paid_by=PaidBy.CREDIT)
    assert used.count() == card.credits_total - card.credits_left
    assert CreditEntry.objects.filter(card=card).aggregate(s=Sum("delta"))["s"] == card.credits_left


def test_the_demo_user_has_points_from_completions_and_a_late_cancel(loaded):
    me = get_or_create_user_by_phone("13800000001")
    entries = PointsEntry.objects.filter(user=me, merchant__slug="demo-course")
    assert entries.filter(delta__gt=0, booking__status="completed").exists()
    late = entries.filter(booking__status="cancelled").get()
    assert late.delta <= 0 and late.booking.cancel_reason == "临时加班"
    balance = PointsBalance.objects.get(user=me, merchant__slug="demo-course").balance
    assert balance == entries.aggregate(s=Sum("delta"))["s"] >= 0


def test_every_points_balance_of_the_demo_is_the_sum_of_its_entries(loaded):
    for row in PointsBalance.objects.all():
        total = PointsEntry.objects.filter(user=row.user, merchant=row.merchant).aggregate(s=Sum("delta"))["s"]
        assert row.balance == total >= 0
