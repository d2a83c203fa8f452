"""The notification endpoints of the JSON API: inbox, consents, channel settings."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from factories import make_slot, make_user

from yuyue.accounts import services as accounts
from yuyue.booking import services
from yuyue.core import timeutil
from yuyue.notify import outbox
from yuyue.notify.models import SubscribeConsent

pytestmark = pytest.mark.django_db


def auth(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {accounts.issue_token(user=user)}"}


def test_inbox_consents_and_settings(client: Client) -> None:
    user = make_user()
    booking = services.book(user=user, slot_id=make_slot(start=timeutil.now() + dt.timedelta(days=3)).pk)
    outbox.deliver_all_due()
    headers = auth(user)
    inbox = client.get("/api/v1/me/inbox", **headers).json()
    assert inbox["unread"] == 1 and inbox["messages"][0]["booking_code"] == booking.code
    assert inbox["messages"][0]["title"] == "预约成功" and inbox["messages"][0]["read"] is False
    assert client.post("/api/v1/me/inbox/read", **headers).json() == {"marked": 1}
    assert client.get("/api/v1/me/inbox", **headers).json()["unread"] == 0

    answer = client.post(
        "/api/v1/me/subscriptions", {"template_ids": ["TPL-A", "TPL-A", "TPL-B"]}, "application/json", **headers
    )
    assert answer.status_code == 201 and answer.json() == {"recorded": 3}
    assert SubscribeConsent.objects.filter(user=user, template_id="TPL-A", used_at__isnull=True).count() == 2

    bad = client.put(
        "/api/v1/me/notification-settings", {"email": True, "email_address": ""}, "application/json", **headers
    )
    assert bad.status_code == 422 and "email_address" in bad.json()["error"]["fields"]
    ok = client.put(
        "/api/v1/me/notification-settings",
        {"sms": False, "email": True, "email_address": "li@example.com"},
        "application/json",
        **headers,
    )
    assert ok.status_code == 200 and ok.json()["email_address"] == "li@example.com" and ok.json()["sms"] is False
    assert client.get("/api/v1/me/notification-settings", **headers).json()["email"] is True
    assert client.get("/api/v1/me/inbox").status_code == 401
