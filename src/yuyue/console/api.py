"""Merchant endpoints of the JSON API (/api/v1/merchant/...), authenticated with a staff token.

The token names a staff user; the merchant is their only active Staff row, or the one named by
the ``X-Merchant`` header (or ``merchant`` query parameter: id or slug) when they have several.
The same desk, scoping, filter and services as the console pages answer here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext_lazy as _
from ninja import Field, Router, Schema
from ninja.security import HttpBearer

from yuyue.accounts import services as accounts
from yuyue.booking.models import Booking
from yuyue.console import exports, selectors, services
from yuyue.console.access import Desk, active_staff, client_ip, desk_for
from yuyue.core import personal
from yuyue.core.apischema import AUTH_ERRORS, error_responses
from yuyue.core.errors import DomainError

router = Router(tags=["merchant"])

MAX_LIMIT = 200
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StaffToken(HttpBearer):
    """A staff bearer token → the desk it works at."""

    def authenticate(self, request: HttpRequest, token: str) -> Desk | None:
        found = accounts.token_owner(token)
        if found is None or found.staff_user is None:
            return None
        staff = active_staff(found.staff_user).select_related("merchant", "user")
        wanted = (request.headers.get("X-Merchant") or request.GET.get("merchant") or "").strip()
        if wanted:
            as_id = int(wanted) if wanted.isdigit() and int(wanted) <= selectors.MAX_ID else None
            named = Q(merchant__slug=wanted) | (Q(merchant_id=as_id) if as_id is not None else Q(pk__in=[]))
            staff = staff.filter(named)
        rows = list(staff[:2])
        if not rows:
            if wanted:
                raise DomainError("forbidden", _("You do not work for this merchant."))
            return None
        if len(rows) > 1:
            raise DomainError("invalid", fields={"X-Merchant": _("You work for several merchants: name one.")})
        desk = desk_for(rows[0])
        request.desk = desk  # type: ignore[attr-defined]
        return desk


def staff_desk(request: HttpRequest, permission: str) -> Desk:
    """The desk of the staff token, refusing (403) a role without ``permission``."""
    desk: Desk = request.auth  # type: ignore[attr-defined]
    if not desk.can(permission):
        raise DomainError("forbidden")
    return desk


class Named(Schema):
    id: int
    name: str


class SlotOut(Schema):
    id: int
    start: dt.datetime
    end: dt.datetime


class AttendeeOut(Schema):
    name: str
    id_number: str
    phone: str


class MerchantBooking(Schema):
    code: str
    status: str
    status_label: str
    offering: Named
    branch: Named | None
    slot: SlotOut
    resources: list[Named]
    attendees: list[AttendeeOut]
    party_size: int
    amount_fen: int
    paid_fen: int = Field(description="paid online so far; 0 when free, unpaid or paid at the venue")
    account_phone: str
    answers: dict[str, Any]
    created_at: dt.datetime
    checked_in_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancel_reason: str


class BookingPage(Schema):
    items: list[MerchantBooking]
    count: int


class CheckinIn(Schema):
    voucher: str


def booking_out(booking: Booking, desk: Desk) -> dict[str, Any]:
    full = desk.can("personal.full")
    branch = booking.offering.branch
    return {
        "code": booking.code,
        "status": booking.status,
        "status_label": booking.get_status_display(),
        "offering": {"id": booking.offering_id, "name": booking.offering.title},
        "branch": {"id": branch.pk, "name": branch.name} if branch else None,
        "slot": {"id": booking.slot_id, "start": booking.slot.start, "end": booking.slot.end},
        "resources": [{"id": r.pk, "name": r.name} for r in booking.slot.resources.all()],
        "attendees": [
            {
                "name": a.name,
                "id_number": a.id_masked,  # full IDs only through the console's audited action
                "phone": a.phone if full else personal.mask_phone(a.phone),
            }
            for a in booking.attendees.all()
        ],
        "party_size": booking.party_size,
        "amount_fen": booking.amount_fen,
        "paid_fen": booking.paid_fen,
        "account_phone": booking.user.phone if full else booking.user.phone_masked,
        "answers": _answers(booking, full),
        "created_at": booking.created_at,
        "checked_in_at": booking.checked_in_at,
        "cancelled_at": booking.cancelled_at,
        "cancel_reason": booking.cancel_reason,
    }


def _answers(booking: Booking, full: bool) -> dict[str, Any]:
    kinds = {f.key: f.type for f in booking.offering.form}
    shown: dict[str, Any] = {}
    for key, value in booking.answers.items():
        if not full and kinds.get(key) == "phone":
            value = personal.mask_phone(str(value))
        elif kinds.get(key) == "id_number":
            value = personal.mask_id(str(value))
        shown[key] = value
    return shown


def _filtered(request: HttpRequest, desk: Desk, export: str = "") -> Any:
    """The desk's bookings under the request's filters; an export is written to the audit log."""
    flt = selectors.BookingFilter.parse(request.GET)
    if export:
        services.note_export(desk=desk, ip=client_ip(request), kind=export, filters=flt.as_params())
    return selectors.filter_bookings(desk, flt)


@router.get(
    "/bookings",
    response={200: BookingPage, **error_responses(*AUTH_ERRORS)},
    auth=StaffToken(),
    summary=str(_("The merchant's bookings, filtered")),
)
def list_bookings(
    request: HttpRequest,
    date_from: str = "",
    date_to: str = "",
    offering: str = "",
    branch: str = "",
    resource: str = "",
    status: str = "",
    q: str = "",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Newest first; ``limit`` (at most 200) and ``offset`` page through ``count`` rows."""
    desk = staff_desk(request, "bookings.view")
    qs = _filtered(request, desk)
    limit = max(1, min(limit, MAX_LIMIT))
    offset = min(max(0, offset), selectors.MAX_ID // 2)
    rows = selectors.window(selectors.booking_list_rows(qs), offset, limit)
    return {"items": [booking_out(b, desk) for b in rows], "count": qs.count()}


@router.get(
    "/bookings/export.xlsx",
    auth=StaffToken(),
    response={**error_responses(*AUTH_ERRORS)},
    openapi_extra={"responses": {"200": {"description": "Excel workbook", "content": {XLSX: {}}}}},
    summary=str(_("Export the filtered bookings (.xlsx)")),
)
def export_xlsx(request: HttpRequest) -> HttpResponseBase:
    """Same filters as ``GET /merchant/bookings``."""
    desk = staff_desk(request, "bookings.export")
    return FileResponse(
        exports.xlsx_file(desk, _filtered(request, desk, export="xlsx")),
        as_attachment=True,
        filename=exports.filename("xlsx"),
        content_type=XLSX,
    )


@router.get(
    "/bookings/export.csv",
    auth=StaffToken(),
    response={**error_responses(*AUTH_ERRORS)},
    openapi_extra={"responses": {"200": {"description": "UTF-8 CSV", "content": {"text/csv": {}}}}},
    summary=str(_("Export the filtered bookings (CSV)")),
)
def export_csv(request: HttpRequest) -> HttpResponseBase:
    """UTF-8 with a byte order mark, so Excel shows the Chinese correctly."""
    desk = staff_desk(request, "bookings.export")
    response = StreamingHttpResponse(
        exports.csv_chunks(desk, _filtered(request, desk, export="csv")), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{exports.filename("csv")}"'
    return response


@router.post(
    "/checkins",
    response={200: MerchantBooking, **error_responses(*AUTH_ERRORS, "not_found", "duplicate")},
    auth=StaffToken(),
    summary=str(_("Check in a voucher (gate machines)")),
)
def checkin(request: HttpRequest, body: CheckinIn) -> dict[str, Any]:
    """Admits once; a second scan is 409 ``duplicate`` with ``checked_in_at`` of the first."""
    desk = staff_desk(request, "checkin")
    booking = services.check_in(desk=desk, ip=client_ip(request), text=body.voucher)
    booking = selectors.booking_list_rows(Booking.objects.filter(pk=booking.pk)).get()
    return booking_out(booking, desk)
