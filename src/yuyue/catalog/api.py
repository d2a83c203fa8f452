"""Catalogue endpoints of the JSON API: offerings, their details and their slots (no sign-in needed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema

from yuyue.booking.models import Review
from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.core.apischema import DbId, Offset, Text, error_responses
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot
from yuyue.scheduling.selectors import slots_for

router = Router(tags=["catalogue"])

MAX_SLOT_DAYS = 62
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


# --- Schemas ------------------------------------------------------------------------------------


class MerchantRef(Schema):
    id: int
    name: str


class BranchRef(Schema):
    id: int
    name: str
    address: str
    city: str = ""


class OfferingOut(Schema):
    id: int
    kind: str
    kind_label: str
    title: str
    merchant: MerchantRef
    branch: BranchRef | None
    price_fen: int
    rating: float | None
    requires_real_name: bool


class OfferingList(Schema):
    items: list[OfferingOut]
    count: int


class FormFieldOut(Schema):
    key: str
    label: str
    type: str
    required: bool
    choices: list[str]


class PolicyOut(Schema):
    cancel_deadline_hours: float = Field(..., description="free cancellation until this many hours before start")
    late_cancel_points: int = Field(..., description="points a later cancellation costs")
    late_cancel_refund_percent: int
    max_reschedules: int
    opens_days_ahead: int | None
    release_time: str | None = Field(..., description="local time of day at which a new day opens, e.g. 20:00")
    closes_minutes_before_start: int
    requires_approval: bool
    party: str = Field(..., description="people: choose from my people; count: a number (party_size)")
    max_party_size: int
    real_name: bool
    minors_need_guardian: bool
    minors_need_adult: bool


class ResourceOut(Schema):
    id: int
    type: str
    name: str
    title: str
    bio: str
    rating: float | None


class OfferingReview(Schema):
    rating: int
    text: str
    created_at: dt.datetime


class OfferingDetail(OfferingOut):
    description: str
    form: list[FormFieldOut]
    policy: PolicyOut
    resources: list[ResourceOut]
    reviews: list[OfferingReview] = Field(..., description="the latest visible reviews")


class ResourceRef(Schema):
    id: int
    name: str


class SlotInfo(Schema):
    id: int
    start: dt.datetime
    end: dt.datetime
    capacity: int
    remaining: int
    price_fen: int
    resource: ResourceRef | None


class OfferingFilters(Schema):
    kind: Text | None = Field(
        None, max_length=20, description="activity, vehicle, course, exhibition, scenic or clinic"
    )
    merchant: DbId | None = Field(None, description="merchant id")
    q: Text | None = Field(None, max_length=100, description="words in the title, description or merchant name")
    limit: int = Field(50, ge=1, le=100)
    offset: Offset = 0


class SlotFilters(Schema):
    date_from: dt.date | None = Field(None, description="first local day (default today)")
    date_to: dt.date | None = Field(None, description="last local day, included (default 6 days later)")


# --- Shaping ------------------------------------------------------------------------------------


def _rating(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def offering_out(offering: Offering) -> dict:
    branch = offering.branch
    return {
        "id": offering.pk,
        "kind": offering.kind,
        "kind_label": str(KINDS[offering.kind].label) if offering.kind in KINDS else offering.kind,
        "title": offering.title,
        "merchant": {"id": offering.merchant_id, "name": offering.merchant.name},
        "branch": {"id": branch.pk, "name": branch.name, "address": branch.address, "city": branch.city}
        if branch
        else None,
        "price_fen": offering.price_fen,
        "rating": _rating(offering.rating),
        "requires_real_name": offering.requires_real_name,
    }


def offering_detail(offering: Offering) -> dict:
    policy = offering.policy
    reviews = Review.objects.filter(offering=offering, is_hidden=False).order_by("-created_at")[:5]
    return {
        **offering_out(offering),
        "description": offering.description,
        "form": [f.model_dump(include={"key", "label", "type", "required", "choices"}) for f in offering.form],
        "policy": {
            **policy.model_dump(
                include={
                    "cancel_deadline_hours",
                    "late_cancel_points",
                    "late_cancel_refund_percent",
                    "max_reschedules",
                    "opens_days_ahead",
                    "closes_minutes_before_start",
                    "requires_approval",
                    "party",
                    "max_party_size",
                    "real_name",
                    "minors_need_guardian",
                    "minors_need_adult",
                }
            ),
            "release_time": policy.release_time.strftime("%H:%M") if policy.release_time else None,
        },
        "resources": [
            {"id": r.pk, "type": r.type, "name": r.name, "title": r.title, "bio": r.bio, "rating": _rating(r.rating)}
            for r in offering.resources.filter(is_active=True)
        ],
        "reviews": [{"rating": r.rating, "text": r.text, "created_at": _local(r.created_at)} for r in reviews],
    }


def _local(moment: dt.datetime) -> dt.datetime:
    """Times go out with the merchant's offset (+08:00), easier to read than UTC."""
    return moment.astimezone(timeutil.local_zone())


