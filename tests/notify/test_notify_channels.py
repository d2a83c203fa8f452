"""Channel adapters against real local servers: WeChat subscribe messages, Aliyun SMS, SMTP email;
the inbox; people's channel choices; quiet hours."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.cache import cache
from factories import make_merchant, make_offering, make_slot, make_user
from fake_http import Received
from notify_fakes import fake_http, fake_smtp

from yuyue.booking import services
from yuyue.core import timeutil
from yuyue.integrations.sms import aliyun_signature
from yuyue.integrations.wechat_subscribe import fit_value
from yuyue.notify import outbox
from yuyue.notify.models import InboxMessage, MessageTemplate, NotificationPreference, OutboxItem, OutboxStatus
from yuyue.notify.services import record_consents as record_consent

pytestmark = pytest.mark.django_db

PHONE = "13912345678"
LONG_TITLE = "青岚山风景区日出观景台早鸟专场（含索道往返）"  # 24 characters


@pytest.fixture(autouse=True)
def _deliveries_run_a_day_later(settings) -> None:
    """These tests deliver at tomorrow 10:00 (outside quiet hours whenever they run): not stale yet."""
    settings.NOTIFY_STALE_HOURS = 72


def daytime() -> dt.datetime:
    """Tomorrow 10:00 local: outside quiet hours and after every row the test writes is due."""
    return timeutil.local_datetime(timeutil.today() + dt.timedelta(days=1), dt.time(10, 0))


def later() -> dt.datetime:
    """When the bookings start: far enough for no reminder to be due at ``daytime()``."""
    return daytime() + dt.timedelta(days=5)


def test_fit_value_truncates_sensibly_and_never_fails() -> None:
    assert fit_value("thing1", LONG_TITLE) == LONG_TITLE[:19] + "…" and len(fit_value("thing1", LONG_TITLE)) == 20
    assert fit_value("thing2", "短") == "短"
    assert fit_value("phrase3", "已取消预约了") == "已取消预约"
    assert fit_value("phrase3", "cancelled") == "cance"
    assert fit_value("name4", "欧阳娜娜娜娜娜娜娜娜娜") == "欧阳娜娜娜娜娜娜娜…"
    assert len(fit_value("name4", "x" * 50)) == 10
    assert fit_value("character_string5", "A" * 40) == "A" * 32
    assert fit_value("thing6", "") == "-" and fit_value("thing6", None) == "-"
    assert fit_value("thing7", "two\nlines") == "two lines"
    assert fit_value("unknown8", "y" * 30) == "y" * 19 + "…"


@pytest.fixture
def wechat_user():
    user = make_user(PHONE)
    user.wechat_openid = "openid-abc"
    user.save(update_fields=["wechat_openid"])
    NotificationPreference.objects.create(user=user, sms=False, wechat=True)
    return user


def test_wechat_subscribe_message_one_per_consent(settings, wechat_user) -> None:
    cache.clear()
    token_calls = []

    def respond(request: Received) -> tuple[int, dict]:
        if request.path == "/cgi-bin/token":
            token_calls.append(request.query)
            return 200, {"access_token": f"TOKEN{len(token_calls)}", "expires_in": 7200}
        assert request.path == "/cgi-bin/message/subscribe/send"
        if request.query["access_token"] != "TOKEN1":
            return 200, {"errcode": 40001, "errmsg": "invalid credential"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    merchant = make_merchant(name="青岚山风景区管理处")
    offering = make_offering(merchant=merchant, title=LONG_TITLE)
    MessageTemplate.objects.create(
        merchant=merchant, event="confirmed", title="预约成功", body="{offering} {time}", wechat_template_id="TPL-OK"
    )
    with fake_http(respond) as wechat:
        settings.WECHAT_APP_ID, settings.WECHAT_APP_SECRET, settings.WECHAT_API_BASE = "wxapp", "s3cret", wechat.url
        record_consent(user=wechat_user, template_ids=["TPL-OK"])
        first = services.book(user=wechat_user, slot_id=make_slot(offering=offering, start=later()).pk)
        second = services.book(
            user=wechat_user, slot_id=make_slot(offering=offering, start=later() + dt.timedelta(days=1)).pk
        )
        outbox.deliver_all_due(now=daytime())
        outbox.deliver_all_due(now=daytime())

    sends = [r for r in wechat.received if r.path.endswith("/send")]
    assert len(sends) == 1, "one consent allows one message"
    body = sends[0].json()
    assert body["touser"] == "openid-abc" and body["template_id"] == "TPL-OK"
    assert body["data"]["thing1"]["value"] == LONG_TITLE[:19] + "…"
    assert body["data"]["time2"]["value"] == f"{first.slot.start.astimezone(timeutil.local_zone()):%Y-%m-%d %H:%M}"
    assert body["data"]["character_string3"]["value"] == first.code
    assert body["data"]["thing4"]["value"] == "青岚山风景区管理处"
    assert body["miniprogram_state"] == "formal" and body["lang"] == "zh_CN"
    assert body["page"] == f"pages/booking/detail?code={first.code}"
    assert token_calls == [{"grant_type": "client_credential", "appid": "wxapp", "secret": "s3cret"}]
    statuses = dict(OutboxItem.objects.filter(kind="notify.wechat").values_list("payload__booking_id", "status"))
    assert statuses == {first.pk: OutboxStatus.DELIVERED, second.pk: OutboxStatus.SKIPPED}


def test_wechat_token_refreshed_once_when_stale_and_failures_retry(settings, wechat_user) -> None:
    cache.clear()
    calls = {"token": 0, "send": 0}

    def respond(request: Received) -> tuple[int, dict]:
        if request.path == "/cgi-bin/token":
            calls["token"] += 1
            return 200, {"access_token": f"T{calls['token']}", "expires_in": 7200}
        calls["send"] += 1
        if request.query["access_token"] == "T1":
            return 200, {"errcode": 42001, "errmsg": "access_token expired"}
        if calls["send"] == 2:
            return 500, {"errcode": -1, "errmsg": "system busy"}
        return 200, {"errcode": 0}

    merchant = make_merchant()
    settings.WECHAT_SUBSCRIBE_TEMPLATES = {"confirmed": "TPL"}  # the mini-program's template, for every merchant
    record_consent(user=wechat_user, template_ids=["TPL"])
    with fake_http(respond) as wechat:
        settings.WECHAT_APP_ID, settings.WECHAT_APP_SECRET, settings.WECHAT_API_BASE = "wxapp2", "s", wechat.url
        services.book(user=wechat_user, slot_id=make_slot(offering=make_offering(merchant=merchant), start=later()).pk)
        now = daytime()
        outbox.deliver_all_due(now=now)
        item = OutboxItem.objects.get(kind="notify.wechat")
        assert item.status == OutboxStatus.FAILED  # busy once: retried later with the same consent
        outbox.deliver_all_due(now=item.next_attempt_at)
    item.refresh_from_db()
    assert item.status == OutboxStatus.DELIVERED and calls == {"token": 2, "send": 3}
    assert wechat_user.subscribe_consents.get().used_by == item.dedupe_id


def test_aliyun_sms_sends_the_template_and_params(settings) -> None:
    def respond(request: Received) -> tuple[int, dict]:
        query = request.query
        assert query["Signature"] == aliyun_signature(query, "ali-secret")
        return 200, {"Code": "OK", "BizId": "biz-1", "Message": "OK"}

    user = make_user(PHONE)
    merchant = make_merchant(name="一念瑜伽")
    MessageTemplate.objects.create(
        merchant=merchant, event="confirmed", title="预约成功", body="{offering}", sms_template_code="SMS_900"
    )
    with fake_http(respond) as aliyun:
        settings.SMS_BACKEND = "aliyun"
        settings.ALIYUN_SMS_ACCESS_KEY_ID, settings.ALIYUN_SMS_ACCESS_KEY_SECRET = "ak", "ali-secret"
        settings.ALIYUN_SMS_SIGN_NAME, settings.ALIYUN_SMS_ENDPOINT = "预约", aliyun.url + "/"
        booking = services.book(
            user=user, slot_id=make_slot(offering=make_offering(merchant=merchant, title="流瑜伽"), start=later()).pk
        )
        outbox.deliver_all_due(now=daytime())
    assert len(aliyun.received) == 1
    query = aliyun.received[0].query
    assert (query["Action"], query["PhoneNumbers"], query["TemplateCode"], query["SignName"]) == (
        "SendSms",
        PHONE,
        "SMS_900",
        "预约",
    )
    params = json.loads(query["TemplateParam"])
    assert params["offering"] == "流瑜伽" and params["merchant"] == "一念瑜伽" and params["code"] == booking.code
    assert OutboxItem.objects.get(kind="notify.sms").status == OutboxStatus.DELIVERED


def test_email_html_and_text_over_smtp(settings) -> None:
    user = make_user()
    NotificationPreference.objects.create(user=user, sms=False, email=True, email_address="li@example.com")
    with fake_smtp() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", smtp.port, False
        booking = services.book(user=user, slot_id=make_slot(start=later()).pk)
        outbox.deliver_all_due(now=daytime())
    assert len(smtp.mails) == 1
    mail = smtp.mails[0]
    assert mail.recipients == ["li@example.com"]
    assert mail.message["Subject"] == "预约成功"
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert booking.code in text and booking.code in html and "<h1" in html
    item = OutboxItem.objects.get(kind="notify.email")
    assert mail.message["X-Yuyue-Message-Id"] == item.dedupe_id and item.status == OutboxStatus.DELIVERED


def test_people_choose_their_channels() -> None:
    quiet = make_user()
    NotificationPreference.objects.create(user=quiet, inbox=False, sms=False)
    services.book(user=quiet, slot_id=make_slot(start=later()).pk)
    outbox.deliver_all_due(now=daytime())
    assert not InboxMessage.objects.exists()
    assert not OutboxItem.objects.filter(kind__in=["notify.sms", "notify.email", "notify.wechat"]).exists()


def test_quiet_hours_hold_non_urgent_messages_until_morning(settings) -> None:
    settings.NOTIFY_QUIET_HOURS = "23:00-08:00"
    settings.NOTIFY_STALE_HOURS = 24 * 30  # delivered days after booking in this test
    user = make_user(PHONE)
    offering = make_offering()
    late = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=5), dt.time(23, 30))
    morning = timeutil.local_datetime(timeutil.today() + dt.timedelta(days=6), dt.time(8, 0))
    booking = services.book(user=user, slot_id=make_slot(offering=offering, start=daytime() + dt.timedelta(days=10)).pk)
    closing = services.book(user=user, slot_id=make_slot(offering=offering, start=daytime() + dt.timedelta(days=11)).pk)
    OutboxItem.objects.filter(kind="notify.event", payload__event="confirmed").update(next_attempt_at=late)
    outbox.deliver_all_due(now=late)
    # The inbox does not disturb: written at once. The text message waits for the morning.
    assert InboxMessage.objects.filter(booking=booking, event="confirmed").exists()
    sms = OutboxItem.objects.get(kind="notify.sms", payload__booking_id=booking.pk)
    assert (sms.status, sms.next_attempt_at, sms.attempts, sms.last_error) == (
        OutboxStatus.PENDING,
        morning,
        0,
        "quiet hours",
    )
    # Closing a slot is urgent: it goes out at night.
    services.cancel_for_closure(slot_id=closing.slot_id, by=None, reason="暴雨")
    OutboxItem.objects.filter(kind="notify.event", payload__event="slot_closed").update(next_attempt_at=late)
    outbox.deliver_all_due(now=late + dt.timedelta(minutes=1))
    urgent = OutboxItem.objects.get(kind="notify.sms", payload__event="slot_closed")
    assert urgent.status == OutboxStatus.DELIVERED
    outbox.deliver_all_due(now=morning)
    sms.refresh_from_db()
    assert sms.status == OutboxStatus.DELIVERED and sms.attempts == 1


def test_stale_changes_go_to_the_inbox_only_and_no_reminder_after_the_start(settings) -> None:
    settings.NOTIFY_STALE_HOURS = 24
    user = make_user(PHONE)
    booking = services.book(user=user, slot_id=make_slot(start=later()).pk)
    outbox.deliver_all_due(now=timeutil.now() + dt.timedelta(hours=30))  # the workers were down a day
    assert InboxMessage.objects.filter(booking=booking, event="confirmed").exists()
    assert not OutboxItem.objects.filter(kind="notify.sms").exists()
    # A reminder whose time passed while the workers were down is not sent after the start.
    outbox.deliver_all_due(now=later() + dt.timedelta(minutes=1))
    reminders = OutboxItem.objects.filter(kind="notify.event", payload__event="reminder")
    assert set(reminders.values_list("status", "last_error")) == {(OutboxStatus.SKIPPED, "the booking has started")}


def test_aliyun_refusing_the_number_is_final_and_throttling_is_retried(settings) -> None:
    answers = iter([{"Code": "isv.BUSINESS_LIMIT_CONTROL"}, {"Code": "isv.MOBILE_NUMBER_ILLEGAL"}])

    def respond(request: Received) -> tuple[int, dict]:
        return 200, {"Message": "x", **next(answers)}

    user = make_user(PHONE)
    with fake_http(respond) as aliyun:
        settings.SMS_BACKEND = "aliyun"
        settings.ALIYUN_SMS_ACCESS_KEY_ID, settings.ALIYUN_SMS_ACCESS_KEY_SECRET = "ak", "s"
        settings.ALIYUN_SMS_SIGN_NAME, settings.ALIYUN_SMS_ENDPOINT = "预约", aliyun.url + "/"
        services.book(user=user, slot_id=make_slot(start=later()).pk)
        outbox.deliver_all_due(now=daytime())
        item = OutboxItem.objects.get(kind="notify.sms")
        assert item.status == OutboxStatus.FAILED and "rate_limited" in item.last_error
        outbox.deliver_all_due(now=item.next_attempt_at)
    item.refresh_from_db()
    assert (item.status, item.attempts) == (OutboxStatus.DEAD, 2) and len(aliyun.received) == 2
