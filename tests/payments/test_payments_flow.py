"""Paying, notifications, late payments and refunds, through HTTP where a client would go."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.urls import reverse
from factories import make_user
from paydom_world import (
    PRICE_FEN,
    ApiClient,
    assert_money_adds_up,
    deliver,
    open_payment,
    send_refunds,
    signed_in_browser,
)

from yuyue.booking import services as engine
from yuyue.booking.models import BookingEvent, Status, WaitlistEntry
from yuyue.core import timeutil
from yuyue.payments import services
from yuyue.payments.models import NoticeOutcome, Payment, PaymentNotice, PaymentState, Refund, RefundState
from yuyue.payments.providers.sandbox import SIGNATURE_HEADER, TIMESTAMP_HEADER

pytestmark = pytest.mark.django_db


def _api(user: Any) -> ApiClient:
    return ApiClient(user)


# --- the sandbox flow end to end ------------------------------------------------------------


def test_pay_in_the_sandbox_cashier_confirms_the_booking(sandbox, booking, customer):
    assert booking.status == Status.PENDING_PAYMENT
    response = _api(customer).post(f"/bookings/{booking.code}/pay", {"provider": "sandbox"})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["redirect_url"] == f"/pay/sandbox/{answer['payment_id']}/"
    assert answer["amount_fen"] == PRICE_FEN and answer["params"] is None

    browser = signed_in_browser(customer)
    cashier = browser.get(answer["redirect_url"])
    page = cashier.content.decode()
    assert cashier.status_code == 200
    assert booking.merchant.name in page and booking.offering.title in page and "¥88.00" in page

    paid = browser.post(answer["redirect_url"], {"action": "pay"})
    assert paid.status_code == 302 and paid["Location"] == f"/b/{booking.code}/"
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED and booking.paid_fen == PRICE_FEN
    payment = Payment.objects.get(out_trade_no=answer["payment_id"])
    assert payment.state == PaymentState.PAID and payment.paid_at is not None and payment.open_key is None
    notice = PaymentNotice.objects.get(payment=payment)
    assert notice.verified and notice.outcome == NoticeOutcome.APPLIED
    voucher_page = browser.get(f"/b/{booking.code}/").content.decode()
    assert "<svg" in voucher_page and "¥88.00" in voucher_page


def test_the_fail_button_leaves_the_booking_waiting_and_a_new_payment_can_be_made(sandbox, booking, customer):
    api = _api(customer)
    first = api.post(f"/bookings/{booking.code}/pay", {"provider": "sandbox"}).json()
    browser = signed_in_browser(customer)
    browser.post(first["redirect_url"], {"action": "fail"})
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT and booking.paid_fen == 0
    assert Payment.objects.get(out_trade_no=first["payment_id"]).state == PaymentState.FAILED

    second = api.post(f"/bookings/{booking.code}/pay", {"provider": "sandbox"}).json()
    assert second["payment_id"] != first["payment_id"]
    browser.post(second["redirect_url"], {"action": "pay"})
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED


def test_paying_again_reuses_the_open_payment(sandbox, booking, customer):
    api = _api(customer)
    first = api.post(f"/bookings/{booking.code}/pay", {"provider": "sandbox", "channel": "cashier"}).json()
    again = api.post(f"/bookings/{booking.code}/pay", {"provider": "sandbox"}).json()
    assert first == again
    assert Payment.objects.filter(booking=booking).count() == 1


def test_pay_refuses_what_cannot_be_paid(sandbox, booking, customer, settings):
    api = _api(customer)
    unknown = api.post(f"/bookings/{booking.code}/pay", {"provider": "paypal"})
    assert unknown.status_code == 422 and "provider" in unknown.json()["error"]["fields"]
    not_configured = api.post(f"/bookings/{booking.code}/pay", {"provider": "wechat"})
    assert not_configured.status_code == 422 and "provider" in not_configured.json()["error"]["fields"]
    bad_channel = api.post(f"/bookings/{booking.code}/pay", {"provider": "sandbox", "channel": "jsapi"})
    assert bad_channel.status_code == 422 and "channel" in bad_channel.json()["error"]["fields"]
    assert _api(make_user()).post(f"/bookings/{booking.code}/pay", {"provider": "sandbox"}).status_code == 404

    engine.expire_hold(booking=booking)
    expired = api.post(f"/bookings/{booking.code}/pay", {"provider": "sandbox"})
    assert expired.status_code == 422 and expired.json()["error"]["code"] == "invalid"
    assert not Payment.objects.exists()

    settings.PAYMENT_SANDBOX = False
    assert api.post(f"/bookings/{booking.code}/pay", {"provider": "sandbox"}).status_code == 422


def test_pay_after_the_hold_ran_out_is_too_late(sandbox, booking, customer):
    later = booking.hold_expires_at + dt.timedelta(seconds=1)
    with pytest.raises(Exception) as refused:
        services.start_payment(booking=booking, provider_name="sandbox", now=later)
    assert getattr(refused.value, "code", "") == "too_late"


# --- notifications ---------------------------------------------------------------------------


def test_a_bad_signature_is_refused_logged_and_changes_nothing(sandbox, booking, client):
    payment = open_payment(booking)
    result = sandbox.pay(payment.out_trade_no)
    headers, body = sandbox.notification(result)
    forged = body.replace(b'"state":"paid"', b'"state":"paid" ')
    response = client.post(
        "/api/v1/payments/sandbox/notify",
        forged,
        content_type="application/json",
        headers={TIMESTAMP_HEADER: headers[TIMESTAMP_HEADER], SIGNATURE_HEADER: headers[SIGNATURE_HEADER]},
    )
    assert response.status_code == 400 and response.content == b"FAIL"
    unsigned = client.post("/api/v1/payments/sandbox/notify", body, content_type="application/json")
    assert unsigned.status_code == 400
    booking.refresh_from_db()
    payment.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT and payment.state == PaymentState.PENDING
    assert list(PaymentNotice.objects.values_list("outcome", "verified")) == [
        (NoticeOutcome.BAD_SIGNATURE, False),
        (NoticeOutcome.BAD_SIGNATURE, False),
    ]

    good = client.post("/api/v1/payments/sandbox/notify", body, content_type="application/json", headers=headers)
    assert good.status_code == 200 and good.content == b"OK"
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED


def test_an_old_notification_replayed_is_refused(sandbox, booking):
    payment = open_payment(booking)
    result = sandbox.pay(payment.out_trade_no)
    headers, body = sandbox.notification(result, timestamp=int(timeutil.now().timestamp()) - 3600)
    answer = services.receive_notification(provider_name="sandbox", headers=headers, body=body)
    assert answer.status == 400
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT


def test_the_same_notification_twice_has_one_effect(sandbox, booking):
    payment = open_payment(booking)
    result = sandbox.pay(payment.out_trade_no)
    assert deliver(sandbox, result).status == 200
    assert deliver(sandbox, result).status == 200
    assert BookingEvent.objects.filter(booking=booking, action="confirm").count() == 1
    assert list(PaymentNotice.objects.order_by("id").values_list("outcome", flat=True)) == [
        NoticeOutcome.APPLIED,
        NoticeOutcome.DUPLICATE,
    ]


@pytest.mark.parametrize(
    ("tamper", "outcome"),
    [
        ({"amount_fen": 1}, NoticeOutcome.AMOUNT_MISMATCH),
        ({"merchant_ref": "someone-else"}, NoticeOutcome.MERCHANT_MISMATCH),
    ],
)
def test_a_mismatch_never_confirms_and_is_flagged_for_the_merchant(sandbox, booking, tamper, outcome):
    payment = open_payment(booking)
    result = sandbox.pay(payment.out_trade_no)
    answer = deliver(sandbox, result, **tamper)
    assert answer.status == 200  # answered "processed", so the provider stops sending it
    booking.refresh_from_db()
    payment.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT and payment.state == PaymentState.PENDING
    notice = PaymentNotice.objects.get()
    assert notice.outcome == outcome and notice.flagged_for_merchant and notice.merchant_id == booking.merchant_id


def test_a_notification_of_an_unknown_payment_is_recorded(sandbox, booking):
    payment = open_payment(booking)
    result = sandbox.pay(payment.out_trade_no)
    deliver(sandbox, result, out_trade_no="P20990101NOTOURS")
    assert PaymentNotice.objects.get().outcome == NoticeOutcome.UNKNOWN_TRADE
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT


# --- holds and late payments -----------------------------------------------------------------


def test_a_payment_whose_notification_was_lost_is_found_before_the_hold_expires(sandbox, booking):
    payment = open_payment(booking)
    sandbox.pay(payment.out_trade_no)  # paid at the bank; the notification never arrives
    later = booking.hold_expires_at + dt.timedelta(minutes=1)
    assert services.release_expired_holds(now=later) == 0
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED and booking.paid_fen == PRICE_FEN
    assert PaymentNotice.objects.get().source == "query"


def test_an_unpaid_hold_closes_the_provider_order_then_expires(sandbox, booking):
    payment = open_payment(booking)
    later = booking.hold_expires_at + dt.timedelta(minutes=1)
    assert services.release_expired_holds(now=later) == 1
    booking.refresh_from_db()
    payment.refresh_from_db()
    assert booking.status == Status.EXPIRED and payment.state == PaymentState.CLOSED
    assert sandbox.trade(payment.out_trade_no).state == "closed"
    with pytest.raises(Exception, match="ORDER_CLOSED"):
        sandbox.pay(payment.out_trade_no)


def test_a_late_payment_with_the_seat_still_free_confirms_the_booking_again(sandbox, booking, slot):
    payment = open_payment(booking)
    engine.expire_hold(booking=booking)  # the expiry did not know about the payment
    slot.refresh_from_db()
    assert slot.reserved == 0
    deliver(sandbox, sandbox.pay(payment.out_trade_no))
    booking.refresh_from_db()
    slot.refresh_from_db()
    assert booking.status == Status.CONFIRMED and booking.paid_fen == PRICE_FEN and slot.reserved == 1
    assert BookingEvent.objects.filter(booking=booking, action="confirm", data__revived=True).exists()
    assert not Refund.objects.exists()
    assert_money_adds_up(slot)


def test_a_late_payment_with_the_seat_gone_is_refunded_in_full(sandbox, booking, slot):
    payment = open_payment(booking)
    someone = make_user()
    engine.join_waitlist(user=someone, slot_id=slot.pk)
    engine.expire_hold(booking=booking)  # the waiting customer gets the seat
    assert WaitlistEntry.objects.get().booking is not None
    deliver(sandbox, sandbox.pay(payment.out_trade_no))
    booking.refresh_from_db()
    assert booking.status == Status.EXPIRED
    refund = Refund.objects.get()
    assert refund.refund_fen == PRICE_FEN and refund.state == RefundState.PENDING
    notice = PaymentNotice.objects.get(outcome=NoticeOutcome.LATE_REFUNDED)
    assert notice.flagged_for_merchant

    send_refunds()  # the worker, after the notification was answered
    refund.refresh_from_db()
    booking.refresh_from_db()
    assert refund.state == RefundState.SUCCEEDED and refund.provider_refund_no
    assert booking.status == Status.REFUNDED
    assert Payment.objects.get().state == PaymentState.REFUNDED
    assert_money_adds_up(slot)


def test_lazy_expiry_when_the_slot_list_is_read(sandbox, booking, slot, offering):
    later = booking.hold_expires_at + dt.timedelta(minutes=1)
    day = timeutil.local_date(slot.start).isoformat()
    assert _api(make_user()).get(f"/offerings/{offering.pk}/slots", {"date_from": day}).json()[0]["remaining"] == 0
    assert services.expire_slot_holds([slot.pk], now=later) == 1
    booking.refresh_from_db()
    assert booking.status == Status.EXPIRED


def test_lazy_expiry_leaves_a_hold_with_a_payment_under_way_to_the_job(sandbox, booking, slot):
    open_payment(booking)
    later = booking.hold_expires_at + dt.timedelta(minutes=1)
    assert services.expire_slot_holds([slot.pk], now=later) == 0
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT


def test_the_slot_list_reads_expire_overdue_holds(sandbox, customer, slot, offering, settings):
    booking = engine.book(user=customer, slot_id=slot.pk, now=timeutil.now() - dt.timedelta(minutes=30))
    day = timeutil.local_date(slot.start).isoformat()
    slots = _api(make_user()).get(f"/offerings/{offering.pk}/slots", {"date_from": day}).json()
    assert slots[0]["remaining"] == 1
    booking.refresh_from_db()
    assert booking.status == Status.EXPIRED
    page = signed_in_browser(make_user()).get(f"/o/{offering.pk}/slots/?date={day}")
    assert page.status_code in (200, 302)


# --- refunds ---------------------------------------------------------------------------------


def _paid(sandbox: Any, booking: Any) -> Payment:
    payment = open_payment(booking)
    deliver(sandbox, sandbox.pay(payment.out_trade_no))
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED
    return payment


def test_cancelling_in_time_refunds_in_full_and_the_booking_becomes_refunded(sandbox, booking, customer):
    _paid(sandbox, booking)
    response = _api(customer).post(f"/bookings/{booking.code}/cancel", {"reason": "有事"})
    assert response.status_code == 200 and response.json()["status"] == Status.CANCELLED
    refund = Refund.objects.get()
    assert refund.refund_fen == PRICE_FEN and refund.state == RefundState.PENDING
    money = _api(customer).get(f"/bookings/{booking.code}/payments").json()
    assert money["refunds"][0]["state"] == "pending" and money["providers"] == ["sandbox"]

    send_refunds()
    refund.refresh_from_db()
    booking.refresh_from_db()
    assert refund.state == RefundState.SUCCEEDED and refund.attempts == 1
    assert booking.status == Status.REFUNDED
    page = signed_in_browser(customer).get(f"/b/{booking.code}/").content.decode()
    assert "¥88.00" in page and 'data-testid="refund-status"' in page


def test_a_late_cancel_refunds_the_policys_share(sandbox, customer, offering):
    from factories import make_slot

    soon = make_slot(offering=offering, start=timeutil.now() + dt.timedelta(hours=5))
    booking = engine.book(user=customer, slot_id=soon.pk)
    payment = _paid(sandbox, booking)
    preview = engine.cancel_preview(booking=booking)
    assert preview.refund_fen == PRICE_FEN // 2
    engine.cancel(booking=booking, by=customer)
    send_refunds()
    refund = Refund.objects.get()
    assert refund.refund_fen == PRICE_FEN // 2 and refund.state == RefundState.SUCCEEDED
    payment.refresh_from_db()
    assert payment.state == PaymentState.PARTLY_REFUNDED
    booking.refresh_from_db()
    assert booking.status == Status.REFUNDED


def test_closing_a_slot_refunds_everyone_in_full(sandbox, offering, customer):
    from factories import make_slot

    big = make_slot(offering=offering, capacity=5)
    bookings = [engine.book(user=make_user(), slot_id=big.pk) for _ in range(3)]
    for b in bookings[:2]:
        _paid(sandbox, b)
    closure = engine.cancel_for_closure(slot_id=big.pk, by=None, reason="台风")
    assert closure.refund_fen == 2 * PRICE_FEN
    assert Refund.objects.count() == 2
    send_refunds()
    assert set(Refund.objects.values_list("state", flat=True)) == {RefundState.SUCCEEDED}
    statuses = sorted(b.status for b in type(bookings[0]).objects.filter(pk__in=[b.pk for b in bookings]))
    assert statuses == sorted([Status.REFUNDED, Status.REFUNDED, Status.CANCELLED])


def test_a_refund_the_provider_cannot_take_yet_is_retried_with_backoff(sandbox, booking, customer, settings):
    _paid(sandbox, booking)
    engine.cancel(booking=booking, by=customer)
    settings.PAYMENT_SANDBOX = False  # the provider is away
    send_refunds()
    refund = Refund.objects.get()
    assert refund.state == RefundState.PENDING and refund.attempts == 1 and "not configured" in refund.last_error
    settings.PAYMENT_SANDBOX = True
    send_refunds(now=timeutil.now() + dt.timedelta(hours=1))
    refund.refresh_from_db()
    assert refund.state == RefundState.SUCCEEDED and refund.attempts == 2


def test_a_refund_notification_is_applied_once(sandbox, booking, customer):
    _paid(sandbox, booking)
    engine.cancel(booking=booking, by=customer)
    refund = Refund.objects.get()
    result = sandbox.refund(
        services.RefundOrder(
            out_trade_no=refund.payment.out_trade_no,
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.refund_fen,
            total_fen=PRICE_FEN,
            reason="",
            notify_url="",
        )
    )
    for _n in range(2):
        headers, body = sandbox.notification(result)
        assert services.receive_notification(provider_name="sandbox", headers=headers, body=body).status == 200
    refund.refresh_from_db()
    booking.refresh_from_db()
    assert refund.state == RefundState.SUCCEEDED and booking.status == Status.REFUNDED
    assert BookingEvent.objects.filter(booking=booking, action="refund").count() == 1
    assert json.loads(body)["type"] == "refund"


def test_cancelling_a_booking_confirmed_without_an_online_payment_still_works(booking, customer):
    engine.confirm(booking=booking)  # e.g. staff took the money at the desk
    engine.cancel(booking=booking, by=customer)
    booking.refresh_from_db()
    assert booking.status == Status.CANCELLED and not Refund.objects.exists()


def test_a_payment_for_a_booking_cancelled_meanwhile_is_refunded(sandbox, booking, customer):
    payment = open_payment(booking)
    engine.cancel(booking=booking, by=customer)  # unpaid: nothing to refund yet
    deliver(sandbox, sandbox.pay(payment.out_trade_no))
    assert Refund.objects.get().refund_fen == PRICE_FEN
    send_refunds()
    booking.refresh_from_db()
    assert booking.status == Status.REFUNDED


def test_stale_payments_of_cancelled_bookings_are_closed(sandbox, booking, customer):
    payment = open_payment(booking)
    engine.cancel(booking=booking, by=customer)
    assert services.close_stale_payments() == 1
    payment.refresh_from_db()
    assert payment.state == PaymentState.CLOSED and sandbox.trade(payment.out_trade_no).state == "closed"


def test_the_h5_booking_page_offers_to_pay_and_counts_down(sandbox, booking, customer):
    browser = signed_in_browser(customer)
    page = browser.get(f"/b/{booking.code}/").content.decode()
    assert 'data-testid="pay-box"' in page and 'data-testid="hold-countdown"' in page
    response = browser.post(reverse("payments:h5_pay", args=[booking.code]), {"provider": "sandbox"})
    assert response.status_code == 302 and response["Location"].startswith("/pay/sandbox/")


def test_a_payment_never_opened_at_the_provider_does_not_keep_the_hold(sandbox, booking):
    """Its creation failed (the provider did not answer): the provider knows nothing, the hold expires."""
    Payment.objects.create(
        booking=booking,
        merchant=booking.merchant,
        provider="sandbox",
        channel="cashier",
        out_trade_no="P-NEVER-OPENED",
        amount_fen=PRICE_FEN,
        merchant_ref=sandbox.merchant_ref,
        open_key=f"{booking.pk}:sandbox:cashier",
    )
    assert services.release_expired_holds(now=booking.hold_expires_at + dt.timedelta(minutes=1)) == 1
    assert Payment.objects.get().state == PaymentState.CLOSED


def test_a_provider_that_cannot_be_asked_keeps_the_hold_a_while(sandbox, booking, settings):
    open_payment(booking)
    settings.PAYMENT_SANDBOX = False
    assert services.release_expired_holds(now=booking.hold_expires_at + dt.timedelta(minutes=1)) == 0
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT
    assert services.release_expired_holds(now=booking.hold_expires_at + services.UNREACHABLE_GRACE) == 1


def test_the_notify_endpoint_needs_no_csrf_token_and_no_sign_in(sandbox, booking):
    from django.test import Client

    payment = open_payment(booking)
    headers, body = sandbox.notification(sandbox.pay(payment.out_trade_no))
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/api/v1/payments/sandbox/notify", body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert strict.post("/api/v1/payments/nowhere/notify", body, content_type="application/json").status_code == 404
