"""The demo's money: priced bookings paid in the sandbox, refunds of cancellations, reconcilable days."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Sum

from yuyue.booking.models import Booking, Status
from yuyue.core import timeutil
from yuyue.payments import services
from yuyue.payments.models import MONEY_IN, Payment, Refund, RefundState

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(demo_db: Any) -> None:
    """The demo, loaded once for every module that reads it (conftest.demo_db)."""


def test_paid_demo_bookings_have_their_sandbox_payments(loaded, settings):
    paid = Booking.objects.filter(paid_fen__gt=0)
    assert paid.exists()
    for booking in paid[:200]:
        money_in = Payment.objects.filter(booking=booking, state__in=MONEY_IN, provider="sandbox")
        assert money_in.aggregate(n=Sum("amount_fen"))["n"] == booking.paid_fen, booking.code
    # The car service is paid to the driver; the clinic's registration fee online.
    assert not Payment.objects.filter(booking__offering__kind="vehicle").exists()
    assert Payment.objects.filter(booking__offering__kind="clinic").exists()


def test_cancelled_paid_bookings_were_refunded_some_of_them_in_part(loaded):
    refunds = Refund.objects.select_related("payment")
    assert refunds.exists() and not refunds.exclude(state=RefundState.SUCCEEDED).exists()
    assert any(r.refund_fen < r.payment.amount_fen for r in refunds), "no late cancel with a partial refund"
    assert not Booking.objects.filter(status=Status.CANCELLED, refunds__state=RefundState.SUCCEEDED).exists()


def test_every_demo_day_reconciles_with_the_sandbox(loaded, settings):
    settings.PAYMENT_SANDBOX = True
    days = {timeutil.local_date(p.paid_at) for p in Payment.objects.filter(state__in=MONEY_IN)[:300]}
    for day in sorted(days)[:10]:
        report = services.reconcile(day=day, provider_name="sandbox")
        assert report.ok, report.mismatches
        assert report.checked > 0
