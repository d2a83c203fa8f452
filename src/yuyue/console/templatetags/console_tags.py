"""Template filters for console pages."""

from __future__ import annotations

from django import template

from yuyue.booking.models import Status
from yuyue.console import labels
from yuyue.core import money

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    """Integer fen as money: 12345 → ¥123.45."""
    return money.format_yuan(fen or 0)


@register.filter
def event_label(action: str) -> str:
    """A booking event's action in words: check_in → 核销."""
    return labels.event_label(action)


@register.filter
def audit_label(action: str) -> str:
    """An audit action in words: booking.cancel → 取消预约."""
    return labels.audit_label(action)


@register.filter
def status_label(status: str) -> str:
    """A booking status in words: confirmed → 已确认; empty stays empty."""
    return str(dict(Status.choices).get(status, status)) if status else ""
