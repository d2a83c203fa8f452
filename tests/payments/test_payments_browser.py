"""A customer pays in the sandbox cashier in real Chromium and sees the entry voucher."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from factories import make_offering, make_slot, make_user

from yuyue.booking import services as engine
from yuyue.booking.models import Status
from yuyue.h5.auth import new_session_for
from yuyue.payments.models import Payment, PaymentState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_pays_in_the_sandbox_cashier_and_sees_the_voucher(new_page: Any, live_server: Any, settings):
    settings.PAYMENT_SANDBOX = True
    offering = make_offering(
        kind="course", title="流瑜伽体验课", price_fen=8800, policy_overrides={"payment": "online"}
    )
    customer = make_user()
    booking = engine.book(user=customer, slot_id=make_slot(offering=offering).pk)
    page = new_page()
    page.context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": new_session_for(customer), "url": live_server.url}]
    )

    page.goto(f"/b/{booking.code}/")
    assert page.get_by_test_id("hold-countdown").is_visible()
    page.locator('[data-testid="pay-box"] button[name=provider]').click()

    page.wait_for_url("**/pay/sandbox/**")
    assert page.get_by_test_id("cashier-amount").inner_text() == "¥88.00"
    assert "流瑜伽体验课" in page.get_by_test_id("sandbox-cashier").inner_text()
    page.locator("button[value=pay]").click()

    page.wait_for_url(f"**/b/{booking.code}/")
    page.locator(".voucher svg").wait_for()
    assert page.get_by_test_id("money-box").is_visible()
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED
    assert Payment.objects.get(booking=booking).state == PaymentState.PAID
