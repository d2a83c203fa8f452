"""Delivering notifications: one event row fans out to the channels the person chose.

``notify.event`` (written by events.py in the change's transaction) is rendered with the
merchant's template when it is due: the inbox message is written at once and one row per push
channel (``notify.sms``, ``notify.email``, ``notify.wechat``) is enqueued, all in one transaction
and keyed by the event row, so a redelivered event changes nothing. Each channel row then retries
on its own; push channels hold non-urgent messages during quiet hours.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from yuyue.accounts.models import EndUser
from yuyue.booking.models import Booking, Status
from yuyue.core import money, timeutil
from yuyue.core.errors import DomainError
from yuyue.integrations import sms, wechat_subscribe
from yuyue.notify import outbox
from yuyue.notify.events import EVENT_KIND
from yuyue.notify.models import InboxMessage, MessageTemplate, NotificationPreference, SubscribeConsent
from yuyue.notify.outbox import Defer, OutboxItem, Permanent, Skip, handler
from yuyue.notify.templates import DEFAULTS, URGENT_EVENTS, format_time, quiet_until, render, sms_template_code
from yuyue.tenants.models import Merchant

log = logging.getLogger("yuyue.notify")

SMS_PARAM_LIMIT = 35

STATUS_PHRASES = {
    "confirmed": "预约成功",
    "reminder": "即将开始",
    "waitlist_promoted": "候补成功",
    "cancelled": "已取消",
    "cancelled_by_merchant": "已取消",
    "slot_closed": "已取消",
    "refunded": "已退款",
    "rescheduled": "已改期",
    "review_request": "待评价",
    "ban_applied": "暂停预约",
}


def preferences(user_id: int) -> NotificationPreference:
    """The person's choices (defaults while they never saved any)."""
    found = NotificationPreference.objects.filter(user_id=user_id).first()
    return found or NotificationPreference(user_id=user_id)


def template_for(merchant_id: int | None, event: str) -> dict[str, Any]:
    default = DEFAULTS[event]
    own = MessageTemplate.objects.filter(merchant_id=merchant_id, event=event).first() if merchant_id else None
    return {
        "title": own.title if own else default.title,
        "body": own.body if own else default.body,
        "sms_template_code": (own.sms_template_code if own else "") or sms_template_code(event),
        "wechat_template_id": (own.wechat_template_id if own else "")
        or settings.WECHAT_SUBSCRIBE_TEMPLATES.get(event, "").strip(),
        "wechat_fields": (own.wechat_fields if own else None) or default.wechat_fields,
    }


def context_for(item: OutboxItem, booking: Booking | None) -> dict[str, str]:
    data = item.payload
    event = data["event"]
    refund = int(data.get("refund_fen") or 0)
    merchant = booking.merchant if booking else None
    if merchant is None and item.merchant_id is not None:
        merchant = Merchant.objects.filter(pk=item.merchant_id).first()
    context = {
        "merchant": merchant.name if merchant else "",
        "reason": str(data.get("reason") or "") or "无",
        "refund": (f"将原路退还 {money.format_yuan(refund)}。" if refund else "")
        + ("所用课时已退回您的会员卡。" if data.get("credit_back") else ""),
        "amount": money.format_yuan(refund),
        "status": STATUS_PHRASES.get(event, ""),
        "hours": f"{float(data.get('hours') or 0):g}",
        "until": "",
        "offering": "",
        "time": "",
        "code": "",
    }
    if data.get("until"):
        context["until"] = timeutil.local_date(dt.datetime.fromisoformat(data["until"])).isoformat()
    if booking is not None:
        context.update(offering=booking.offering.title, time=format_time(booking.slot.start), code=booking.code)
    return context


def _still_wanted(item: OutboxItem, booking: Booking | None) -> None:
    """A reminder goes only to a booking that is still confirmed for the slot it was made for."""
    if item.payload.get("event") != "reminder":
        return
    if booking is None or booking.status != Status.CONFIRMED:
        raise Skip(f"booking is {booking.status if booking else 'gone'}")
    if booking.slot_id != item.payload.get("slot_id"):
        raise Skip("booking was moved to another time")
    if booking.slot.start <= outbox.now():
        raise Skip("the booking has started")


def is_stale(item: OutboxItem) -> bool:
    """A message about a change long past (a backlog after an outage, imported history) goes to the
    inbox only: nobody wants a text message about last week."""
    at = item.payload.get("at")
    if not at:
        return False
    return dt.datetime.fromisoformat(at) < outbox.now() - dt.timedelta(hours=settings.NOTIFY_STALE_HOURS)


