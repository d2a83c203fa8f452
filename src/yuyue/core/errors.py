"""The domain errors every front door shows the same way.

One table of codes, HTTP statuses and translated default messages (as API.md lists them), so the
API, the H5 pages and the console never invent their own wording.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

ERRORS: dict[str, tuple[int, Promise]] = {
    "slot_full": (409, _("This time slot is fully booked.")),
    "duplicate": (409, _("This person already has a booking for it.")),
    "limit_reached": (409, _("The booking limit for this person has been reached.")),
    "conflict": (409, _("The resource is already booked at that time.")),
    "too_late": (409, _("It is past the deadline for this.")),
    "not_open": (409, _("Booking for this time has not opened yet.")),
    "banned": (403, _("You cannot book here at the moment.")),
    "invalid": (422, _("Please check the highlighted fields.")),
    "not_found": (404, _("Not found.")),
    "unauthorized": (401, _("Please sign in.")),
    "forbidden": (403, _("You are not allowed to do this.")),
    "rate_limited": (429, _("Too many requests, please try again shortly.")),
    "payment_required": (402, _("Payment is required.")),
    "not_allowed": (409, _("This is not possible in the booking's current state.")),
    "unavailable": (503, _("A service we depend on did not answer; please try again shortly.")),
}


class DomainError(Exception):
    """A refusal the user can understand: a code clients branch on, a message, field errors."""

    def __init__(
        self,
        code: str,
        message: str | Promise | None = None,
        *,
        fields: dict[str, Any] | None = None,
        **details: Any,
    ) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.status = ERRORS[code][0]
        self._message = message if message is not None else ERRORS[code][1]
        self.fields = fields or {}
        self.details = details
        super().__init__(f"{code}: {self._message}")

    @property
    def message(self) -> str:
        return str(self._message)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "fields": {k: str(v) for k, v in self.fields.items()},
        }
        body.update({k: str(v) for k, v in self.details.items()})
        return {"error": body}


def invalid(**fields: str | Promise) -> DomainError:
    """Shorthand for a 422 with per-field messages."""
    return DomainError("invalid", fields=fields)
