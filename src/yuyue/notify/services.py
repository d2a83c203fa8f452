"""What people and merchants change about notifications: inbox, channel choices, templates,
reminder times, WeChat consents. Each a plain function; bad input is a DomainError and changes nothing."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from yuyue.accounts.models import EndUser
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.notify import outbox
from yuyue.notify.models import (
    InboxMessage,
    MessageTemplate,
    NotificationPreference,
    OfferingReminders,
    SubscribeConsent,
)
from yuyue.notify.templates import DEFAULTS
from yuyue.tenants.models import Merchant

MAX_REMINDERS = 4
MAX_REMINDER_HOURS = 24 * 14


# --- the person's side ---------------------------------------------------------------------------


def inbox(user: EndUser) -> QuerySet[InboxMessage]:
    return InboxMessage.objects.filter(user=user).select_related("booking", "merchant")


def unread_count(user: EndUser) -> int:
    return InboxMessage.objects.filter(user=user, read_at__isnull=True).count()


def mark_all_read(user: EndUser) -> int:
    return InboxMessage.objects.filter(user=user, read_at__isnull=True).update(read_at=timeutil.now())


def preferences_of(user: EndUser) -> NotificationPreference:
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(user=user)


def save_preferences(
    *, user: EndUser, inbox: bool, sms: bool, email: bool, wechat: bool, email_address: str = ""
) -> NotificationPreference:
    """Store the channels a person wants; email needs a valid address."""
    address = (email_address or "").strip()
    if address:
        try:
            validate_email(address)
        except ValidationError:
            raise DomainError("invalid", fields={"email_address": _("Please enter a valid email address.")}) from None
    if email and not address:
        raise DomainError("invalid", fields={"email_address": _("Email needs an address.")})
    prefs, _created = NotificationPreference.objects.update_or_create(
        user=user,
        defaults={"inbox": inbox, "sms": sms, "email": email, "wechat": wechat, "email_address": address},
    )
    return prefs


def record_consents(*, user: EndUser, template_ids: list[str]) -> int:
    """The mini-program reports the templates the user accepted (wx.requestSubscribeMessage): one message each."""
    clean = [t.strip()[:64] for t in template_ids if t and t.strip()]
    SubscribeConsent.objects.bulk_create([SubscribeConsent(user=user, template_id=t) for t in clean])
    return len(clean)


# --- the merchant's side -------------------------------------------------------------------------


def templates_of(merchant: Merchant) -> list[dict[str, Any]]:
    """Every event with the merchant's wording, or the default (marked as such)."""
    own = {t.event: t for t in MessageTemplate.objects.filter(merchant=merchant)}
    rows = []
    for event, default in DEFAULTS.items():
        mine = own.get(event)
        rows.append(
            {
                "event": event,
                "label": default.label,
                "title": mine.title if mine else default.title,
                "body": mine.body if mine else default.body,
                "sms_template_code": mine.sms_template_code if mine else "",
                "wechat_template_id": mine.wechat_template_id if mine else "",
                "customised": mine is not None,
            }
        )
    return rows


def save_template(
    *,
    merchant: Merchant,
    event: str,
    title: str,
    body: str,
    sms_template_code: str = "",
    wechat_template_id: str = "",
) -> MessageTemplate:
    if event not in DEFAULTS:
        raise DomainError("not_found")
    title, body = (title or "").strip(), (body or "").strip()
    errors: dict[str, Any] = {}
    if not title or len(title) > 100:
        errors["title"] = _("A title of 1 to 100 characters.")
    if not body or len(body) > 1000:
        errors["body"] = _("A message of 1 to 1000 characters.")
    if len(sms_template_code.strip()) > 40 or len(wechat_template_id.strip()) > 64:
        errors["sms_template_code"] = _("Template codes are at most 40 (SMS) and 64 (WeChat) characters.")
    if errors:
        raise DomainError("invalid", fields=errors)
    template, _created = MessageTemplate.objects.update_or_create(
        merchant=merchant,
        event=event,
        defaults={
            "title": title,
            "body": body,
            "sms_template_code": sms_template_code.strip(),
            "wechat_template_id": wechat_template_id.strip(),
        },
    )
    return template


def reset_template(*, merchant: Merchant, event: str) -> None:
    MessageTemplate.objects.filter(merchant=merchant, event=event).delete()


def parse_hours(raw: str) -> list[float]:
    """ "24, 2" → [24.0, 2.0]; empty → [] (no reminders)."""
    try:
        hours = sorted(
            {float(part) for part in (raw or "").replace("，", ",").split(",") if part.strip()}, reverse=True
        )
    except ValueError:
        raise DomainError("invalid", fields={"hours": _("Hours as numbers separated by commas, e.g. 24, 2.")}) from None
    if len(hours) > MAX_REMINDERS or any(not 0 < h <= MAX_REMINDER_HOURS for h in hours):
        raise DomainError(
            "invalid",
            fields={
                "hours": _("At most %(n)d reminders, each within 14 days before the start.") % {"n": MAX_REMINDERS}
            },
        )
    return hours


def save_reminder_hours(*, offering: Offering, raw: str) -> list[float]:
    """New lead times apply to bookings confirmed from now on."""
    hours = parse_hours(raw)
    with transaction.atomic():
        OfferingReminders.objects.update_or_create(offering=offering, defaults={"hours": hours})
    return hours


def delivery_log(merchant: Merchant, status: str = "") -> QuerySet[outbox.OutboxItem]:
    rows = outbox.OutboxItem.objects.filter(merchant=merchant, kind__startswith="notify.")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-id")
