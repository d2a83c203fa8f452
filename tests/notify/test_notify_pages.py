"""The H5 inbox (with the unread count in the header) and notification settings, and the console
page: templates, reminder times, delivery log, re-send; staff of another merchant see nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from factories import console_client, make_merchant, make_offering, make_slot, make_user

from yuyue.booking import services
from yuyue.core import timeutil
from yuyue.h5.auth import SESSION_KEY
from yuyue.notify import outbox
from yuyue.notify.models import InboxMessage, MessageTemplate, NotificationPreference, OfferingReminders, OutboxItem

pytestmark = pytest.mark.django_db


def h5_client(user: Any) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client


def confirmed_booking(merchant: Any = None) -> Any:
    offering = make_offering(merchant=merchant or make_merchant(), title="流瑜伽")
    start = timeutil.now() + dt.timedelta(days=3)
    booking = services.book(user=make_user(), slot_id=make_slot(offering=offering, start=start).pk)
    outbox.deliver_all_due()
    return booking


def test_inbox_shows_the_confirmation_and_the_unread_count() -> None:
    booking = confirmed_booking()
    client = h5_client(booking.user)
    home = client.get("/").content.decode()
    assert "/me/inbox/" in home and '<span class="badge"' in home
    page = client.get("/me/inbox/").content.decode()
    assert "预约成功" in page and booking.code in page and "流瑜伽" in page
    assert InboxMessage.objects.get(user=booking.user).read_at is not None
    assert '<span class="badge" aria-label' not in client.get("/").content.decode()


def test_inbox_needs_sign_in_and_shows_only_ones_own(client: Client) -> None:
    confirmed_booking()
    assert client.get("/me/inbox/").status_code == 302
    stranger = h5_client(make_user())
    assert "流瑜伽" not in stranger.get("/me/inbox/").content.decode()


def test_notification_settings_save_and_refuse_a_bad_email() -> None:
    user = make_user()
    client = h5_client(user)
    assert client.get("/me/notifications/").status_code == 200
    bad = client.post("/me/notifications/", {"inbox": "on", "email": "on", "email_address": "not-an-address"})
    assert bad.status_code == 422 and not NotificationPreference.objects.filter(user=user).exists()
    ok = client.post("/me/notifications/", {"inbox": "on", "email": "on", "email_address": "li@example.com"})
    assert ok.status_code == 302
    prefs = NotificationPreference.objects.get(user=user)
    assert (prefs.inbox, prefs.sms, prefs.email, prefs.wechat, prefs.email_address) == (
        True,
        False,
        True,
        False,
        "li@example.com",
    )


def test_console_templates_reminders_log_and_resend() -> None:
    merchant = make_merchant()
    booking = confirmed_booking(merchant)
    client = console_client(merchant)
    page = client.get("/console/notifications/")
    html = page.content.decode()
    assert page.status_code == 200 and "您已成功预约{merchant}的{offering}" in html and "notify.event" in html
    saved = client.post(
        "/console/notifications/templates/",
        {
            "event": "confirmed",
            "title": "订好啦",
            "body": "{offering} 在 {time}，凭 {code} 入场",
            "sms_template_code": "SMS_1",
        },
    )
    assert saved.status_code == 302
    assert MessageTemplate.objects.get(merchant=merchant, event="confirmed").title == "订好啦"
    empty = client.post("/console/notifications/templates/", {"event": "confirmed", "title": "", "body": ""})
    assert empty.status_code == 302 and MessageTemplate.objects.get(merchant=merchant).title == "订好啦"
    client.post(f"/console/notifications/reminders/{booking.offering_id}/", {"hours": "48, 3"})
    assert OfferingReminders.objects.get(offering_id=booking.offering_id).hours == [48.0, 3.0]
    client.post(f"/console/notifications/reminders/{booking.offering_id}/", {"hours": "abc"})
    assert OfferingReminders.objects.get(offering_id=booking.offering_id).hours == [48.0, 3.0]
    # The new wording is used for the next booking.
    again = services.book(user=make_user(), slot_id=make_slot(offering=booking.offering, start=booking.slot.start).pk)
    outbox.deliver_all_due()
    assert InboxMessage.objects.get(booking=again).title == "订好啦"
    assert again.code in InboxMessage.objects.get(booking=again).body
    item = OutboxItem.objects.filter(merchant=merchant, kind="notify.event").order_by("id").first()
    assert client.post(f"/console/notifications/log/{item.pk}/resend/").status_code == 302
    item.refresh_from_db()
    assert item.status == "pending" and item.attempts == 0


def test_console_other_merchant_and_front_desk_are_refused() -> None:
    mine, theirs = make_merchant(), make_merchant()
    booking = confirmed_booking(theirs)
    item = OutboxItem.objects.filter(merchant=theirs).first()
    client = console_client(mine)
    assert client.post(f"/console/notifications/log/{item.pk}/resend/").status_code == 404
    assert client.post(f"/console/notifications/reminders/{booking.offering_id}/", {"hours": "1"}).status_code == 404
    assert booking.code not in client.get("/console/notifications/").content.decode()
    desk = console_client(mine, role="front_desk")
    assert desk.get("/console/notifications/").status_code == 403
