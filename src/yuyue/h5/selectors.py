"""Read-only queries behind the H5 pages (no writes here: those go through the services)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Min, Prefetch, Q, QuerySet

from yuyue.accounts.models import EndUser, Person
from yuyue.booking.models import Booking, Review, Status, WaitlistEntry, WaitlistStatus
from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.scheduling.models import Slot, SlotStatus
from yuyue.scheduling.selectors import slots_for
from yuyue.tenants.models import Branch, Merchant

# Statuses a visit is still ahead in (the rest are history: done, cancelled, expired...).
UPCOMING_STATUSES = (Status.PENDING_APPROVAL, Status.PENDING_PAYMENT, Status.CONFIRMED, Status.CHECKED_IN)


@dataclass(frozen=True)
class KindCount:
    code: str
    label: str
    offerings: int


def kinds_with_counts() -> list[KindCount]:
    """Every kind in preset order, with how many active offerings it has (home page tiles)."""
    counts = dict(
        Offering.objects.filter(is_active=True, merchant__is_active=True)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    return [KindCount(code, str(kind.label), counts.get(code, 0)) for code, kind in KINDS.items()]


def merchants_with_branches() -> QuerySet[Merchant]:
    """Active merchants with their active branches, for the home page."""
    return (
        Merchant.objects.filter(is_active=True)
        .prefetch_related(Prefetch("branches", queryset=Branch.objects.filter(is_active=True)))
        .order_by("id")
    )


def search_offerings(*, q: str = "", kind: str = "", merchant_id: int | None = None) -> QuerySet[Offering]:
    """Active offerings matching words in the title, description, merchant or branch."""
    found = Offering.objects.filter(is_active=True, merchant__is_active=True).select_related("merchant", "branch")
    if kind:
        found = found.filter(kind=kind)
    if merchant_id:
        found = found.filter(merchant_id=merchant_id)
    for word in q.split()[:5]:
        found = found.filter(
            Q(title__icontains=word)
            | Q(description__icontains=word)
            | Q(merchant__name__icontains=word)
            | Q(branch__name__icontains=word)
            | Q(branch__address__icontains=word)
        )
    return found.order_by("merchant_id", "id")


def offering_for_page(offering_id: int) -> Offering | None:
    return (
        Offering.objects.filter(pk=offering_id, is_active=True, merchant__is_active=True)
        .select_related("merchant", "branch")
        .prefetch_related("resources")
        .first()
    )


def place_of(offering: Offering) -> Branch | None:
    """Where it happens: the offering's branch, else the merchant's first branch."""
    if offering.branch_id:
        return offering.branch
    return Branch.objects.filter(merchant_id=offering.merchant_id, is_active=True).order_by("id").first()


def recent_reviews(offering: Offering, limit: int = 5) -> list[Review]:
    return list(
        Review.objects.filter(offering=offering, is_hidden=False)
        .select_related("user", "resource")
        .order_by("-created_at")[:limit]
    )


def bookable_days(offering: Offering, *, first: dt.date, days: int = 14) -> list[tuple[dt.date, int]]:
    """The next ``days`` local dates with the number of open slots on each (zero: nothing to book)."""
    last = first + dt.timedelta(days=days - 1)
    per_day: dict[dt.date, int] = {}
    for start in slots_for(offering_id=offering.pk, date_from=first, date_to=last).values_list("start", flat=True):
        day = timeutil.local_date(start)
        per_day[day] = per_day.get(day, 0) + 1
    return [(first + dt.timedelta(days=n), per_day.get(first + dt.timedelta(days=n), 0)) for n in range(days)]


def first_day_with_slots(offering: Offering, *, today: dt.date, days: int = 14) -> dt.date:
    """The first of the next ``days`` days with a slot still ahead, else today."""
    upper = timeutil.local_datetime(today + dt.timedelta(days=days), dt.time.min)
    first = Slot.objects.filter(
        offering=offering, status=SlotStatus.OPEN, start__gte=timeutil.now(), start__lt=upper
    ).aggregate(first=Min("start"))["first"]
    return timeutil.local_date(first) if first else today


def day_slots(offering: Offering, day: dt.date) -> list[Slot]:
    """The day's open slots that have not started yet, with their resources."""
    now = timeutil.now()
    return [s for s in slots_for(offering_id=offering.pk, date_from=day, date_to=day) if s.start > now]


def slot_for_booking(slot_id: int) -> Slot | None:
    return (
        Slot.objects.filter(pk=slot_id, offering__is_active=True)
        .select_related("offering", "offering__merchant", "offering__branch")
        .prefetch_related("resources")
        .first()
    )


def people_of(user: EndUser) -> list[Person]:
    return list(Person.objects.filter(owner=user, is_deleted=False).select_related("guardian").order_by("id"))


def adults_of(user: EndUser, *, age: int = 18) -> list[Person]:
    today = timeutil.today()
    return [p for p in people_of(user) if (p.age_on(today) or 0) >= age]


def bookings_of(user: EndUser, *, upcoming: bool) -> QuerySet[Booking]:
    """The user's bookings: still ahead (soonest first) or history (latest first)."""
    mine = Booking.objects.filter(user=user).select_related("offering", "slot", "merchant")
    now = timeutil.now()
    if upcoming:
        return mine.filter(status__in=UPCOMING_STATUSES, slot__end__gt=now).order_by("slot__start", "id")
    return mine.exclude(status__in=UPCOMING_STATUSES, slot__end__gt=now).order_by("-slot__start", "-id")


def waiting_entries_of(user: EndUser) -> QuerySet[WaitlistEntry]:
    return (
        WaitlistEntry.objects.filter(user=user, status=WaitlistStatus.WAITING, slot__start__gt=timeutil.now())
        .select_related("slot", "slot__offering")
        .order_by("slot__start")
    )


def booking_of(user: EndUser, code: str) -> Booking | None:
    """One of the user's bookings by code; someone else's is as good as missing."""
    return (
        Booking.objects.filter(user=user, code=code)
        .select_related("offering", "offering__merchant", "offering__branch", "slot", "merchant")
        .prefetch_related("attendees", "slot__resources")
        .first()
    )


def has_review(booking: Booking) -> bool:
    return Review.objects.filter(booking=booking).exists()
