"""The H5 chat in real Chromium at phone size: ask what I booked, ask to change the time, press a
slot button, confirm, and the booking has moved."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import expect

from yuyue.booking.models import Booking
from yuyue.h5.auth import new_session_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in_page(new_page: Any, live_server: Any, user: Any) -> Any:
    page = new_page()
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": new_session_for(user), "url": live_server.url}]
    )
    return page


def ask(page: Any, question: str) -> None:
    before = page.locator("[data-testid=chat-message]").count()
    page.fill("#question", question)
    page.get_by_role("button", name="发送").click()
    expect(page.locator("[data-testid=chat-message]")).to_have_count(before + 2)


def test_ask_what_i_booked_then_move_it_with_a_button(new_page, live_server, studio):
    page = signed_in_page(new_page, live_server, studio.customer_a)
    page.goto("/")
    page.get_by_role("link", name="客服").click()
    page.wait_for_url(re.compile(r"/chat/$"))

    ask(page, "我约了哪些")
    answer = page.locator("[data-testid=chat-message][data-sender=assistant]").last
    expect(answer).to_contain_text(studio.booking_a.code)
    expect(answer).not_to_contain_text(studio.booking_b.code)

    ask(page, "我想改时间")
    buttons = page.locator("[data-testid=chat-message]").last.locator("button[data-action=reschedule]")
    expect(buttons).to_have_count(2)
    buttons.last.click()  # the later of the two free times: the next day at 10:00
    page.get_by_test_id("confirm-action").click()
    expect(page.get_by_test_id("action-done")).to_contain_text("已改好")
    assert Booking.objects.get(pk=studio.booking_a.pk).slot_id == studio.next_day.pk
    assert Booking.objects.get(pk=studio.booking_b.pk).slot_id == studio.slot.pk


def test_quick_question_chip_works_for_a_visitor(new_page, live_server, studio):
    page = new_page()
    page.goto("/chat/")
    page.get_by_role("button", name="积分").click()
    expect(page.locator("[data-testid=chat-message][data-sender=assistant]").last).to_contain_text("登录")