def slot_out(slot: Slot) -> dict:
    resource = next(iter(sorted(slot.resources.all(), key=lambda r: (r.type, r.pk))), None)
    return {
        "id": slot.pk,
        "start": _local(slot.start),
        "end": _local(slot.end),
        "capacity": slot.capacity,
        "remaining": slot.remaining,
        "price_fen": slot.effective_price_fen,
        "resource": {"id": resource.pk, "name": resource.name} if resource else None,
    }


def _active_offerings() -> QuerySet[Offering]:
    return Offering.objects.filter(is_active=True, merchant__is_active=True).select_related("merchant", "branch")


def _offering(offering_id: int) -> Offering:
    offering = _active_offerings().filter(pk=offering_id).first()
    if offering is None:
        raise DomainError("not_found", _("This offering does not exist."))
    return offering


# --- Endpoints ----------------------------------------------------------------------------------


@router.get("/offerings", response={200: OfferingList, **error_responses()}, summary="Find offerings")
def list_offerings(request: HttpRequest, filters: Query[OfferingFilters]) -> dict:
    found = _active_offerings()
    if filters.kind:
        found = found.filter(kind=filters.kind)
    if filters.merchant is not None:
        found = found.filter(merchant_id=filters.merchant)
    if filters.q and filters.q.strip():
        words = filters.q.strip()
        found = found.filter(
            Q(title__icontains=words) | Q(description__icontains=words) | Q(merchant__name__icontains=words)
        )
    found = found.order_by("merchant_id", "id")
    page = found[filters.offset : filters.offset + filters.limit]
    return {"items": [offering_out(o) for o in page], "count": found.count()}


@router.get(
    "/offerings/{offering_id}",
    response={200: OfferingDetail, **error_responses("not_found")},
    summary="An offering with its form, policy in numbers, coaches/doctors and recent reviews",
)
def get_offering(request: HttpRequest, offering_id: DbId) -> dict:
    return offering_detail(_offering(offering_id))


@router.get(
    "/offerings/{offering_id}/slots",
    response={200: list[SlotInfo], **error_responses("not_found")},
    summary="Open slots of an offering by local day, with seats left",
)
def list_slots(request: HttpRequest, offering_id: DbId, filters: Query[SlotFilters]) -> list[dict]:
    offering = _offering(offering_id)
    date_from = filters.date_from or timeutil.today()
    for name, day in (("date_from", date_from), ("date_to", filters.date_to or date_from)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise DomainError("invalid", fields={name: _("Please choose a day between 2000 and 2999.")})
    date_to = filters.date_to or date_from + dt.timedelta(days=6)
    if date_to < date_from:
        raise DomainError("invalid", fields={"date_to": _("The last day comes before the first.")})
    if (date_to - date_from).days >= MAX_SLOT_DAYS:
        raise DomainError("invalid", fields={"date_to": _("At most %(days)d days at once.") % {"days": MAX_SLOT_DAYS}})
    from yuyue.payments.services import expire_slot_holds

    slots = list(slots_for(offering_id=offering.pk, date_from=date_from, date_to=date_to))
    # Unpaid holds that ran out give their seats back before the seats are counted (one indexed query).
    if expire_slot_holds([s.pk for s in slots]):
        slots = list(slots_for(offering_id=offering.pk, date_from=date_from, date_to=date_to))
    return [slot_out(s) for s in slots]
