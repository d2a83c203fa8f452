"""Merchant statistics: the numbers behind the console dashboard and ``GET /merchant/stats``.

Every figure is counted by the database (GROUP BY with conditional ``Count``/``Sum``), never by
looping over bookings in Python; Python only adds up the database's subtotals (per week and
offering: a few hundred rows for a year) and shapes them for charts and CSV.
Weekday, hour and week are taken in the merchant's zone (Asia/Shanghai) by the database itself
(``AT TIME ZONE`` on PostgreSQL, ``CONVERT_TZ`` on MariaDB, Django's functions on SQLite).

What is counted, and when:

- A booking belongs to the day of its visit (the slot's start, local date), like the console's
  booking filter; the period is ``date_from`` … ``date_to`` inclusive, optionally one branch.
- *Bookings* are all bookings made for the period, except unpaid holds that expired and requests
  the merchant rejected. *Cancelled* includes cancelled-and-refunded. The cancellation rate is
  cancelled / bookings; the no-show rate is no-shows / visits that were due (no-shows, checked
  in, completed).
- The heatmap counts seats booked (people) per weekday and hour; the top offerings count the
  bookings that hold their seats (not cancelled).
- Fill rate is seats taken / capacity of the open slots (``Slot.reserved`` is kept exact by the
  booking engine); closed slots are left out.
- Money, for owners and managers only (permission ``stats.revenue``): *booked value* is the
  amount of confirmed bookings that were not cancelled (including those paid at the venue),
  *paid online* is ``Booking.paid_fen``, *refunds* are the ``refund_fen`` the booking events record
  (the refund once it was paid back, else what the cancellation owes), *net* is paid online minus
  refunds.
- The live view is today's slots, whatever the period: seats checked in against capacity, with
  the alert levels scenic spots use (80 % 预警, 90 % 告警, 95 % 限流).

Scoping is the console's: a desk sees its merchant, its branches, and a coach or doctor only
their own slots (``console.access.scope_*``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Avg, BigIntegerField, Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, ExtractHour, ExtractIsoWeekDay, TruncWeek
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from yuyue.booking.models import ACTIVE_STATUSES, Booking, BookingEvent, Review, Status
from yuyue.catalog.models import Offering
from yuyue.console.access import Desk, scope_branches, scope_slots
from yuyue.console.selectors import BookingFilter, filter_bookings
from yuyue.core import money, timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import Slot, SlotStatus
from yuyue.tenants.models import Branch

DEFAULT_DAYS = 90  # the period when none is given: the last 90 days up to today
MAX_DAYS = 731  # two years; a longer period is refused rather than left to run for minutes
TOP_OFFERINGS = 10
MAX_SLOT_ROWS = 500  # the per-slot table of one day

NOT_MADE = (Status.EXPIRED, Status.REJECTED)
CANCELLED = (Status.CANCELLED, Status.REFUNDED)
ATTENDED = (Status.CHECKED_IN, Status.COMPLETED)
KEPT = (Status.CONFIRMED, *ATTENDED, Status.NO_SHOW)  # confirmed and not cancelled: counts as booked value
HOLDING = tuple(ACTIVE_STATUSES)
T = TypeVar("T")

# Share of today's capacity checked in → level, highest first.
ALERT_LEVELS = (
    (Decimal("0.95"), "throttle"),
    (Decimal("0.90"), "alarm"),
    (Decimal("0.80"), "warning"),
)


def alert_label(level: str | None) -> str:
    labels = {
        "throttle": pgettext("capacity alert", "Throttle"),
        "alarm": pgettext("capacity alert", "Alarm"),
        "warning": pgettext("capacity alert", "Warning"),
    }
    return labels.get(level or "", pgettext("capacity alert", "Normal"))


def alert_level(checked_in: int, capacity: int) -> str | None:
    """``warning`` from 80 %, ``alarm`` from 90 %, ``throttle`` from 95 % of capacity; else None."""
    if capacity <= 0:
        return None
    share = Decimal(checked_in) / Decimal(capacity)
    return next((level for floor, level in ALERT_LEVELS if share >= floor), None)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _aggregate_query(block: Callable[..., T]) -> Callable[..., T]:
    """Run a block in one transaction; on PostgreSQL without JIT compilation for its queries.

    PostgreSQL compiles a query it estimates as expensive before running it (``jit_above_cost``);
    for these GROUP BYs compiling took longer than running (2.4 s of JIT for a 0.6 s weekly
    aggregate over 600,000 bookings), so ``SET LOCAL`` turns it off for this transaction only.
    """

    @functools.wraps(block)
    def run(*args: Any, **kwargs: Any) -> T:
        with transaction.atomic():  # a savepoint when nested: a refusal inside leaves the caller's transaction usable
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL jit = off")
            return block(*args, **kwargs)

    return run


# --- The period and the scope ---------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    date_from: dt.date
    date_to: dt.date
    day: dt.date  # the day whose slots are listed one by one
    branch: Branch | None = None

    @classmethod
    def parse(cls, desk: Desk, params: Mapping[str, Any], *, today: dt.date | None = None) -> Period:
        """From query parameters; a bad value is a field error, never a silently different period."""
        today = today or timeutil.today()
        flt = BookingFilter.parse({k: params.get(k) for k in ("date_from", "date_to", "branch")})
        errors: dict[str, Any] = {}
        day = today
        raw_day = str(params.get("day") or "").strip()
        if raw_day:
            try:
                day = dt.date.fromisoformat(raw_day)
            except ValueError:
                errors["day"] = _("Please enter a date like 2025-05-01.")
        date_to = flt.date_to or max(today, flt.date_from or today)
        date_from = flt.date_from or date_to - dt.timedelta(days=DEFAULT_DAYS - 1)
        if (date_to - date_from).days >= MAX_DAYS:
            errors["date_from"] = _("Please choose at most two years.")
        branch = None
        if flt.branch is not None:
            branch = scope_branches(desk, Branch.objects.filter(pk=flt.branch)).first()
            if branch is None:
                errors["branch"] = _("Please choose from the list.")
        if errors:
            raise DomainError("invalid", fields=errors)
        return cls(date_from=date_from, date_to=date_to, day=day, branch=branch)

    def as_params(self) -> dict[str, str]:
        params = {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat()}
        if self.branch is not None:
            params["branch"] = str(self.branch.pk)
        params["day"] = self.day.isoformat()
        return params


@dataclass(frozen=True)
class Scope:
    """Whose numbers (the desk's merchant, branches and resource) over which period."""

    desk: Desk
    period: Period

    @property
    def revenue_visible(self) -> bool:
        return self.desk.can("stats.revenue")

    @property
    def zone(self) -> Any:
        return timeutil.local_zone()

    def bookings(self, first: dt.date | None = None, last: dt.date | None = None) -> QuerySet[Booking]:
        """The desk's bookings visiting in the period (or ``first`` … ``last``), unordered for GROUP BY."""
        flt = BookingFilter(
            date_from=first or self.period.date_from,
            date_to=last or self.period.date_to,
            branch=self.period.branch.pk if self.period.branch else None,
        )
        return filter_bookings(self.desk, flt).order_by()

    def slots(
        self, first: dt.date | None = None, last: dt.date | None = None, *, open_only: bool = True
    ) -> QuerySet[Slot]:
        first, last = first or self.period.date_from, last or self.period.date_to
        qs = scope_slots(
            self.desk,
            Slot.objects.filter(
                start__gte=timeutil.local_datetime(first, dt.time.min),
                start__lt=timeutil.local_datetime(last + dt.timedelta(days=1), dt.time.min),
            ),
        )
        if open_only:
            qs = qs.filter(status=SlotStatus.OPEN)
        if self.period.branch is not None:
            qs = qs.filter(offering__branch_id=self.period.branch.pk)
        return qs.order_by()

    # Aggregates several blocks share, computed once per scope: one GROUP BY over the period's
    # bookings (per week and offering) serves the summary, the weekly trend, the top offerings
    # and the revenue; Python only adds up those few hundred subtotals.

    @functools.cached_property
    def tallies(self) -> list[dict[str, Any]]:
        """Per week (its Monday, local) and offering: counts, seats held and money (fen)."""
        rows = (
            self.bookings()
            .values("offering_id", week=TruncWeek("slot__start", tzinfo=self.zone))
            .annotate(
                **_counts(),
                holding=Count("pk", filter=Q(status__in=HOLDING)),
                seats=Sum("seats", filter=Q(status__in=HOLDING), default=0),
                booked_fen=Sum("amount_fen", filter=Q(status__in=KEPT), default=0),
                paid_fen=Sum("paid_fen", default=0),
            )
        )
        return [{**r, "week": _week_of(r["week"], self.zone)} for r in rows]

    @functools.cached_property
    def weeks(self) -> dict[dt.date, dict[str, int]]:
        return _totals_by(self.tallies, "week")

    @functools.cached_property
    def refund_weeks(self) -> dict[dt.date, int]:
        """Refunds (fen) per week of the visit, each once: for a refunded booking what reached the
        customer, for one still cancelled what the cancellation owes (e.g. a closed slot's full
        refund), as their booking events record them. Only the cancelled bookings are read, and
        their events are found through the event table's booking index."""
        rows = (
            self.bookings()
            .filter(status__in=CANCELLED, paid_fen__gt=0)  # refunds come out of what was paid online
            .values(week=TruncWeek("slot__start", tzinfo=self.zone))
            .annotate(
                refunded=Sum(_recorded_refund(Status.REFUNDED), filter=Q(status=Status.REFUNDED), default=0),
                owed=Sum(_recorded_refund(Status.CANCELLED), filter=Q(status=Status.CANCELLED), default=0),
            )
        )
        return {_week_of(r["week"], self.zone): r["refunded"] + r["owed"] for r in rows}

    @functools.cached_property
    def offering_fill(self) -> list[dict[str, Any]]:
        return _fill_rows(self.slots(), "offering_id", "offering__title", branch="offering__branch__name")

    def week_list(self) -> list[dt.date]:
        """Every week of the period, including those without bookings."""
        first = self.period.date_from - dt.timedelta(days=self.period.date_from.weekday())
        return [first + dt.timedelta(weeks=n) for n in range((self.period.date_to - first).days // 7 + 1)]


TALLIED = ("bookings", "cancelled", "no_show", "attended", "holding", "seats", "booked_fen", "paid_fen")


def _total(rows: Iterable[Mapping[str, Any]], *keys: str) -> dict[str, int]:
    """Totals of a few aggregated rows (weeks, offerings): the database did the counting."""
    rows = list(rows)
    return {key: sum(r[key] for r in rows) for key in keys}


def _totals_by(tallies: list[dict[str, Any]], key: str) -> dict[Any, dict[str, int]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in tallies:
        groups[row[key]].append(row)
    return {value: _total(rows, *TALLIED) for value, rows in groups.items()}


def _counts() -> dict[str, Any]:
    """The conditional counts every booking summary shares."""
    return {
        "bookings": Count("pk", filter=~Q(status__in=NOT_MADE)),
        "cancelled": Count("pk", filter=Q(status__in=CANCELLED)),
        "no_show": Count("pk", filter=Q(status=Status.NO_SHOW)),
        "attended": Count("pk", filter=Q(status__in=ATTENDED)),
    }


def _with_rates(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "bookings": row["bookings"],
        "cancelled": row["cancelled"],
        "no_show": row["no_show"],
        "attended": row["attended"],
        "cancellation_rate": rate(row["cancelled"], row["bookings"]),
        "no_show_rate": rate(row["no_show"], row["no_show"] + row["attended"]),
    }


def _week_of(value: dt.datetime | dt.date, zone: Any) -> dt.date:
    return value.astimezone(zone).date() if isinstance(value, dt.datetime) else value


# --- The blocks -----------------------------------------------------------------------------


@_aggregate_query
def summary(scope: Scope) -> dict[str, Any]:
    """Bookings, cancellations, no-shows and their rates; seats and capacity of the open slots."""
    counted = _total(scope.weeks.values(), "bookings", "cancelled", "no_show", "attended", "seats")
    fill = _total(scope.offering_fill, "capacity", "reserved")
    return {
        **_with_rates(counted),
        "seats": counted["seats"],
        "capacity": fill["capacity"],
        "reserved": fill["reserved"],
        "fill_rate": rate(fill["reserved"], fill["capacity"]),
    }


@_aggregate_query
def heatmap(scope: Scope) -> dict[str, Any]:
    """Seats booked by weekday (1 = Monday) × hour of the visit, local time: people, not orders.

    Counted on the open slots (``Slot.reserved`` is exactly the seats of the bookings holding
    them), so the database converts one start time per slot rather than one per booking: at a
    year of a busy merchant that is 18,000 conversions instead of 600,000 (2.5 × faster measured).
    """
    rows = (
        scope.slots()
        .values(
            weekday=ExtractIsoWeekDay("start", tzinfo=scope.zone),
            hour=ExtractHour("start", tzinfo=scope.zone),
        )
        .annotate(seats=Sum("reserved"))
        .order_by("weekday", "hour")
    )
    return {
        "weekdays": [str(WEEKDAYS[n]) for n in range(7)],
        "cells": [{"weekday": r["weekday"], "hour": r["hour"], "seats": r["seats"]} for r in rows if r["seats"]],
    }


@_aggregate_query
def weekly(scope: Scope) -> list[dict[str, Any]]:
    """Per week (Monday, local) of the period: bookings, cancellations, no-shows, visits and rates."""
    empty = {"bookings": 0, "cancelled": 0, "no_show": 0, "attended": 0}
    return [{"week_start": w, **_with_rates(scope.weeks.get(w, empty))} for w in scope.week_list()]


def _fill_rows(qs: QuerySet[Any], key: str, name: str, **extra: str) -> list[dict[str, Any]]:
    rows = (
        qs.values(key, name, *extra.values())
        .annotate(slots=Count("pk"), capacity=Sum("capacity"), reserved=Sum("reserved"))
        .order_by(name, key)
    )
    return [
        {
            "id": r[key],
            "name": r[name] or "",
            **{label: r[field] for label, field in extra.items()},
            "slots": r["slots"],
            "capacity": r["capacity"],
            "reserved": r["reserved"],
            "fill_rate": rate(r["reserved"], r["capacity"]),
        }
        for r in rows
    ]


@_aggregate_query
def fill_by_offering(scope: Scope) -> list[dict[str, Any]]:
    return scope.offering_fill


@_aggregate_query
def fill_by_branch(scope: Scope) -> list[dict[str, Any]]:
    """Offerings without a branch are one row with the id ``None`` (the merchant as a whole)."""
    rows = _fill_rows(scope.slots(), "offering__branch_id", "offering__branch__name")
    for row in rows:
        row["name"] = row["name"] or _("Whole merchant")
    return rows


@_aggregate_query
def fill_by_resource(scope: Scope) -> list[dict[str, Any]]:
    """Per coach, doctor, vehicle or room: the slots they serve (a slot with two counts for both)."""
    slots = scope.slots().filter(resources__isnull=False)
    if scope.desk.own_resource_only:  # a coach's slot may have a co-coach: show only their own row
        own = scope.desk.resource_id
        slots = slots.filter(resources__id=own) if own is not None else slots.none()
    return _fill_rows(slots, "resources__id", "resources__name", type="resources__type")


@_aggregate_query
def fill_by_slot(scope: Scope) -> list[dict[str, Any]]:
    """Every slot of the chosen day, closed ones too, in time order."""
    day = scope.period.day
    rows = (
        scope.slots(day, day, open_only=False)
        .values("pk", "start", "end", "status", "capacity", "reserved", "offering__title", "offering__branch__name")
        .order_by("start", "pk")[:MAX_SLOT_ROWS]
    )
    return [
        {
            "id": r["pk"],
            "start": r["start"].astimezone(scope.zone),
            "end": r["end"].astimezone(scope.zone),
            "offering": r["offering__title"],
            "branch": r["offering__branch__name"] or "",
            "status": r["status"],
            "capacity": r["capacity"],
            "reserved": r["reserved"],
            "fill_rate": rate(r["reserved"], r["capacity"]) if r["status"] == SlotStatus.OPEN else None,
        }
        for r in rows
    ]


@_aggregate_query
def top_offerings(scope: Scope) -> list[dict[str, Any]]:
    """The most booked offerings (bookings holding seats), with their booked value for owners and managers."""
    totals = {k: t for k, t in _totals_by(scope.tallies, "offering_id").items() if t["holding"]}
    titles = dict(Offering.objects.filter(pk__in=list(totals)).values_list("pk", "title"))
    ranked = sorted(totals, key=lambda pk: (-totals[pk]["holding"], titles.get(pk, ""), pk))[:TOP_OFFERINGS]
    return [
        {
            "id": pk,
            "name": titles.get(pk, ""),
            "bookings": totals[pk]["holding"],
            "seats": totals[pk]["seats"],
            "amount_fen": totals[pk]["booked_fen"] if scope.revenue_visible else None,
        }
        for pk in ranked
    ]


@_aggregate_query
def ratings(scope: Scope) -> list[dict[str, Any]]:
    """Coaches, doctors, drivers …: reviews of visits in the period and their average; ``overall``
    is the resource's rating over all time (kept by the booking engine)."""
    desk, period = scope.desk, scope.period
    # Joined from the reviews (a few per hundred bookings), found by their offering's merchant, to
    # their booking and slot, rather than matched against every booking of the period (half the
    # time at a year of a busy merchant): the same scope as ``Scope.bookings``.
    reviews = Review.objects.filter(
        offering__merchant=desk.merchant,
        booking__slot__start__gte=timeutil.local_datetime(period.date_from, dt.time.min),
        booking__slot__start__lt=timeutil.local_datetime(period.date_to + dt.timedelta(days=1), dt.time.min),
        resource__isnull=False,
    )
    if desk.branch_ids is not None:  # offerings without a branch belong to every branch
        reviews = reviews.filter(Q(offering__branch__in=desk.branch_ids) | Q(offering__branch__isnull=True))
    if period.branch is not None:
        reviews = reviews.filter(offering__branch_id=period.branch.pk)
    if desk.own_resource_only:
        reviews = reviews.filter(resource_id=desk.resource_id) if desk.resource_id is not None else reviews.none()
    rows = (
        reviews.values("resource_id", "resource__name", "resource__type", "resource__rating")
        .annotate(reviews=Count("pk"), average=Avg("rating"))
        .order_by("-average", "resource__name", "resource_id")
    )
    return [
        {
            "id": r["resource_id"],
            "name": r["resource__name"],
            "type": r["resource__type"],
            "reviews": r["reviews"],
            "average": round(float(r["average"]), 2),
            "overall": float(r["resource__rating"]) if r["resource__rating"] is not None else None,
        }
        for r in rows
    ]


def _recorded_refund(to_status: str) -> Subquery:
    """The ``refund_fen`` the booking's event into ``to_status`` records (None if it records none)."""
    return Subquery(
        BookingEvent.objects.filter(booking_id=OuterRef("pk"), to_status=to_status)
        .order_by()
        .values("booking_id")
        .annotate(refund_fen=Sum(Cast(KT("data__refund_fen"), BigIntegerField())))
        .values("refund_fen")[:1],
        output_field=BigIntegerField(),
    )


@_aggregate_query
def revenue(scope: Scope) -> dict[str, Any]:
    """Booked value, paid online, refunds and net, in total and per week (fen)."""
    if not scope.revenue_visible:
        raise DomainError("forbidden")
    weeks = []
    for start in scope.week_list():
        row = scope.weeks.get(start, {"booked_fen": 0, "paid_fen": 0})
        refund = scope.refund_weeks.get(start, 0)
        weeks.append(
            {
                "week_start": start,
                "booked_fen": row["booked_fen"],
                "paid_fen": row["paid_fen"],
                "refund_fen": refund,
                "net_fen": row["paid_fen"] - refund,
            }
        )
    totals = _total(weeks, "booked_fen", "paid_fen", "refund_fen", "net_fen")
    return {**totals, "weekly": weeks}


def _live_row(key: Any, name: str, capacity: int, booked: int, checked_in: int) -> dict[str, Any]:
    level = alert_level(checked_in, capacity)
    return {
        "id": key,
        "name": name,
        "capacity": capacity,
        "booked": booked,
        "checked_in": checked_in,
        "share": rate(checked_in, capacity),
        "level": level,
        "level_label": alert_label(level),
    }


@_aggregate_query
def live(scope: Scope, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Today (whatever the period): seats checked in against the capacity of today's open slots,
    per offering, per branch and in total, each with its alert level."""
    today = timeutil.local_date(now or timeutil.now())
    slots = scope.slots(today, today)
    checked = scope.bookings(today, today).filter(status__in=ATTENDED, checked_in_at__isnull=False)

    def grouped(key: str, name: str) -> list[dict[str, Any]]:
        seats = {r[key]: r["seats"] for r in checked.values(key).annotate(seats=Sum("seats"))}
        rows = slots.values(key, name).annotate(capacity=Sum("capacity"), booked=Sum("reserved")).order_by(name, key)
        return [
            _live_row(r[key], r[name] or _("Whole merchant"), r["capacity"], r["booked"], seats.get(r[key], 0))
            for r in rows
        ]

    total = slots.aggregate(capacity=Sum("capacity", default=0), booked=Sum("reserved", default=0))
    in_now = checked.aggregate(seats=Sum("seats", default=0))["seats"]
    return {
        "date": today,
        "total": _live_row(None, pgettext("stats", "Total"), total["capacity"], total["booked"], in_now),
        "by_offering": grouped("offering_id", "offering__title"),
        "by_branch": grouped("offering__branch_id", "offering__branch__name"),
    }


# --- The dashboard and its tables -----------------------------------------------------------

BLOCKS: dict[str, Callable[[Scope], Any]] = {
    "summary": summary,
    "heatmap": heatmap,
    "weekly": weekly,
    "fill_by_offering": fill_by_offering,
    "fill_by_branch": fill_by_branch,
    "fill_by_resource": fill_by_resource,
    "fill_by_slot": fill_by_slot,
    "top_offerings": top_offerings,
    "ratings": ratings,
    "revenue": revenue,
    "live": live,
}
REVENUE_BLOCKS = frozenset({"revenue"})


@_aggregate_query
def dashboard(scope: Scope) -> dict[str, Any]:
    """Every block the desk may see; ``revenue`` is None for roles that may not see money."""
    data: dict[str, Any] = {
        "period": {
            "date_from": scope.period.date_from,
            "date_to": scope.period.date_to,
            "day": scope.period.day,
            "branch": {"id": scope.period.branch.pk, "name": scope.period.branch.name} if scope.period.branch else None,
        },
    }
    for name, block in BLOCKS.items():
        data[name] = block(scope) if name not in REVENUE_BLOCKS or scope.revenue_visible else None
    return data


def _percent(value: float | None) -> Decimal | str:
    return (Decimal(str(value)) * 100).quantize(Decimal("0.1")) if value is not None else ""


def _yuan(fen: int | None) -> str:
    return money.fen_to_yuan(fen) if fen is not None else ""


def _columns() -> dict[str, str]:
    """CSV column headers (Chinese by default)."""
    return {
        "bookings": pgettext("stats column", "Bookings"),
        "cancelled": pgettext("stats column", "Cancelled"),
        "no_show": pgettext("stats column", "No-shows"),
        "attended": pgettext("stats column", "Visits"),
        "cancellation_rate": pgettext("stats column", "Cancellation rate (%)"),
        "no_show_rate": pgettext("stats column", "No-show rate (%)"),
        "slots": pgettext("stats column", "Slots"),
        "capacity": pgettext("stats column", "Capacity"),
        "reserved": pgettext("stats column", "Seats taken"),
        "fill_rate": pgettext("stats column", "Fill rate (%)"),
        "weekday": pgettext("stats column", "Weekday"),
        "hour": pgettext("stats column", "Hour"),
        "week": pgettext("stats column", "Week of"),
        "offering": pgettext("stats column", "Offering"),
        "branch": pgettext("stats column", "Branch"),
        "resource": pgettext("stats column", "Resource"),
        "start": pgettext("stats column", "Start"),
        "end": pgettext("stats column", "End"),
        "status": pgettext("stats column", "Status"),
        "seats": pgettext("stats column", "Seats"),
        "reviews": pgettext("stats column", "Reviews"),
        "average": pgettext("stats column", "Average rating"),
        "overall": pgettext("stats column", "Overall rating"),
        "booked_fen": pgettext("stats column", "Booked value (yuan)"),
        "paid_fen": pgettext("stats column", "Paid online (yuan)"),
        "refund_fen": pgettext("stats column", "Refunds (yuan)"),
        "net_fen": pgettext("stats column", "Net (yuan)"),
        "live_name": pgettext("stats column", "Offering or branch"),
        "capacity_today": pgettext("stats column", "Capacity today"),
        "booked": pgettext("stats column", "Booked"),
        "checked_in": pgettext("stats column", "Checked in"),
        "share": pgettext("stats column", "Checked in (%)"),
        "level": pgettext("stats column", "Alert level"),
    }


MONEY = ("booked_fen", "paid_fen", "refund_fen", "net_fen")


@_aggregate_query
def table(scope: Scope, name: str) -> tuple[list[str], list[list[Any]]]:
    """One block as a table (Chinese headers by default, money in yuan, rates in percent), for CSV."""
    if name not in BLOCKS:
        raise DomainError("not_found")
    if name in REVENUE_BLOCKS and not scope.revenue_visible:
        raise DomainError("forbidden")
    data = BLOCKS[name](scope)
    c = _columns()
    counted = [c[k] for k in ("bookings", "cancelled", "no_show", "attended", "cancellation_rate", "no_show_rate")]
    filled = [c[k] for k in ("slots", "capacity", "reserved", "fill_rate")]

    def counts(r: Mapping[str, Any]) -> list[Any]:
        numbers = [r["bookings"], r["cancelled"], r["no_show"], r["attended"]]
        return [*numbers, _percent(r["cancellation_rate"]), _percent(r["no_show_rate"])]

    def fill(r: Mapping[str, Any]) -> list[Any]:
        return [r["slots"], r["capacity"], r["reserved"], _percent(r["fill_rate"])]

    if name == "summary":
        return [*counted, c["reserved"], c["capacity"], c["fill_rate"]], [
            [*counts(data), data["reserved"], data["capacity"], _percent(data["fill_rate"])]
        ]
    if name == "heatmap":
        weekdays = data["weekdays"]
        return [c["weekday"], c["hour"], c["seats"]], [
            [weekdays[cell["weekday"] - 1], f"{cell['hour']:02d}:00", cell["seats"]] for cell in data["cells"]
        ]
    if name == "weekly":
        return [c["week"], *counted], [[w["week_start"].isoformat(), *counts(w)] for w in data]
    if name == "fill_by_offering":
        return [c["offering"], c["branch"], *filled], [[r["name"], r["branch"] or "", *fill(r)] for r in data]
    if name == "fill_by_branch":
        return [c["branch"], *filled], [[r["name"], *fill(r)] for r in data]
    if name == "fill_by_resource":
        return [c["resource"], *filled], [[r["name"], *fill(r)] for r in data]
    if name == "fill_by_slot":
        statuses = dict(SlotStatus.choices)
        headers = [c[k] for k in ("start", "end", "offering", "branch", "status", "capacity", "reserved", "fill_rate")]
        return headers, [
            [
                f"{r['start']:%Y-%m-%d %H:%M}",
                f"{r['end']:%H:%M}",
                r["offering"],
                r["branch"],
                str(statuses.get(r["status"], r["status"])),
                r["capacity"],
                r["reserved"],
                _percent(r["fill_rate"]),
            ]
            for r in data
        ]
    if name == "top_offerings":
        money = scope.revenue_visible
        headers = [c["offering"], c["bookings"], c["seats"], *([c["booked_fen"]] if money else [])]
        return headers, [
            [r["name"], r["bookings"], r["seats"], *([_yuan(r["amount_fen"])] if money else [])] for r in data
        ]
    if name == "ratings":
        return [c["resource"], c["reviews"], c["average"], c["overall"]], [
            [r["name"], r["reviews"], r["average"], "" if r["overall"] is None else r["overall"]] for r in data
        ]
    if name == "revenue":
        rows = [[w["week_start"].isoformat(), *(_yuan(w[k]) for k in MONEY)] for w in data["weekly"]]
        rows.append([pgettext("stats", "Total"), *(_yuan(data[k]) for k in MONEY)])
        return [c["week"], *(c[k] for k in MONEY)], rows
    # live: each offering, each branch, then the total
    headers = [c[k] for k in ("live_name", "capacity_today", "booked", "checked_in", "share", "level")]
    return headers, [
        [r["name"], r["capacity"], r["booked"], r["checked_in"], _percent(r["share"]), r["level_label"]]
        for r in [*data["by_offering"], *data["by_branch"], data["total"]]
    ]
