"""The H5 booking page of a dynamic-voucher offering swaps in a fresh QR code by itself."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from factories import make_slot, make_user

from yuyue.booking import services
from yuyue.h5.auth import SESSION_KEY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dynamic_qr_refreshes_on_the_page(make_offering, new_page, live_server: Any, settings):
    settings.VOUCHER_TOTP_STEP = 2  # a new code every 2 s, so the 5 s poll must bring a different one
    user = make_user()
    made = services.book(
        user=user, slot_id=make_slot(offering=make_offering(policy_overrides={"dynamic_voucher": True})).pk
    )
    client = Client()
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    page = new_page()
    page.context.add_cookies([{"name": "sessionid", "value": session.session_key, "url": live_server.url}])

    page.goto(f"/b/{made.code}/")
    qr = page.locator('[data-testid="dynamic-voucher"] svg')
    first = qr.inner_html()
    started = time.monotonic()
    page.wait_for_function(
        "old => { const svg = document.querySelector('[data-testid=dynamic-voucher] svg');"
        " return svg && svg.innerHTML !== old; }",
        arg=first,
        timeout=12_000,
    )
    assert qr.count() == 1  # replaced, not appended
    print(f"QR refreshed after {time.monotonic() - started:.1f}s")
