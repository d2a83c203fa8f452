"""What each event says: Chinese defaults, merchants' own wording, placeholders and quiet hours."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil

# Events that disturb nobody at night are held during quiet hours; these are not.
URGENT_EVENTS = frozenset({"slot_closed", "cancelled_by_merchant"})


@dataclass(frozen=True)
class DefaultTemplate:
    label: object  # lazy translated name shown in the console
    title: str
    body: str
    wechat_fields: dict[str, str] = field(default_factory=dict)


# Placeholders: {merchant} {offering} {time} {code} {reason} {refund} {amount} {until} {status} {hours}
DEFAULTS: dict[str, DefaultTemplate] = {
    "confirmed": DefaultTemplate(
        _("Booking confirmed"),
        "预约成功",
        "您已成功预约{merchant}的{offering}，时间：{time}，预约号 {code}。",
        {"thing1": "offering", "time2": "time", "character_string3": "code", "thing4": "merchant"},
    ),
    "reminder": DefaultTemplate(
        _("Reminder before the start"),
        "预约提醒",
        "提醒：您在{merchant}预约的{offering}将于{time}开始，请准时到达。预约号 {code}。",
        {"thing1": "offering", "time2": "time", "thing3": "merchant", "character_string4": "code"},
    ),
    "waitlist_promoted": DefaultTemplate(
        _("Waitlist promoted"),
        "候补成功",
        "您候补的{offering}（{time}）已为您预约成功，预约号 {code}。",
        {"thing1": "offering", "time2": "time", "phrase3": "status", "character_string4": "code"},
    ),
    "cancelled": DefaultTemplate(
        _("Cancelled by the customer"),
        "预约已取消",
        "您预约的{offering}（{time}）已取消。{refund}",
        {"thing1": "offering", "time2": "time", "phrase3": "status", "thing4": "refund"},
    ),
    "cancelled_by_merchant": DefaultTemplate(
        _("Cancelled by the merchant"),
        "预约被商家取消",
        "很抱歉，{merchant}取消了您预约的{offering}（{time}）。原因：{reason}。{refund}",
        {"thing1": "offering", "time2": "time", "thing3": "reason", "thing4": "refund"},
    ),
    "slot_closed": DefaultTemplate(
        _("Time slot closed by the merchant"),
        "场次已关闭",
        "很抱歉，{merchant}关闭了{offering}（{time}）的场次，您的预约已取消。原因：{reason}。{refund}",
        {"thing1": "offering", "time2": "time", "thing3": "reason", "thing4": "refund"},
    ),
    "refunded": DefaultTemplate(
        _("Refund completed"),
        "退款已完成",
        "您预约的{offering}（{time}）的退款 {amount} 已原路退回，预约号 {code}。",
        {"thing1": "offering", "amount2": "amount", "phrase3": "status", "character_string4": "code"},
    ),
    "rescheduled": DefaultTemplate(
        _("Rescheduled"),
        "预约已改期",
        "您预约的{offering}已改到{time}，预约号 {code}。",
        {"thing1": "offering", "time2": "time", "character_string3": "code"},
    ),
    "review_request": DefaultTemplate(
        _("Review request after the visit"),
        "邀请您评价",
        "感谢您参加{merchant}的{offering}，欢迎为本次体验打分评价。",
        {"thing1": "offering", "thing2": "merchant"},
    ),
    "ban_applied": DefaultTemplate(
        _("No-show ban applied"),
        "预约受限",
        "由于{reason}，您在{merchant}的预约暂停至{until}。",
        {"thing1": "merchant", "thing2": "reason", "date3": "until"},
    ),
}
EVENTS = tuple(DEFAULTS)

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(text: str, context: dict[str, str]) -> str:
    """Fill {placeholders}; unknown ones and stray braces stay as written (a merchant's typo never fails)."""
    return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), text)


def sms_template_code(event: str) -> str:
    """The Aliyun template code used when the merchant set none (operators register these)."""
    return f"SMS_YUYUE_{event.upper()}"


def format_time(moment: dt.datetime) -> str:
    local = moment.astimezone(timeutil.local_zone())
    return f"{local:%Y-%m-%d %H:%M}"


# --- quiet hours -----------------------------------------------------------------------------------


def quiet_hours() -> tuple[dt.time, dt.time] | None:
    spec = (getattr(settings, "NOTIFY_QUIET_HOURS", "") or "").strip()
    if not spec:
        return None
    start, _sep, end = spec.partition("-")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


def quiet_until(now: dt.datetime) -> dt.datetime | None:
    """When the quiet hours around ``now`` end, or None outside them (local time; may span midnight)."""
    hours = quiet_hours()
    if hours is None:
        return None
    start, end = hours
    local = now.astimezone(timeutil.local_zone())
    t = local.time()
    inside = start <= t < end if start <= end else (t >= start or t < end)  # may span midnight
    if not inside:
        return None
    day = local.date() if t < end else local.date() + dt.timedelta(days=1)
    return timeutil.local_datetime(day, end)
