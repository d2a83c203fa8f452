"""Scheduling: turning weekly rules into bookable slots, and the few ways staff change a slot.

Slots are materialised rows (not computed on the fly) because ``Slot.reserved`` is the counter
the booking engine moves with a conditional UPDATE; a slot must exist before anyone can book it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from yuyue.catalog.models import Offering, Resource
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import ClosedDate, Schedule, Slot

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class _OfferingCalendar:
    """What a schedule needs to know about its offering's days, looked up once per offering."""

    closed: frozenset[dt.date]
    holiday_mode: str
    holiday_factor: float


def generate_slots(*, days: int = 30, start: dt.date | None = None, offering: Offering | None = None) -> int:
    """Materialise slots from the active schedules of active offerings for ``days`` local dates.

    Safe to run again and again (from cron, after editing a schedule, concurrently): slots that
    already exist are left alone. Returns how many slots were created.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    if days == 0:
        return 0
    first = start or timeutil.today()
    last = first + dt.timedelta(days=days - 1)

    schedules = (
        Schedule.objects.filter(is_active=True, offering__is_active=True, valid_from__lte=last)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=first))
        .select_related("offering")
        .order_by("offering_id", "id")
    )
    if offering is not None:
        schedules = schedules.filter(offering=offering)

    calendars: dict[int, _OfferingCalendar] = {}
    created = 0
    for schedule in schedules:
        calendar = calendars.get(schedule.offering_id)
        if calendar is None:
            calendar = calendars[schedule.offering_id] = _offering_calendar(schedule.offering, first, last)
        created += _generate_for_schedule(schedule, calendar, first, last)
    return created


def _offering_calendar(offering: Offering, first: dt.date, last: dt.date) -> _OfferingCalendar:
    """Closed dates that reach this offering (merchant-wide, its branch, itself) and its holiday policy."""
    closed = ClosedDate.objects.filter(merchant_id=offering.merchant_id, date__range=(first, last)).filter(
        Q(branch__isnull=True) | Q(branch_id=offering.branch_id),
        Q(offering__isnull=True) | Q(offering_id=offering.pk),
    )
    policy = offering.policy
    return _OfferingCalendar(
        closed=frozenset(closed.values_list("date", flat=True)),
        holiday_mode=policy.holiday_mode,
        holiday_factor=policy.holiday_capacity_factor,
    )


def _generate_for_schedule(schedule: Schedule, calendar: _OfferingCalendar, first: dt.date, last: dt.date) -> int:
    """Create the missing slots of one schedule, holding its row lock so concurrent runs queue up.

    Under the lock the set of existing slots cannot change, so "missing" is exact and the count
    returned is true. ``ignore_conflicts`` stays as a safety net behind the unique (schedule,
    start) constraint; it is why new slots are read back instead of trusting returned ids (MySQL
    does not return them).
    """
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().filter(pk=schedule.pk, is_active=True).first()
        if locked is None:  # deactivated or deleted since the list was read
            return 0
        wanted = {slot.start: slot for slot in _slots_of(locked, calendar, first, last)}
        if not wanted:
            return 0
        existing = set(
            Slot.objects.filter(
                schedule=locked,
                start__gte=min(wanted),
                start__lte=max(wanted),
            ).values_list("start", flat=True)
        )
        new = [slot for start, slot in wanted.items() if start not in existing]
        if not new:
            return 0
        Slot.objects.bulk_create(new, ignore_conflicts=True)

        resource_ids = list(locked.resources.values_list("id", flat=True))
        if resource_ids:
            slot_ids = Slot.objects.filter(schedule=locked, start__in=[s.start for s in new]).values_list(
                "id", flat=True
            )
            through = Slot.resources.through
            through.objects.bulk_create(
                [through(slot_id=slot_id, resource_id=rid) for slot_id in slot_ids for rid in resource_ids],
                ignore_conflicts=True,
            )
        return len(new)


def _slots_of(schedule: Schedule, calendar: _OfferingCalendar, first: dt.date, last: dt.date) -> Iterator[Slot]:
    """The (unsaved) slots a schedule asks for on the dates first..last, following the day rules."""
    first = max(first, schedule.valid_from)
    if schedule.valid_until is not None:
        last = min(last, schedule.valid_until)
    weekdays = {int(w) for w in schedule.weekdays}

    day = first
    while day <= last:
        if _opens_on(schedule, weekdays, calendar, day):
            holiday = timeutil.is_statutory_holiday(day)
            capacity = schedule.capacity
            if holiday and calendar.holiday_mode == "factor":
                capacity = _holiday_capacity(schedule.capacity, calendar.holiday_factor)
            for start, end in _pieces(schedule, day):
                yield Slot(
                    offering_id=schedule.offering_id,
                    schedule=schedule,
                    start=start,
                    end=end,
                    capacity=capacity,
                    price_fen=schedule.price_fen,
                    is_holiday=holiday,
                )
        day += ONE_DAY


def _opens_on(schedule: Schedule, weekdays: set[int], calendar: _OfferingCalendar, day: dt.date) -> bool:
    """Whether a schedule has slots on a day: its weekday rule, then closures, then holidays."""
    if schedule.workdays_only:
        # The official calendar already closes holidays and opens make-up working days (调休).
        if not timeutil.is_workday(day):
            return False
    elif day.weekday() not in weekdays:
        return False
    if day in calendar.closed:
        return False
    return not (calendar.holiday_mode == "closed" and timeutil.is_statutory_holiday(day))


def _holiday_capacity(capacity: int, factor: float) -> int:
    """Capacity on a statutory holiday: scaled down, rounded down, but never zero.

    The factor goes through its decimal spelling so that 0.57 of 100 is 57, not the 56 that
    binary floating point would give.
    """
    return max(1, math.floor(capacity * Decimal(repr(factor))))


def _pieces(schedule: Schedule, day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The schedule's hours on one day, whole or cut into slot_minutes pieces (a short tail is dropped)."""
    start = timeutil.local_datetime(day, schedule.start_time)
    end = timeutil.local_datetime(day, schedule.end_time)
    if not schedule.slot_minutes:
        yield start, end
        return
    step = dt.timedelta(minutes=schedule.slot_minutes)
    while start + step <= end:
        yield start, start + step
        start += step