@handler(EVENT_KIND)
def fan_out(item: OutboxItem) -> None:
    data = item.payload
    event = data["event"]
    booking = (
        Booking.objects.select_related("offering", "slot", "merchant").filter(pk=data["booking_id"]).first()
        if data.get("booking_id")
        else None
    )
    _still_wanted(item, booking)
    user = EndUser.objects.filter(pk=data["user_id"]).first()
    if user is None:
        raise Skip("no such user")
    template = template_for(item.merchant_id, event)
    context = context_for(item, booking)
    title, body = render(template["title"], context), render(template["body"], context)
    prefs = preferences(user.pk)
    push = not is_stale(item)
    urgent = event in URGENT_EVENTS or (
        event == "reminder" and booking is not None and _starts_soon(booking.slot.start)
    )
    message = {
        "event": event,
        "user_id": user.pk,
        "booking_id": booking.pk if booking else None,
        "booking_code": booking.code if booking else "",
        "title": title,
        "body": body,
        "urgent": urgent,
    }
    with transaction.atomic():
        if prefs.inbox:
            InboxMessage.objects.get_or_create(
                key=f"inbox:{item.dedupe_id}",
                defaults={
                    "user": user,
                    "merchant_id": item.merchant_id,
                    "booking": booking,
                    "event": event,
                    "title": title[:100],
                    "body": body,
                },
            )
        if push and prefs.sms and user.phone:
            outbox.enqueue(
                "notify.sms",
                {**message, "template_code": template["sms_template_code"], "params": context},
                merchant_id=item.merchant_id,
                due_at=outbox.now(),
                key=f"{item.dedupe_id}:sms",
            )
        if push and prefs.email and prefs.email_address:
            outbox.enqueue(
                "notify.email",
                {**message, "to": prefs.email_address},
                merchant_id=item.merchant_id,
                due_at=outbox.now(),
                key=f"{item.dedupe_id}:email",
            )
        if push and prefs.wechat and user.wechat_openid and template["wechat_template_id"]:
            fields = {key: context.get(name, name) for key, name in template["wechat_fields"].items()}
            outbox.enqueue(
                "notify.wechat",
                {**message, "template_id": template["wechat_template_id"], "data": fields},
                merchant_id=item.merchant_id,
                due_at=outbox.now(),
                key=f"{item.dedupe_id}:wechat",
            )


def _starts_soon(start: dt.datetime) -> bool:
    """A reminder held until morning would come too late when the booking starts within 3 h of it."""
    until = quiet_until(outbox.now())
    return until is not None and start <= until + dt.timedelta(hours=3)


def _hold_for_quiet_hours(item: OutboxItem) -> None:
    if item.payload.get("urgent"):
        return
    until = quiet_until(outbox.now())
    if until is not None:
        raise Defer(until, "quiet hours")


@handler("notify.sms")
def send_sms(item: OutboxItem) -> None:
    _hold_for_quiet_hours(item)
    user = EndUser.objects.filter(pk=item.payload["user_id"]).first()
    if user is None or not user.phone:
        raise Permanent("no phone number")
    # Aliyun refuses variables longer than 35 characters in a notification template.
    params = {k: _cut(str(v), SMS_PARAM_LIMIT) for k, v in item.payload["params"].items() if v}
    try:
        sms.backend().send(user.phone, item.payload["template_code"], params)
    except DomainError as exc:
        if exc.code == "invalid":  # a number Aliyun will never send to
            raise Permanent(exc.message) from None
        raise  # throttled or unavailable: try again later


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@handler("notify.email")
def send_email(item: OutboxItem) -> None:
    _hold_for_quiet_hours(item)
    data = item.payload
    text = f"{data['body']}\n\n{item.dedupe_id}"
    html_body = render_to_string("notify/email.html", {"title": data["title"], "body": data["body"]})
    mail = EmailMultiAlternatives(subject=data["title"], body=text, to=[data["to"]])
    mail.attach_alternative(html_body, "text/html")
    mail.extra_headers["X-Yuyue-Message-Id"] = item.dedupe_id
    try:
        mail.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise Permanent(f"address refused: {exc.recipients}") from None


@handler("notify.wechat")
def send_wechat(item: OutboxItem) -> None:
    _hold_for_quiet_hours(item)
    data = item.payload
    client = wechat_subscribe.client()
    if client is None:
        raise Skip("no WeChat mini-program configured")
    user = EndUser.objects.filter(pk=data["user_id"]).first()
    if user is None or not user.wechat_openid:
        raise Skip("not a WeChat user")
    consent = use_consent(user.pk, data["template_id"], item.dedupe_id)
    if consent is None:
        raise Skip("no subscription consent left for this template")
    message = wechat_subscribe.SubscribeMessage(
        openid=user.wechat_openid,
        template_id=data["template_id"],
        data=data["data"],
        page=f"pages/booking/detail?code={data['booking_code']}" if data.get("booking_code") else "",
    )
    try:
        client.send(message)
    except wechat_subscribe.WeChatSendError as exc:
        if exc.permanent:
            raise Permanent(str(exc)) from None
        # Not delivered: the consent stays ours for the retry (use_consent finds it by dedupe id).
        raise


def use_consent(user_id: int, template_id: str, dedupe_id: str) -> SubscribeConsent | None:
    """Spend one consent on this message; a retry of the same message reuses the one it spent."""
    mine = SubscribeConsent.objects.filter(user_id=user_id, template_id=template_id, used_by=dedupe_id).first()
    if mine is not None:
        return mine
    for consent_id in (
        SubscribeConsent.objects.filter(user_id=user_id, template_id=template_id, used_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:5]
    ):
        # Conditional UPDATE: two workers can never spend the same consent.
        if SubscribeConsent.objects.filter(pk=consent_id, used_at__isnull=True).update(
            used_at=timeutil.now(), used_by=dedupe_id
        ):
            return SubscribeConsent.objects.get(pk=consent_id)
    return None
