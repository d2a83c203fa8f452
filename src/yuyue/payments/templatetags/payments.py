"""Template tags for the booking pages: what a booking's customer paid and gets back."""

from __future__ import annotations

from django import template

from yuyue.booking.models import Booking
from yuyue.payments import selectors
from yuyue.payments.providers import registry

register = template.Library()


@register.simple_tag
def booking_money(booking: Booking) -> selectors.Money:
    """``{% booking_money booking as money %}``: its payments and refunds."""
    return selectors.money_of(booking)


@register.simple_tag
def payment_methods() -> list[str]:
    """The providers this server offers, in order (the first is the default)."""
    return registry.available()