def create_slot(
    *,
    offering: Offering,
    start: dt.datetime,
    end: dt.datetime,
    capacity: int,
    resources: Sequence[Resource] = (),
    price_fen: int | None = None,
) -> Slot:
    """A one-off slot outside any schedule (an extra class, a special opening).

    Naive times are read as local time (settings.TIME_ZONE), as a merchant would mean them.
    """
    zone = timeutil.local_zone()
    if timezone.is_naive(start):
        start = timezone.make_aware(start, zone)
    if timezone.is_naive(end):
        end = timezone.make_aware(end, zone)

    errors: dict[str, object] = {}
    if end <= start:
        errors["end"] = _("The end must be after the start.")
    if capacity < 1:
        errors["capacity"] = _("Capacity must be at least 1.")
    if price_fen is not None and price_fen < 0:
        errors["price_fen"] = _("The price cannot be negative.")
    if any(r.merchant_id != offering.merchant_id for r in resources):
        errors["resources"] = _("Resources must belong to the offering's merchant.")
    if errors:
        raise DomainError("invalid", fields=errors)

    with transaction.atomic():
        slot = Slot.objects.create(
            offering=offering,
            start=start,
            end=end,
            capacity=capacity,
            price_fen=price_fen,
            is_holiday=timeutil.is_statutory_holiday(timeutil.local_date(start)),
        )
        if resources:
            slot.resources.set(resources)
    return slot


def change_capacity(*, slot_id: int, capacity: int) -> Slot:
    """Set a slot's capacity, never below the places already booked.

    One conditional UPDATE decides, so a booking racing this change cannot end up oversold.
    """
    if capacity < 1:
        raise DomainError("invalid", fields={"capacity": _("Capacity must be at least 1.")})
    if Slot.objects.filter(pk=slot_id, reserved__lte=capacity).update(capacity=capacity):
        return Slot.objects.get(pk=slot_id)

    reserved = Slot.objects.filter(pk=slot_id).values_list("reserved", flat=True).first()
    if reserved is None:
        raise DomainError("not_found")
    message = ngettext_lazy(
        "%(reserved)d place is already booked; the capacity cannot be lower.",
        "%(reserved)d places are already booked; the capacity cannot be lower.",
        "reserved",
    ) % {"reserved": reserved}
    raise DomainError("invalid", fields={"capacity": message}, reserved=reserved)
