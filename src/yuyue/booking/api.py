"""Booking endpoints of the JSON API: book, list, cancel, reschedule, waitlist, review, voucher, calendar.

Handlers parse, call ``booking.services`` and shape the answer; every rule lives in the engine.
A booking of another account answers 404, exactly like a code that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from ninja import Field, Header, Path, Query, Router, Schema, Status
from pydantic import AfterValidator

from yuyue.accounts.models import EndUser
from yuyue.booking import documents, services
from yuyue.booking.models import ACTIVE_STATUSES, Booking, WaitlistEntry
from yuyue.booking.models import Status as BookingStatus
from yuyue.catalog.api import OfferingOut, SlotInfo, offering_out, slot_out
from yuyue.core import ratelimit, timeutil, waitingroom
from yuyue.core.apischema import AUTH_ERRORS, Answers, DbId, Offset, Text, error_responses, no_nul, user_auth
from yuyue.core.errors import DomainError

router = Router(tags=["bookings"], auth=user_auth)

# What the engine may refuse a new booking (or a move) with.
BOOKING_REFUSALS = (
    *AUTH_ERRORS,
    "not_found",
    "slot_full",
    "banned",
    "rate_limited",
    "payment_required",
)
# Booking codes are 10 characters; anything longer or with NUL is simply not one.
BookingCode = Annotated[str, Path(max_length=32), AfterValidator(no_nul)]
IdempotencyKey = Annotated[str | None, AfterValidator(no_nul), Header(None, alias="Idempotency-Key", max_length=100)]
VOUCHER_STATUSES = frozenset({BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.COMPLETED})


# --- Schemas ------------------------------------------------------------------------------------


class BookingIn(Schema):
    slot_id: DbId
    people: list[DbId] = Field(default_factory=list, max_length=50, description="ids from /me/people")
    party_size: int | None = Field(None, ge=1, le=1000, description="for offerings booked by count")
    answers: Answers = Field(default_factory=dict, description="the offering's form, by field key")
    pay_with: Literal["money", "credit"] = Field(
        "money", description="credit: pay with classes of a membership card (次卡) instead of money"
    )
    card_id: DbId | None = Field(
        None, description="with pay_with=credit: which card (from /me/cards); empty: the usable one expiring first"
    )


class BookingPerson(Schema):
    person_id: int | None
    name: str
    id_number: str = Field(..., description="masked")
    is_minor: bool
    guardian_name: str


class BookingOut(Schema):
    code: str
    status: str = Field(
        ...,
        description="pending_approval, pending_payment, confirmed, checked_in, completed, rejected, cancelled, "
        "expired, no_show or refunded",
    )
    status_label: str
    offering: OfferingOut
    slot: SlotInfo
    people: list[BookingPerson]
    party_size: int
    amount_fen: int
    paid_fen: int = Field(description="paid online so far; 0 when free, unpaid or paid at the venue")
    paid_by: str = Field("money", description="money, or credit: paid with classes of the membership card card_id")
    card_id: int | None = None
    answers: dict[str, Any]
    reschedule_count: int
    created_at: dt.datetime
    hold_expires_at: dt.datetime | None
    checked_in_at: dt.datetime | None
    voucher_url: str
    calendar_url: str


class BookingList(Schema):
    items: list[BookingOut]
    count: int


class BookingFilters(Schema):
    when: str | None = Field(None, pattern="^(upcoming|past)$", description="upcoming or past; empty: all")
    limit: int = Field(50, ge=1, le=100)
    offset: Offset = 0


class CancelIn(Schema):
    reason: Text = Field("", max_length=200)


class CancelPreviewOut(Schema):
    allowed: bool
    refund_fen: int
    points_penalty: int
    reason: str


class RescheduleIn(Schema):
    slot_id: DbId


class WaitlistIn(Schema):
    people: list[DbId] = Field(default_factory=list, max_length=50)
    party_size: int | None = Field(None, ge=1, le=1000)
    answers: Answers = Field(default_factory=dict)


class WaitlistOut(Schema):
    id: int
    position: int


class ReviewIn(Schema):
    rating: int = Field(..., ge=1, le=5)
    text: Text = Field("", max_length=2000)


class ReviewCreated(Schema):
    id: int
    rating: int
    text: str
    created_at: dt.datetime


# --- Shaping ------------------------------------------------------------------------------------


def booking_out(booking: Booking, attendees: list | None = None) -> dict:
    """The booking as the API shows it; ``attendees`` when already in hand (else they are read)."""
    zone = timeutil.local_zone()
    return {
        "code": booking.code,
        "status": booking.status,
        "status_label": str(booking.get_status_display()),
        "offering": offering_out(booking.offering),
        "slot": slot_out(booking.slot),
        "people": [
            {
                "person_id": a.person_id,
                "name": a.name,
                "id_number": a.id_masked,
                "is_minor": a.is_minor,
                "guardian_name": a.guardian_name,
            }
            for a in (booking.attendees.all() if attendees is None else attendees)
        ],
        "party_size": booking.party_size,
        "amount_fen": booking.amount_fen,
        "paid_fen": booking.paid_fen,
        "paid_by": booking.paid_by,
        "card_id": booking.card_id,
        "answers": booking.answers,
        "reschedule_count": booking.reschedule_count,
        "created_at": booking.created_at.astimezone(zone),
        "hold_expires_at": booking.hold_expires_at.astimezone(zone) if booking.hold_expires_at else None,
        "checked_in_at": booking.checked_in_at.astimezone(zone) if booking.checked_in_at else None,
        "voucher_url": reverse("api-1:booking_voucher", kwargs={"code": booking.code}),
        "calendar_url": reverse("api-1:booking_calendar", kwargs={"code": booking.code}),
    }


def _mine() -> Any:
    return Booking.objects.select_related("offering", "offering__merchant", "offering__branch", "slot", "merchant")


def _my_booking(request: HttpRequest, code: str) -> Booking:
    booking = _mine().filter(code=code[:16], user=_user(request)).first()
    if booking is None:
        raise DomainError("not_found", _("This booking does not exist."))
    return booking


def _user(request: HttpRequest) -> EndUser:
    return request.auth  # type: ignore[attr-defined,no-any-return]


def _fresh(booking: Booking) -> dict:
    return booking_out(_mine().get(pk=booking.pk))


# --- Endpoints ----------------------------------------------------------------------------------


@router.post(
    "/bookings",
    response={201: BookingOut, 200: BookingOut, **error_responses(*BOOKING_REFUSALS)},
    summary="Book a slot",
    description="201 with the new booking. With an Idempotency-Key, the same key and body again answer the "
    "same booking with 200; the same key with another body is refused (422). Refusals: slot_full, duplicate, "
    "limit_reached, conflict, too_late, not_open (409), banned (403), invalid (422), rate_limited (429), "
    "payment_required (402: pay_with=credit without a card with classes left for this time).",
)
def create_booking(
    request: HttpRequest,
    payload: BookingIn,
    idempotency_key: IdempotencyKey = None,
) -> Status[dict]:
    user = _user(request)
    waitingroom.admit(user_id=user.pk, slot_id=payload.slot_id)  # in a peak window: queue, do not refuse
    ratelimit.booking(request, user.pk)  # per account and per address, one Redis call
    booking = services.book(
        user=user,
        slot_id=payload.slot_id,
        person_ids=payload.people,
        party_size=payload.party_size,
        answers=payload.answers,
        idempotency_key=idempotency_key or None,
        pay_with=payload.pay_with,
        card_id=payload.card_id,
    )
    if booking.replayed:
        return Status(200, _fresh(booking))
    # A new booking comes back with its slot, offering and people loaded: no need to read it again.
    return Status(201, booking_out(booking, attendees=booking.new_attendees))


@router.get("/bookings", response={200: BookingList, **error_responses(*AUTH_ERRORS)}, summary="My bookings")
def list_bookings(request: HttpRequest, filters: Query[BookingFilters]) -> dict:
    found = _mine().filter(user=_user(request))
    now = timeutil.now()
    if filters.when == "upcoming":
        found = found.filter(slot__end__gt=now, status__in=ACTIVE_STATUSES)
    elif filters.when == "past":
        found = found.filter(Q(slot__end__lte=now) | ~Q(status__in=ACTIVE_STATUSES))
    found = found.order_by("-created_at", "-id").prefetch_related("attendees", "slot__resources")
    page = found[filters.offset : filters.offset + filters.limit]
    return {"items": [booking_out(b) for b in page], "count": found.count()}


@router.get(
    "/bookings/{code}",
    response={200: BookingOut, **error_responses(*AUTH_ERRORS, "not_found")},
    summary="One of my bookings",
)
def get_booking(request: HttpRequest, code: BookingCode) -> dict:
    return booking_out(_my_booking(request, code))


@router.get(
    "/bookings/{code}/cancel-preview",
    response={200: CancelPreviewOut, **error_responses(*AUTH_ERRORS, "not_found")},
    summary="What cancelling now would cost",
)
def cancel_preview(request: HttpRequest, code: BookingCode) -> dict:
    preview = services.cancel_preview(booking=_my_booking(request, code))
    return {
        "allowed": preview.allowed,
        "refund_fen": preview.refund_fen,
        "points_penalty": preview.points_penalty,
        "reason": preview.reason,
    }


@router.post(
    "/bookings/{code}/cancel",
    response={200: BookingOut, **error_responses(*AUTH_ERRORS, "not_found", "too_late")},
    summary="Cancel (late cancellations cost what the preview says)",
)
def cancel_booking(request: HttpRequest, code: BookingCode, payload: CancelIn | None = None) -> dict:
    booking = _my_booking(request, code)
    services.cancel(booking=booking, by=_user(request), reason=payload.reason if payload else "")
    return _fresh(booking)


@router.post(
    "/bookings/{code}/reschedule",
    response={200: BookingOut, **error_responses(*BOOKING_REFUSALS)},
    summary="Move to another slot of the same offering (all or nothing, same code)",
)
def reschedule_booking(request: HttpRequest, code: BookingCode, payload: RescheduleIn) -> dict:
    booking = _my_booking(request, code)
    services.reschedule(booking=booking, slot_id=payload.slot_id, by=_user(request))
    return _fresh(booking)


def _document_booking(request: HttpRequest, code: BookingCode) -> Booking:
    booking = _my_booking(request, code)
    if booking.status == BookingStatus.PENDING_PAYMENT:
        raise DomainError("payment_required", _("The voucher is ready once the booking is paid."))
    if booking.status not in VOUCHER_STATUSES:
        raise DomainError("not_allowed", _("This booking has no voucher in its current state."))
    return booking


@router.get(
    "/bookings/{code}/voucher.svg",
    url_name="booking_voucher",
    response={**error_responses(*AUTH_ERRORS, "not_found", "payment_required", "not_allowed")},
    openapi_extra={
        "responses": {"200": {"description": "QR code (SVG) to show at the entrance", "content": {"image/svg+xml": {}}}}
    },
    summary="The QR voucher",
)
def voucher(request: HttpRequest, code: BookingCode) -> HttpResponse:
    booking = _document_booking(request, code)
    response = HttpResponse(documents.voucher_svg(booking), content_type="image/svg+xml")
    response["Cache-Control"] = "private, no-store"
    return response


@router.get(
    "/bookings/{code}/calendar.ics",
    url_name="booking_calendar",
    response={**error_responses(*AUTH_ERRORS, "not_found")},
    openapi_extra={
        "responses": {"200": {"description": "iCalendar event with a reminder", "content": {"text/calendar": {}}}}
    },
    summary="Add to calendar (.ics)",
)
def calendar(request: HttpRequest, code: BookingCode) -> HttpResponse:
    booking = _my_booking(request, code)
    response = HttpResponse(documents.calendar_ics(booking), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{booking.code}.ics"'
    return response


@router.post(
    "/slots/{slot_id}/waitlist",
    response={201: WaitlistOut, **error_responses(*BOOKING_REFUSALS)},
    summary="Queue for a full slot; booked automatically when seats free up",
)
def join_waitlist(request: HttpRequest, slot_id: DbId, payload: WaitlistIn) -> Status[dict]:
    entry = services.join_waitlist(
        user=_user(request),
        slot_id=slot_id,
        person_ids=payload.people,
        party_size=payload.party_size,
        answers=payload.answers,
    )
    return Status(201, {"id": entry.pk, "position": services.waitlist_position(entry)})


@router.delete(
    "/me/waitlist/{entry_id}",
    response={204: None, **error_responses(*AUTH_ERRORS, "not_found", "not_allowed")},
    summary="Leave a waitlist (too late once the entry has been booked: cancel that booking instead)",
)
def leave_waitlist(request: HttpRequest, entry_id: DbId) -> Status[None]:
    entry = WaitlistEntry.objects.filter(pk=entry_id, user=_user(request)).first()
    if entry is None:
        raise DomainError("not_found")
    services.leave_waitlist(entry=entry)
    return Status(204, None)


@router.post(
    "/bookings/{code}/review",
    response={201: ReviewCreated, **error_responses(*AUTH_ERRORS, "not_found", "duplicate")},
    summary="Review after the visit (1 to 5 stars)",
)
def review(request: HttpRequest, code: BookingCode, payload: ReviewIn) -> Status[dict]:
    booking = _my_booking(request, code)
    created = services.add_review(booking=booking, user=_user(request), rating=payload.rating, text=payload.text)
    return Status(
        201,
        {
            "id": created.pk,
            "rating": created.rating,
            "text": created.text,
            "created_at": created.created_at.astimezone(timeutil.local_zone()),
        },
    )
