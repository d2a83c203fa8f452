"""Read-only queries behind the payment pages (changes go through services.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from yuyue.booking.models import Booking
from yuyue.core import timeutil
from yuyue.payments.models import Payment, PaymentNotice, PaymentState, Refund, RefundState


@dataclass(frozen=True)
class Money:
    """What a booking's customer paid and gets back, for the booking pages."""

    payments: list[Payment]
    refunds: list[Refund]

    @property
    def paid(self) -> list[Payment]:
        return [p for p in self.payments if p.state != PaymentState.PENDING and p.paid_at]

    @property
    def refund_pending_fen(self) -> int:
        return sum(r.refund_fen for r in self.refunds if r.state == RefundState.PENDING)

    @property
    def refunded_fen(self) -> int:
        return sum(r.refund_fen for r in self.refunds if r.state == RefundState.SUCCEEDED)

    @property
    def refund_failed_fen(self) -> int:
        return sum(r.refund_fen for r in self.refunds if r.state == RefundState.FAILED)


def money_of(booking: Booking) -> Money:
    return Money(
        payments=list(Payment.objects.filter(booking=booking).order_by("created_at", "pk")),
        refunds=list(Refund.objects.filter(booking=booking).order_by("created_at", "pk")),
    )


def payments_of(
    merchant_id: int,
    *,
    day: dt.date | None = None,
    state: str = "",
    provider: str = "",
) -> QuerySet[Payment]:
    """A merchant's payments, newest first, by the local day they were opened, state and provider."""
    found = Payment.objects.filter(merchant_id=merchant_id).select_related("booking", "booking__offering")
    if day is not None:
        start = timeutil.local_datetime(day, dt.time.min)
        found = found.filter(created_at__gte=start, created_at__lt=start + dt.timedelta(days=1))
    if state:
        found = found.filter(state=state)
    if provider:
        found = found.filter(provider=provider)
    return found.order_by("-created_at", "-pk")


def refunds_of(merchant_id: int, *, day: dt.date | None = None, state: str = "") -> QuerySet[Refund]:
    found = Refund.objects.filter(merchant_id=merchant_id).select_related("booking", "payment")
    if day is not None:
        start = timeutil.local_datetime(day, dt.time.min)
        found = found.filter(created_at__gte=start, created_at__lt=start + dt.timedelta(days=1))
    if state:
        found = found.filter(state=state)
    return found.order_by("-created_at", "-pk")


def flagged_notices(merchant_id: int) -> QuerySet[PaymentNotice]:
    """Notifications the merchant should look at (wrong amount or account, late payments), not yet handled."""
    return PaymentNotice.objects.filter(
        merchant_id=merchant_id, flagged_for_merchant=True, handled_at__isnull=True
    ).select_related("payment", "payment__booking")


def totals(merchant_id: int, *, day: dt.date | None = None) -> dict[str, Any]:
    paid = payments_of(merchant_id, day=day).exclude(state__in=[PaymentState.PENDING, PaymentState.CLOSED])
    paid = paid.exclude(state=PaymentState.FAILED)
    back = refunds_of(merchant_id, day=day, state=RefundState.SUCCEEDED)
    paid_fen = sum(paid.values_list("amount_fen", flat=True))
    refunded_fen = sum(back.values_list("refund_fen", flat=True))
    return {"paid_fen": paid_fen, "refunded_fen": refunded_fen, "net_fen": paid_fen - refunded_fen}
