"""Reads the console needs: the one booking filter (page, API and both exports), customers, reviews, audit.

``BookingFilter.parse`` turns query parameters into a filter (or a field error), and
``filter_bookings`` applies it to the desk's bookings, so what a page lists, what the API returns
and what an export writes are always the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils.translation import gettext_lazy as _

from yuyue.accounts.models import Ban, EndUser, PointsBalance
from yuyue.booking.models import Attendee, Booking, Review, Status
from yuyue.catalog.models import Offering, Resource
from yuyue.console.access import Desk, scope_bookings, scope_branches, scope_offerings, scope_resources
from yuyue.console.models import AuditEntry
from yuyue.core import personal, timeutil
from yuyue.core.errors import DomainError
from yuyue.core.ids import ALPHABET
from yuyue.tenants.models import Branch

MAX_ID = 2**63 - 1  # the largest id a database column holds; larger numbers are nobody's id


@dataclass(frozen=True)
class BookingFilter:
    date_from: dt.date | None = None  # the visit's local date (slot start), inclusive
    date_to: dt.date | None = None
    branch: int | None = None
    offering: int | None = None
    resource: int | None = None
    status: str | None = None
    q: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> BookingFilter:
        """From query parameters; a bad value is a field error, never a silently wider list."""
        errors: dict[str, Any] = {}

        def day(name: str) -> dt.date | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            try:
                return dt.date.fromisoformat(raw)
            except ValueError:
                errors[name] = _("Please enter a date like 2025-05-01.")
                return None

        def number(name: str) -> int | None:
            raw = str(params.get(name) or "").strip()
            if not raw:
                return None
            if not raw.isdigit() or int(raw) > MAX_ID:
                errors[name] = _("Please choose from the list.")
                return None
            return int(raw)

        status = (params.get("status") or "").strip() or None
        if status is not None and status not in Status.values:
            errors["status"] = _("Please choose from the list.")
        found = cls(
            date_from=day("date_from"),
            date_to=day("date_to"),
            branch=number("branch"),
            offering=number("offering"),
            resource=number("resource"),
            status=status,
            q=(params.get("q") or "").strip()[:100],
        )
        if found.date_from and found.date_to and found.date_from > found.date_to:
            errors["date_to"] = _("The end date is before the start date.")
        if errors:
            raise DomainError("invalid", fields=errors)
        return found

    def as_params(self) -> dict[str, str]:
        """The filter as query parameters (for export links and paging)."""
        values = {
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "branch": str(self.branch or ""),
            "offering": str(self.offering or ""),
            "resource": str(self.resource or ""),
            "status": self.status or "",
            "q": self.q,
        }
        return {k: v for k, v in values.items() if v}


def _looks_like_code(text: str) -> bool:
    return len(text) == 10 and all(ch in ALPHABET for ch in text.upper())


def _search(qs: QuerySet[Booking], text: str) -> QuerySet[Booking]:
    """A booking code, a phone (found through its blind index: phones are encrypted) or a name."""
    if _looks_like_code(text):
        return qs.filter(code=text.upper())
    compact = text.replace(" ", "").replace("-", "").removeprefix("+")
    if compact.isdigit() and len(compact) >= 11:
        try:
            phone = personal.normalize_phone(text)
        except DomainError:
            return qs.none()
        digest = personal.phone_hash(phone)
        attendee = Attendee.objects.filter(booking=OuterRef("pk"), phone_hash=digest)
        return qs.filter(Q(user__phone_hash=digest) | Exists(attendee))
    attendee = Attendee.objects.filter(booking=OuterRef("pk"), name__icontains=text)
    return qs.filter(Q(Exists(attendee)) | Q(user__nickname__icontains=text))


def filter_bookings(desk: Desk, flt: BookingFilter) -> QuerySet[Booking]:
    """The desk's bookings matching the filter, newest first (an indexed order: merchant, id)."""
    qs = scope_bookings(desk, Booking.objects.all())
    if flt.date_from:
        qs = qs.filter(slot__start__gte=timeutil.local_datetime(flt.date_from, dt.time.min))
    if flt.date_to:
        qs = qs.filter(slot__start__lt=timeutil.local_datetime(flt.date_to + dt.timedelta(days=1), dt.time.min))
    if flt.branch:
        qs = qs.filter(offering__branch_id=flt.branch)
    if flt.offering:
        qs = qs.filter(offering_id=flt.offering)
    if flt.resource:
        qs = qs.filter(slot__resources=flt.resource)  # one resource: at most one row per slot
    if flt.status:
        qs = qs.filter(status=flt.status)
    if flt.q:
        qs = _search(qs, flt.q)
    return qs.order_by("-id")


