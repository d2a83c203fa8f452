"""Readable names for the codes the console shows: booking event actions and audit actions."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy

# BookingEvent.action, as written by booking/services.py.
EVENT_ACTIONS: dict[str, Promise] = {
    "book": pgettext_lazy("booking event", "booked"),
    "promote": pgettext_lazy("booking event", "booked from the waitlist"),
    "confirm": pgettext_lazy("booking event", "confirmed"),
    "approve": pgettext_lazy("booking event", "approved"),
    "reject": pgettext_lazy("booking event", "rejected"),
    "cancel": pgettext_lazy("booking event", "cancelled"),
    "expire": pgettext_lazy("booking event", "hold expired"),
    "reschedule": pgettext_lazy("booking event", "moved to another time"),
    "check_in": pgettext_lazy("booking event", "checked in"),
    "no_show": pgettext_lazy("booking event", "marked no-show"),
    "complete": pgettext_lazy("booking event", "completed"),
    "close": pgettext_lazy("booking event", "time slot closed"),
    "refund": pgettext_lazy("booking event", "refunded"),
}

# AuditEntry.action, as written by the console (set-up pages add their own; unknown codes show as is).
AUDIT_ACTIONS: dict[str, Promise] = {
    "sign_in": pgettext_lazy("audit action", "signed in"),
    "totp_on": pgettext_lazy("audit action", "turned on two-step sign-in"),
    "totp_off": pgettext_lazy("audit action", "turned off two-step sign-in"),
    "booking.create": pgettext_lazy("audit action", "phone booking"),
    "booking.cancel": pgettext_lazy("audit action", "cancelled a booking"),
    "booking.no_show": pgettext_lazy("audit action", "marked a no-show"),
    "booking.move": pgettext_lazy("audit action", "moved a booking"),
    "booking.approve": pgettext_lazy("audit action", "approved a booking"),
    "booking.reject": pgettext_lazy("audit action", "rejected a booking"),
    "booking.check_in": pgettext_lazy("audit action", "checked in"),
    "booking.export": pgettext_lazy("audit action", "exported bookings"),
    "customer.note": pgettext_lazy("audit action", "added a customer note"),
    "customer.ban": pgettext_lazy("audit action", "banned a customer"),
    "customer.lift_ban": pgettext_lazy("audit action", "lifted a ban"),
    "review.hide": pgettext_lazy("audit action", "hid a review"),
    "review.show": pgettext_lazy("audit action", "showed a review again"),
}


def event_label(action: str) -> str:
    return str(EVENT_ACTIONS.get(action, action))


def audit_label(action: str) -> str:
    return str(AUDIT_ACTIONS.get(action, action))
