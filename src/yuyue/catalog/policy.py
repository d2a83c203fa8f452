"""Booking policies: the numbers and switches that make a kind what it is.

An offering stores only its overrides (JSON); its kind supplies the defaults (see ``kinds.py``).
The engine reads ``offering.policy`` and never asks which kind it is dealing with.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NoShowBan(BaseModel):
    """N no-shows within M days ban the account for K days at this merchant."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(3, ge=1)
    window_days: int = Field(90, ge=1)
    ban_days: int = Field(90, ge=1)


class WaitingRoom(BaseModel):
    """A daily peak window (local time): booking requests above ``admit_per_second`` wait in a queue
    and see their place instead of an error (see ``core/waitingroom.py``)."""

    model_config = ConfigDict(extra="forbid")
    starts: dt.time = Field(description="when the window opens each day, e.g. 08:00")
    minutes: int = Field(30, ge=1, le=24 * 60, description="how long the window lasts")
    admit_per_second: int = Field(50, ge=1, le=100_000, description="people let through to booking per second")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # --- when booking is possible
    opens_days_ahead: int | None = Field(30, ge=0, description="slots of day D open on day D-N")
    release_time: dt.time | None = Field(None, description="time of day at which a new day opens")
    closes_minutes_before_start: int = Field(0, ge=0)
    requires_approval: bool = False
    hold_minutes: int = Field(15, ge=1, description="how long an unpaid booking keeps its seats")
    payment: Literal["online", "on_site"] = Field(
        "online",
        description="online: paid in the app while the seats are held; on_site: paid at the venue "
        "(到店支付), the booking is confirmed at once and nothing is refunded online",
    )

    # --- who and how many
    party: Literal["people", "count"] = Field(
        "count", description="people: named attendees from 'my people'; count: just a number"
    )
    real_name: bool = Field(False, description="every attendee needs a valid resident ID")
    max_party_size: int = Field(1, ge=1)
    seats: Literal["party", "booking"] = Field(
        "party", description="party: each attendee takes a seat; booking: the booking takes one (a car)"
    )
    minor_age: int = Field(14, ge=1)
    max_minors: int | None = Field(None, ge=0, description="children per booking")
    minors_need_adult: bool = Field(False, description="a child only together with an adult in the booking")
    minors_need_guardian: bool = Field(False, description="a child needs a guardian in the same account")

    # --- limits (enforced by claim rows with unique keys)
    per_person_per_day: int | None = Field(None, ge=1, description="bookings per person (resident ID) per day")
    limit_scope: Literal["offering", "group", "merchant"] = Field(
        "offering", description="where the per-day limit counts: this offering, its group (department), the merchant"
    )
    unique_answers: list[str] = Field(
        default_factory=list, description="form answers (e.g. phone) that may sign up only once"
    )
    unique_answers_per: Literal["offering", "slot"] = Field(
        "offering", description="once per offering (a one-off event) or per session (a weekly club)"
    )

    # --- changing one's mind
    cancel_deadline_hours: float = Field(0, ge=0, description="free cancellation until N hours before start")
    late_cancel_points: int = Field(0, ge=0, description="points a cancellation after the deadline costs")
    late_cancel_refund_percent: int = Field(100, ge=0, le=100, description="share refunded after the deadline")
    max_reschedules: int = Field(1, ge=0)

    # --- the day itself
    checkin_opens_minutes_before: int = Field(120, ge=0)
    dynamic_voucher: bool = Field(
        False, description="the voucher QR changes every 30 s and the gate admits only a current one (no screenshots)"
    )
    holiday_mode: Literal["normal", "closed", "factor"] = "normal"
    holiday_capacity_factor: float = Field(1.0, gt=0, le=1)
    no_show_ban: NoShowBan | None = None

    # --- points and minimum attendance
    completion_points: int = Field(0, ge=0, description="points earned when a booking is completed")
    no_show_points: int = Field(0, ge=0, description="points a no-show costs")
    points_may_go_negative: bool = Field(
        False, description="deductions may take the balance below zero; otherwise a deduction is capped at the balance"
    )
    min_attendance: int | None = Field(
        None, ge=1, description="fewer seats booked than this at the check time cancel the slot; empty: off"
    )
    min_attendance_check_hours: float = Field(3, ge=0, description="when minimum attendance is checked: hours before")

    # --- holiday rush
    waiting_room: WaitingRoom | None = Field(
        None, description="a daily peak window in which booking requests queue above a rate; empty: off"
    )

    def merged(self, overrides: dict) -> Policy:
        """This policy with an offering's overrides applied (validated)."""
        return Policy.model_validate({**self.model_dump(), **(overrides or {})})


class FormField(BaseModel):
    """One question on a booking form."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=60)
    type: Literal["text", "choice", "number", "date", "phone", "id_number"] = "text"
    required: bool = False
    choices: list[str] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    max_length: int = 200