def booking_list_rows(qs: QuerySet[Booking]) -> QuerySet[Booking]:
    """What a list row shows, loaded in a fixed number of queries."""
    return qs.select_related("offering", "offering__branch", "slot", "user").prefetch_related(
        "attendees", "slot__resources"
    )


def page_of(qs: QuerySet[Booking], page: int, size: int) -> tuple[list[Booking], bool]:
    """One page by LIMIT/OFFSET over the indexed order, and whether another page follows."""
    rows = window(qs, (max(page, 1) - 1) * size, size + 1)
    return rows[:size], len(rows) > size


def window(qs: QuerySet[Booking], offset: int, limit: int) -> list[Booking]:
    """Rows ``offset`` to ``offset + limit`` of ``qs``: ids first over the index, then the rows themselves."""
    ids = list(qs.values_list("pk", flat=True)[offset : offset + limit])
    return list(qs.filter(pk__in=ids)) if ids else []


def filter_choices(desk: Desk) -> dict[str, Any]:
    """Branches, offerings and resources of the desk, for the filter dropdowns."""
    return {
        "branches": list(scope_branches(desk, Branch.objects.all()).order_by("name")),
        "offerings": list(scope_offerings(desk, Offering.objects.all()).order_by("title")),
        "resources": list(scope_resources(desk, Resource.objects.all()).order_by("type", "name")),
        "statuses": Status.choices,
    }


# --- Customers ------------------------------------------------------------------------------


def customers(desk: Desk, q: str = "") -> QuerySet[EndUser]:
    """End users who booked with the desk's merchant, with their booking and no-show counts."""
    mine = scope_bookings(desk, Booking.objects.all())
    users = EndUser.objects.filter(pk__in=mine.values("user_id"))
    q = q.strip()
    if q:
        try:
            users = users.filter(phone_hash=personal.phone_hash(personal.normalize_phone(q)))
        except DomainError:
            named = Attendee.objects.filter(booking__in=mine, name__icontains=q).values("booking__user_id")
            users = users.filter(Q(nickname__icontains=q) | Q(pk__in=named))
    in_scope = Q(bookings__in=mine)
    now = timeutil.now()
    return users.annotate(
        booking_count=Count("bookings", filter=in_scope, distinct=True),
        no_show_count=Count("bookings", filter=in_scope & Q(bookings__status=Status.NO_SHOW), distinct=True),
        is_banned=Exists(
            Ban.objects.filter(
                user=OuterRef("pk"), merchant=desk.merchant, lifted_at=None, starts_at__lte=now, ends_at__gt=now
            )
        ),
        # Points are kept per merchant: this merchant's balance, not the account's total.
        merchant_points=Subquery(
            PointsBalance.objects.filter(user=OuterRef("pk"), merchant=desk.merchant).values("balance")[:1]
        ),
    ).order_by("-id")


def customer_or_none(desk: Desk, user_id: int) -> EndUser | None:
    """The end user if they ever booked with the desk's merchant (else not this merchant's business)."""
    return customers(desk).filter(pk=user_id).first()


# --- Reviews and audit ----------------------------------------------------------------------


def reviews(desk: Desk, hidden: str = "") -> QuerySet[Review]:
    qs = Review.objects.filter(booking__in=scope_bookings(desk, Booking.objects.all())).select_related(
        "offering", "resource", "user", "booking"
    )
    if hidden == "1":
        qs = qs.filter(is_hidden=True)
    elif hidden == "0":
        qs = qs.filter(is_hidden=False)
    return qs.order_by("-created_at", "-id")


def audit_entries(desk: Desk, params: Mapping[str, Any]) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.filter(merchant=desk.merchant).select_related("staff_user")
    staff = str(params.get("staff") or "")
    if staff.isdigit():
        qs = qs.filter(staff_user_id=int(staff))
    if action := (params.get("action") or "").strip():
        qs = qs.filter(action=action)
    for name, lookup in (("date_from", "at__gte"), ("date_to", "at__lt")):
        raw = (params.get(name) or "").strip()
        if not raw:
            continue
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            raise DomainError("invalid", fields={name: _("Please enter a date like 2025-05-01.")}) from None
        if name == "date_to":
            day += dt.timedelta(days=1)
        qs = qs.filter(**{lookup: timeutil.local_datetime(day, dt.time.min)})
    return qs.order_by("-id")
