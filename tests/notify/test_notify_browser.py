"""In real Chromium at phone size: book, and the confirmation is in the inbox with the unread count
in the header; the settings page saves the channels. (The outbox is drained as a worker would.)"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from factories import make_slot
from playwright.sync_api import expect

from yuyue.core import timeutil
from yuyue.integrations.sms import ConsoleSmsBackend
from yuyue.notify import outbox
from yuyue.notify.models import NotificationPreference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_booking_confirmation_reaches_the_inbox(page: Any, make_offering: Any) -> None:
    offering = make_offering("course", title="晨间流瑜伽")
    slot = make_slot(
        offering=offering, start=timeutil.local_datetime(timeutil.today() + dt.timedelta(days=2), dt.time(10))
    )
    page.goto(f"/slots/{slot.pk}/book/")
    page.wait_for_url(re.compile(r"/signin/"))
    page.fill("#phone", "13700020002")
    page.click("button[value=send]")
    page.locator("#code").wait_for()
    message = ConsoleSmsBackend.last_for("13700020002")
    assert message is not None
    page.fill("#code", message.params["code"])
    page.click("button[value=login]")
    page.wait_for_url(f"**/slots/{slot.pk}/book/")
    page.click("button[value=book]")
    page.locator(".voucher svg").wait_for()
    code = page.inner_text(".code").strip()

    assert outbox.deliver_all_due() >= 1  # what `yuyue serve` / `yuyue worker` do in the background
    page.goto("/")
    badge = page.locator("header nav a[href='/me/inbox/'] .badge")
    expect(badge).to_have_text("1")
    page.locator("header nav a[href='/me/inbox/']").click()
    inbox = page.locator("[data-testid=inbox]")
    expect(inbox).to_contain_text("预约成功")
    expect(inbox).to_contain_text(code)
    inbox.get_by_role("link", name="查看预约").click()
    page.wait_for_url(f"**/b/{code}/")
    expect(page.locator("header nav a[href='/me/inbox/'] .badge")).to_have_count(0)

    page.goto("/me/notifications/")
    page.uncheck("input[name=sms]")
    page.check("input[name=email]")
    page.fill("#n_email", "yoga@example.com")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/me/notifications/")
    prefs = NotificationPreference.objects.get()
    assert (prefs.sms, prefs.email, prefs.email_address) == (False, True, "yoga@example.com")
