"""The console's 支付 page and the payments on a booking's page, for owners and managers only."""

from __future__ import annotations

import pytest
from factories import console_client, make_user
from paydom_world import deliver, open_payment, send_refunds

from yuyue.booking import services as engine
from yuyue.console.models import AuditEntry
from yuyue.payments.models import PaymentNotice

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(sandbox, booking, offering):
    """One booking paid and cancelled (refunded), and one payment with the wrong amount (flagged)."""
    payment = open_payment(booking)
    deliver(sandbox, sandbox.pay(payment.out_trade_no))
    engine.cancel(booking=booking, by=booking.user)
    send_refunds()
    from factories import make_slot

    other = engine.book(user=make_user(), slot_id=make_slot(offering=offering).pk)
    wrong = open_payment(other)
    deliver(sandbox, sandbox.pay(wrong.out_trade_no), amount_fen=1)
    return {"paid": payment, "wrong": wrong, "booking": booking}


def test_the_owner_sees_payments_refunds_and_flagged_notifications(history, offering):
    owner = console_client(offering.merchant, "owner")
    page = owner.get("/console/payments/").content.decode()
    assert history["paid"].out_trade_no in page and history["wrong"].out_trade_no in page
    assert 'data-testid="refunds"' in page and "¥88.00" in page
    assert 'data-testid="flagged-notices"' in page
    filtered = owner.get("/console/payments/", {"state": "refunded", "provider": "sandbox"}).content.decode()
    assert history["paid"].out_trade_no in filtered.split('data-testid="payments"')[1].split("</table>")[0]
    assert history["wrong"].out_trade_no not in filtered.split('data-testid="payments"')[1].split("</table>")[0]
    assert owner.get("/console/payments/", {"date": "not-a-day", "state": "nonsense"}).status_code == 200

    detail = owner.get(f"/console/bookings/{history['booking'].code}/").content.decode()
    assert 'data-testid="booking-payments"' in detail and history["paid"].out_trade_no in detail


def test_marking_a_flagged_notification_handled_is_audited(history, offering):
    manager = console_client(offering.merchant, "manager")
    notice = PaymentNotice.objects.get(flagged_for_merchant=True, outcome="amount_mismatch")
    response = manager.post(f"/console/payments/notices/{notice.pk}/handled/")
    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.handled_at is not None and notice.handled_by.username.startswith("manager")
    assert AuditEntry.objects.filter(action="payments.notice_handled", object_id=str(notice.pk)).exists()
    assert 'data-testid="flagged-notices"' not in manager.get("/console/payments/").content.decode()


def test_front_desk_sees_neither_the_page_nor_the_money_on_a_booking(history, offering):
    desk = console_client(offering.merchant, "staff")
    assert desk.get("/console/payments/").status_code == 403
    detail = desk.get(f"/console/bookings/{history['booking'].code}/").content.decode()
    assert 'data-testid="booking-payments"' not in detail
