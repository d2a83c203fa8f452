"""Insights API: merchant statistics (/merchant/stats) and recommendations for users (/recommendations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.security import HttpBearer

from yuyue.accounts.models import EndUser
from yuyue.catalog.api import OfferingOut, SlotInfo, offering_out, slot_out
from yuyue.console.api import StaffToken, staff_desk
from yuyue.core.apischema import AUTH_ERRORS, Text, error_responses, user_auth
from yuyue.insights import services as recommendations
from yuyue.insights import stats

# Mounted at /merchant (staff token), like the other merchant endpoints.
merchant_router = Router(tags=["merchant"])

# Mounted at the API root (user token).
router = Router(tags=["recommendations"])


# --- Recommendations ---------------------------------------------------------------------------


class _Visitor:
    """``request.auth`` of a call without a token: recommendations for visitors are the popular ones."""


class OptionalUserAuth(HttpBearer):
    """A customer's bearer token if one is sent (a bad one is refused with 401); without one, a visitor."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.headers.get(self.header):
            return _Visitor()
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return user_auth.authenticate(request, token)


class RecommendationOut(Schema):
    offering: OfferingOut
    slot: SlotInfo | None = Field(..., description="the upcoming slot that suits the customer best, with places left")
    reason: str = Field(..., description="why, in one short sentence (Chinese by default)")
    because: str = Field(..., description="again (booked it before), together (co-booked) or popular")


class RecommendationFilters(Schema):
    limit: int = Field(5, ge=1, le=20)
    city: Text | None = Field(None, max_length=50, description="for visitors and new customers: popular in this city")


@router.get(
    "/recommendations",
    auth=OptionalUserAuth(),
    response={200: list[RecommendationOut], **error_responses(*AUTH_ERRORS)},
    summary="Offerings and upcoming slots the customer is likely to book, each with a reason",
    description="With a customer token: from what they and similar customers book, at their usual times. "
    "Without a token: what is popular lately (in `city` when given).",
)
def list_recommendations(request: HttpRequest, filters: Query[RecommendationFilters]) -> list[dict]:
    user = request.auth if isinstance(request.auth, EndUser) else None
    found = recommendations.recommend(user=user, limit=filters.limit, city=(filters.city or "").strip())
    return [
        {
            "offering": offering_out(r.offering),
            "slot": slot_out(r.slot) if r.slot is not None else None,
            "reason": r.reason,
            "because": r.because,
        }
        for r in found
    ]


# --- Merchant statistics -----------------------------------------------------------------------


class StatsFilters(Schema):
    date_from: str = Field("", description="first visit date, YYYY-MM-DD (default: 89 days before date_to)")
    date_to: str = Field("", description="last visit date, YYYY-MM-DD (default: today)")
    branch: str = Field("", description="one branch's id (default: every branch the staff member sees)")
    day: str = Field("", description="the day whose slots `fill_by_slot` lists (default: today)")


class StatsBranch(Schema):
    id: int
    name: str


class StatsPeriod(Schema):
    date_from: dt.date
    date_to: dt.date
    day: dt.date
    branch: StatsBranch | None


class StatsCounts(Schema):
    bookings: int = Field(..., description="made for the period, except expired holds and rejected requests")
    cancelled: int
    no_show: int
    attended: int = Field(..., description="checked in or completed")
    cancellation_rate: float | None = Field(..., description="cancelled / bookings (0–1)")
    no_show_rate: float | None = Field(..., description="no_show / (no_show + attended) (0–1)")


class StatsSummary(StatsCounts):
    seats: int = Field(..., description="seats held by bookings that are not cancelled")
    capacity: int = Field(..., description="capacity of the open slots of the period")
    reserved: int
    fill_rate: float | None = Field(..., description="reserved / capacity (0–1)")


class StatsHeatCell(Schema):
    weekday: int = Field(..., description="1 = Monday … 7 = Sunday, Asia/Shanghai")
    hour: int = Field(..., description="0–23, Asia/Shanghai")
    seats: int = Field(..., description="seats (people) booked in the slots starting then")


class StatsHeatmap(Schema):
    weekdays: list[str]
    cells: list[StatsHeatCell]


class StatsWeek(StatsCounts):
    week_start: dt.date = Field(..., description="the Monday")


class StatsFillRow(Schema):
    id: int | None = Field(..., description="None: offerings not tied to a branch")
    name: str
    branch: str | None = None
    type: str | None = None
    slots: int
    capacity: int
    reserved: int
    fill_rate: float | None


class StatsSlotFillRow(Schema):
    id: int
    start: dt.datetime
    end: dt.datetime
    offering: str
    branch: str
    status: str
    capacity: int
    reserved: int
    fill_rate: float | None = Field(..., description="None for a closed slot")


class StatsTopOffering(Schema):
    id: int
    name: str
    bookings: int
    seats: int
    amount_fen: int | None = Field(..., description="booked value; None for roles that do not see money")


class StatsRatingRow(Schema):
    id: int
    name: str
    type: str
    reviews: int = Field(..., description="reviews of visits in the period")
    average: float
    overall: float | None = Field(..., description="the resource's rating over all time")


class StatsRevenueWeek(Schema):
    week_start: dt.date
    booked_fen: int
    paid_fen: int
    refund_fen: int
    net_fen: int


class StatsRevenue(Schema):
    booked_fen: int = Field(..., description="amount of confirmed bookings not cancelled, incl. paid at the venue")
    paid_fen: int = Field(..., description="paid online")
    refund_fen: int = Field(..., description="refunds recorded with cancellations and refunds")
    net_fen: int = Field(..., description="paid_fen - refund_fen")
    weekly: list[StatsRevenueWeek]


class StatsLiveRow(Schema):
    id: int | None
    name: str
    capacity: int
    booked: int
    checked_in: int = Field(..., description="seats checked in today")
    share: float | None = Field(..., description="checked_in / capacity (0–1)")
    level: str | None = Field(..., description="warning (≥ 80 %), alarm (≥ 90 %), throttle (≥ 95 %) or None")
    level_label: str


class StatsLiveView(Schema):
    date: dt.date
    total: StatsLiveRow
    by_offering: list[StatsLiveRow]
    by_branch: list[StatsLiveRow]


class StatsDashboard(Schema):
    period: StatsPeriod
    summary: StatsSummary
    heatmap: StatsHeatmap
    weekly: list[StatsWeek]
    fill_by_offering: list[StatsFillRow]
    fill_by_branch: list[StatsFillRow]
    fill_by_resource: list[StatsFillRow]
    fill_by_slot: list[StatsSlotFillRow]
    top_offerings: list[StatsTopOffering]
    ratings: list[StatsRatingRow]
    revenue: StatsRevenue | None = Field(..., description="owners and managers only; None for other roles")
    live: StatsLiveView


@merchant_router.get(
    "/stats",
    auth=StaffToken(),
    response={200: StatsDashboard, **error_responses(*AUTH_ERRORS)},
    summary="The statistics dashboard: every block in one answer",
    description="Bookings by weekday × hour, weekly trend, fill rates, cancellation and no-show rates, "
    "top offerings, coach/doctor ratings, revenue and refunds (owners and managers), and today's live view. "
    "Visits (slot start, Asia/Shanghai) from `date_from` to `date_to`; the staff member's scope applies "
    "(branches; a coach or doctor sees their own slots).",
)
def merchant_stats(request: HttpRequest, filters: Query[StatsFilters]) -> dict[str, Any]:
    desk = staff_desk(request, "stats.view")
    return stats.dashboard(stats.Scope(desk, stats.Period.parse(desk, filters.model_dump())))
