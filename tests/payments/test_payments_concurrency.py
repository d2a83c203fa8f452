"""Payments under real concurrency: threads with their own connections, released at once.

Like tests/booking/test_concurrency.py: real commits (``transaction=True``), so every connection
sees what the others committed. On SQLite writers queue; on PostgreSQL and MariaDB the row lock
on the Payment and the engine's conditional UPDATE do the work.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

import pytest
from factories import make_offering, make_slot, make_user
from paydom_world import PRICE_FEN, assert_money_adds_up, open_payment, send_refunds
from racing import race, values

from yuyue.booking import services as engine
from yuyue.booking.models import Booking, BookingEvent, Status
from yuyue.ledger.models import LedgerEntry
from yuyue.payments import services
from yuyue.payments.models import NoticeOutcome, Payment, PaymentNotice, PaymentState, Refund, RefundState

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def _priced_slot(capacity: int = 1) -> Any:
    offering = make_offering(kind="course", price_fen=PRICE_FEN, policy_overrides={"payment": "online"})
    return make_slot(offering=offering, capacity=capacity)


def test_the_same_notification_twenty_times_at_once_confirms_once(sandbox):
    slot = _priced_slot()
    booking = engine.book(user=make_user(), slot_id=slot.pk)
    payment = open_payment(booking)
    headers, body = sandbox.notification(sandbox.pay(payment.out_trade_no))

    answers = values(
        race(
            *[
                lambda: services.receive_notification(provider_name="sandbox", headers=headers, body=body)
                for _ in range(20)
            ]
        )
    )

    assert {a.status for a in answers} == {200}
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED and booking.paid_fen == PRICE_FEN
    assert BookingEvent.objects.filter(booking=booking, action="confirm").count() == 1
    confirmations = BookingEvent.objects.filter(booking=booking, action="confirm").values_list("pk", flat=True)
    assert LedgerEntry.objects.filter(event_id__in=list(confirmations)).count() == 1
    outcomes = Counter(PaymentNotice.objects.values_list("outcome", flat=True))
    assert outcomes == {NoticeOutcome.APPLIED: 1, NoticeOutcome.DUPLICATE: 19}
    assert_money_adds_up(slot)


def test_ten_clicks_on_pay_at_once_open_one_payment(sandbox):
    slot = _priced_slot()
    booking = engine.book(user=make_user(), slot_id=slot.pk)

    started = values(
        race(*[lambda: services.start_payment(booking=booking, provider_name="sandbox") for _ in range(10)])
    )

    assert len({s.payment.out_trade_no for s in started}) == 1
    assert {s.start.redirect_url for s in started} == {f"/pay/sandbox/{started[0].payment.out_trade_no}/"}
    assert Payment.objects.filter(booking=booking).count() == 1


@pytest.mark.parametrize("head_start", [-0.2, -0.01, 0, 0.01, 0.2])
def test_a_payment_racing_the_expiry_ends_paid_and_confirmed_or_expired_and_refunded(sandbox, head_start):
    """The expiry here does not ask the provider (as when it could not be reached for long): the
    payment and the expiry really race, and someone waiting takes the seat the moment it is free.
    A head start for one side (negative: for the expiry) makes both endings happen; with little or
    none, the race decides."""
    slot = _priced_slot()
    booking = engine.book(user=make_user(), slot_id=slot.pk)
    engine.join_waitlist(user=make_user(), slot_id=slot.pk)
    payment = open_payment(booking)
    headers, body = sandbox.notification(sandbox.pay(payment.out_trade_no))
    later = booking.hold_expires_at + dt.timedelta(minutes=1)

    def expire() -> Any:
        time.sleep(max(0, head_start))
        return engine.expire_hold(booking=Booking.objects.get(pk=booking.pk), now=later)

    def notify() -> Any:
        time.sleep(max(0, -head_start))
        return services.receive_notification(provider_name="sandbox", headers=headers, body=body)

    race(notify, expire)
    send_refunds()

    booking.refresh_from_db()
    payment.refresh_from_db()
    if booking.status == Status.CONFIRMED:  # the payment came first
        assert booking.paid_fen == PRICE_FEN and not Refund.objects.exists()
        assert Booking.objects.filter(slot=slot).count() == 1  # nobody was promoted
    else:  # the hold expired first: the waiting customer has the seat, the payer their money back
        assert booking.status == Status.REFUNDED
        assert Refund.objects.get().state == RefundState.SUCCEEDED
        assert payment.state == PaymentState.REFUNDED
        assert Booking.objects.filter(slot=slot, status=Status.PENDING_PAYMENT).exclude(pk=booking.pk).count() == 1
    assert_money_adds_up(slot)


def test_a_payment_racing_the_periodic_expiry_is_found_and_confirms_once(sandbox):
    slot = _priced_slot()
    booking = engine.book(user=make_user(), slot_id=slot.pk)
    payment = open_payment(booking)
    headers, body = sandbox.notification(sandbox.pay(payment.out_trade_no))
    later = booking.hold_expires_at + dt.timedelta(minutes=1)

    race(
        lambda: services.receive_notification(provider_name="sandbox", headers=headers, body=body),
        lambda: services.release_expired_holds(now=later),
    )

    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED
    assert BookingEvent.objects.filter(booking=booking, action="confirm").count() == 1
    assert not Refund.objects.exists()
    assert_money_adds_up(slot)
