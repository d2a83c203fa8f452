"""Scheduling: turning weekly rules into bookable slots, and the few ways staff change a slot.

Slots are materialised rows (not computed on the fly) because ``Slot.reserved`` is the counter
the booking engine moves with a conditional UPDATE; a slot must exist before anyone can book it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from yuyue.booking import services as engine
from yuyue.booking.models import Booking, ResourceClaim
from yuyue.catalog.models import Offering, Resource
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling.models import ClosedDate, Schedule, Slot, SlotStatus
from yuyue.tenants.models import Branch, Merchant

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


# --------------------------------------------------------------------------------------------
# Set-up by staff: weekly rules, one-off slots, closures; resource conflicts refused at edit time
# --------------------------------------------------------------------------------------------

HORIZON_DAYS = 30  # as `yuyue slots generate`: a saved rule is materialised this far ahead at once
CONFLICT_DAYS = 366  # two weekly rules of one resource are compared day by day this far ahead


@dataclass(frozen=True)
class ScheduleSpec:
    """A weekly rule as a merchant types it into the editor."""

    start_time: dt.time
    end_time: dt.time
    capacity: int
    valid_from: dt.date
    weekdays: Sequence[int] = ()
    workdays_only: bool = False
    slot_minutes: int | None = None
    price_fen: int | None = None
    valid_until: dt.date | None = None
    resources: Sequence[Resource] = ()
    name: str = ""


@dataclass
class ScheduleChange:
    """What saving (or switching off) a rule did to its future slots, for the page to report."""

    schedule: Schedule
    created: int = 0
    updated: int = 0
    removed: int = 0
    kept: list[Slot] = field(default_factory=list)  # outside the rule now but booked: staff decide
    held: list[Slot] = field(default_factory=list)  # booked beyond the new capacity: kept at the booked count


def validate_schedule(*, offering: Offering, spec: ScheduleSpec) -> None:
    """Refuse a rule that cannot work, with a message next to each field; nothing is saved."""
    errors: dict[str, object] = {}
    if len(spec.name) > 100:
        errors["name"] = _("At most 100 characters.")
    if any(not isinstance(w, int) or not 0 <= w <= 6 for w in spec.weekdays):
        errors["weekdays"] = _("Unknown weekday.")
    elif not spec.workdays_only and not spec.weekdays:
        errors["weekdays"] = _("Pick at least one weekday.")
    if spec.end_time <= spec.start_time:
        errors["end_time"] = _("The end must be after the start.")
    elif spec.slot_minutes is not None:
        span = (
            dt.datetime.combine(dt.date.min, spec.end_time) - dt.datetime.combine(dt.date.min, spec.start_time)
        ).seconds
        if spec.slot_minutes < 5:
            errors["slot_minutes"] = _("A slot lasts at least 5 minutes.")
        elif spec.slot_minutes * 60 > span:
            errors["slot_minutes"] = _("A slot cannot be longer than the opening hours.")
    if spec.capacity < 1:
        errors["capacity"] = _("Capacity must be at least 1.")
    if spec.price_fen is not None and spec.price_fen < 0:
        errors["price_fen"] = _("The price cannot be negative.")
    if spec.valid_until is not None and spec.valid_until < spec.valid_from:
        errors["valid_until"] = _("The last day cannot be before the first day.")
    if any(r.merchant_id != offering.merchant_id for r in spec.resources):
        errors["resources"] = _("Resources must belong to the offering's merchant.")
    elif inactive := [r.name for r in spec.resources if not r.is_active]:
        errors["resources"] = _("%(names)s is not active.") % {"names": "、".join(inactive)}
    if errors:
        raise DomainError("invalid", fields=errors)


def save_schedule(
    *, offering: Offering, spec: ScheduleSpec, schedule: Schedule | None = None, now: dt.datetime | None = None
) -> ScheduleChange:
    """Create or edit a weekly rule and bring its future slots in line, in one transaction.

    The rule's resources are locked first, so two people saving overlapping rules for one coach
    queue up and the second is refused with ``conflict``. Future slots then follow the rule:
    new ones are created, capacity and price change (never below what is booked), slots the
    rule no longer covers are removed unless booked; booked ones are kept and reported.
    """
    now = now or timeutil.now()
    validate_schedule(offering=offering, spec=spec)
    if schedule is not None and schedule.offering_id != offering.pk:
        raise DomainError("invalid", fields={"offering": _("This rule belongs to another offering.")})
    resource_ids = sorted({r.pk for r in spec.resources})

    def work() -> ScheduleChange:
        with transaction.atomic():
            _lock_resources(resource_ids)
            before: Schedule | None = None
            if schedule is None:
                rule = Schedule(offering=offering, is_active=True)
            else:
                rule = Schedule.objects.select_for_update().select_related("offering").get(pk=schedule.pk)
                before = Schedule(capacity=rule.capacity, price_fen=rule.price_fen)
            rule.name = spec.name.strip()
            rule.weekdays = sorted({int(w) for w in spec.weekdays})
            rule.workdays_only = spec.workdays_only
            rule.start_time, rule.end_time = spec.start_time, spec.end_time
            rule.slot_minutes = spec.slot_minutes or None
            rule.capacity, rule.price_fen = spec.capacity, spec.price_fen
            rule.valid_from, rule.valid_until = spec.valid_from, spec.valid_until
            if rule.is_active:
                _refuse_rule_conflict(rule, resource_ids, now)
            rule.save()
            rule.resources.set(resource_ids)
            return _apply_rule(
                rule,
                now,
                capacity="all" if before is None or before.capacity != rule.capacity else "none",
                price=before is None or before.price_fen != rule.price_fen,
            )

    return engine.with_retries(work)


def set_schedule_active(*, schedule: Schedule, active: bool, now: dt.datetime | None = None) -> ScheduleChange:
    """Switch a rule off (its empty future slots go, booked ones stay and are reported) or on again."""
    now = now or timeutil.now()

    def work() -> ScheduleChange:
        with transaction.atomic():
            resource_ids = sorted(schedule.resources.values_list("pk", flat=True))
            if active:
                _lock_resources(resource_ids)
            rule = Schedule.objects.select_for_update().select_related("offering").get(pk=schedule.pk)
            if active and not rule.is_active:
                _refuse_rule_conflict(rule, resource_ids, now)
            rule.is_active = active
            rule.save(update_fields=["is_active"])
            return _apply_rule(rule, now)

    return engine.with_retries(work)


def refresh_offering_slots(*, offering: Offering, now: dt.datetime | None = None) -> list[ScheduleChange]:
    """Re-apply every rule of an offering, e.g. after its holiday policy changed."""
    now = now or timeutil.now()
    changes = []
    for schedule in Schedule.objects.filter(offering=offering, is_active=True).order_by("pk"):
        with transaction.atomic():
            rule = Schedule.objects.select_for_update().select_related("offering").get(pk=schedule.pk)
            changes.append(_apply_rule(rule, now, capacity="holidays"))
    return changes


def _lock_resources(resource_ids: Sequence[int]) -> None:
    """Invariant 3 at edit time: whoever holds a resource's row lock decides where it is (pk order: no deadlock)."""
    if resource_ids:
        list(Resource.objects.select_for_update().filter(pk__in=resource_ids).order_by("pk").values_list("pk"))


def _apply_rule(rule: Schedule, now: dt.datetime, *, capacity: str = "none", price: bool = False) -> ScheduleChange:
    """Make the rule's open future slots match it, then create the missing ones.

    ``capacity`` says which covered slots take the rule's capacity: "all" (the rule's capacity
    changed), "holidays" (the holiday rule changed) or "none"; ``price`` whether they take its
    price. Otherwise a capacity set on a single slot (a bigger room that day) is kept.
    """
    change = ScheduleChange(schedule=rule)
    existing = list(Slot.objects.filter(schedule=rule, status=SlotStatus.OPEN, start__gte=now).order_by("start"))
    wanted: dict[dt.datetime, Slot] = {}
    if existing and rule.is_active and rule.offering.is_active:
        first, last = timeutil.local_date(existing[0].start), timeutil.local_date(existing[-1].start)
        calendar = _offering_calendar(rule.offering, first, last)
        wanted = {s.start: s for s in _slots_of(rule, calendar, first, last)}
    covered: dict[tuple[int, bool], list[int]] = defaultdict(list)  # (capacity, holiday) -> slot ids
    gone: list[int] = []
    for slot in existing:
        target = wanted.get(slot.start)
        if target is not None and target.end == slot.end:
            covered[target.capacity, target.is_holiday].append(slot.pk)
        else:
            gone.append(slot.pk)

    covered_ids = [pk for ids in covered.values() for pk in ids]
    if price and covered_ids:
        Slot.objects.filter(pk__in=covered_ids).update(price_fen=rule.price_fen)
    for (target_capacity, holiday), ids in covered.items():
        if capacity == "none" or (capacity == "holidays" and not holiday):
            continue
        # One UPDATE per row decides against the current count: a racing booking cannot be undercut.
        Slot.objects.filter(pk__in=ids).update(capacity=Greatest(F("reserved"), Value(target_capacity)))
        change.held += list(Slot.objects.filter(pk__in=ids, capacity__gt=target_capacity))
    change.updated = len(covered_ids) if (price or capacity != "none") else 0
    _sync_resources(covered_ids, sorted(rule.resources.values_list("pk", flat=True)))

    if gone:
        # Closing first (only while nothing is booked) stops new bookings; the slot leaves the rule,
        # so the rule can make it again should it cover that time later.
        empty = list(Slot.objects.filter(pk__in=gone, reserved=0).values_list("pk", flat=True))
        Slot.objects.filter(pk__in=empty, reserved=0, status=SlotStatus.OPEN).update(
            status=SlotStatus.CLOSED, schedule=None
        )
        closed = list(
            Slot.objects.filter(pk__in=empty, status=SlotStatus.CLOSED, schedule__isnull=True).values_list(
                "pk", flat=True
            )
        )
        # Never booked at all: delete. Slots with cancelled bookings stay closed, as history.
        Slot.objects.filter(pk__in=closed).exclude(
            pk__in=Booking.objects.filter(slot_id__in=closed).values("slot_id")
        ).delete()
        change.removed = len(closed)
        change.kept = list(Slot.objects.filter(pk__in=gone, status=SlotStatus.OPEN).order_by("start"))

    if rule.is_active:
        change.created = generate_slots(offering=rule.offering, start=timeutil.local_date(now), days=HORIZON_DAYS)
    return change


def _sync_resources(slot_ids: list[int], resource_ids: list[int]) -> None:
    """Give slots the rule's resources; booked slots move their resource claims along."""
    if not slot_ids:
        return
    through = Slot.resources.through
    through.objects.filter(slot_id__in=slot_ids).exclude(resource_id__in=resource_ids).delete()
    have = set(through.objects.filter(slot_id__in=slot_ids).values_list("slot_id", "resource_id"))
    through.objects.bulk_create(
        [through(slot_id=s, resource_id=r) for s in slot_ids for r in resource_ids if (s, r) not in have],
        ignore_conflicts=True,
    )
    ResourceClaim.objects.filter(slot_id__in=slot_ids).exclude(resource_id__in=resource_ids).delete()
    claimed = set(ResourceClaim.objects.filter(slot_id__in=slot_ids).values_list("slot_id", "resource_id"))
    booked = Slot.objects.filter(pk__in=slot_ids, reserved__gt=0).values_list("pk", "start", "end")
    new = [
        ResourceClaim(resource_id=r, slot_id=pk, starts_at=start, ends_at=end)
        for pk, start, end in booked
        for r in resource_ids
        if (pk, r) not in claimed
    ]
    if new:
        try:
            with transaction.atomic():
                ResourceClaim.objects.bulk_create(new)
        except IntegrityError:  # PostgreSQL's exclusion constraint: busy elsewhere after all
            raise DomainError("conflict") from None


# --- conflicts ---------------------------------------------------------------------------------


def _when(day: dt.date, start: dt.datetime | dt.time, end: dt.datetime | dt.time) -> str:
    """A day and times as staff read them, e.g. 2026-12-01（星期二）09:00–10:00, in the merchant's zone."""
    zone = timeutil.local_zone()
    start_t = start.astimezone(zone) if isinstance(start, dt.datetime) else start
    end_t = end.astimezone(zone) if isinstance(end, dt.datetime) else end
    return f"{day.isoformat()}（{WEEKDAYS[day.weekday()]}）{start_t:%H:%M}–{end_t:%H:%M}"


def _conflict(resource: Resource, offering: Offering, when: str) -> DomainError:
    message = _("%(resource)s is already scheduled for “%(offering)s” on %(when)s.") % {
        "resource": resource.name,
        "offering": offering.title,
        "when": when,
    }
    return DomainError("conflict", message, fields={"resources": message})


def _refuse_rule_conflict(rule: Schedule, resource_ids: Sequence[int], now: dt.datetime) -> None:
    """Refuse a rule that would put one of its resources in two places: against other rules, day
    by day for a year, and against slots that already exist (one-off ones included)."""
    if not resource_ids:
        return
    first = max(timeutil.local_date(now), rule.valid_from)
    last = first + dt.timedelta(days=CONFLICT_DAYS - 1)
    if rule.valid_until is not None:
        last = min(last, rule.valid_until)
    if last < first:
        return
    mine = _offering_calendar(rule.offering, first, last)
    my_days = {int(w) for w in rule.weekdays}
    resources = {r.pk: r for r in Resource.objects.filter(pk__in=resource_ids)}

    others = (
        Schedule.objects.filter(is_active=True, offering__is_active=True, resources__in=resource_ids)
        .filter(valid_from__lte=last)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=first))
        .select_related("offering")
        .prefetch_related("resources")
        .distinct()
        .order_by("pk")
    )
    if rule.pk:
        others = others.exclude(pk=rule.pk)
    for other in others:
        if not (other.start_time < rule.end_time and rule.start_time < other.end_time):
            continue
        shared = next(resources[r.pk] for r in other.resources.all() if r.pk in resources)
        lo, hi = max(first, other.valid_from), min(last, other.valid_until or last)
        theirs = _offering_calendar(other.offering, lo, hi)
        their_days = {int(w) for w in other.weekdays}
        day = lo
        while day <= hi:
            if _opens_on(rule, my_days, mine, day) and _opens_on(other, their_days, theirs, day):
                for a_start, a_end in _pieces(rule, day):
                    for b_start, b_end in _pieces(other, day):
                        if a_start < b_end and b_start < a_end:
                            raise _conflict(shared, other.offering, _when(day, b_start, b_end))
            day += ONE_DAY

    lower = timeutil.local_datetime(first, dt.time.min)
    upper = timeutil.local_datetime(last + ONE_DAY, dt.time.min)
    slots = (
        Slot.objects.filter(status=SlotStatus.OPEN, offering__is_active=True, resources__in=resource_ids)
        .filter(end__gt=max(now, lower), start__lt=upper)
        .select_related("offering")
        .prefetch_related("resources")
        .distinct()
        .order_by("start")
    )
    if rule.pk:
        slots = slots.exclude(schedule=rule)
    for slot in slots:
        for day in sorted({timeutil.local_date(slot.start), timeutil.local_date(slot.end - dt.timedelta(seconds=1))}):
            if not (first <= day <= last and _opens_on(rule, my_days, mine, day)):
                continue
            if any(start < slot.end and slot.start < end for start, end in _pieces(rule, day)):
                shared = next(resources[r.pk] for r in slot.resources.all() if r.pk in resources)
                raise _conflict(shared, slot.offering, _when(timeutil.local_date(slot.start), slot.start, slot.end))


def _refuse_slot_conflict(
    *, start: dt.datetime, end: dt.datetime, resource_ids: Sequence[int], exclude_slot_id: int | None = None
) -> None:
    """Refuse a single slot that puts a resource in two places: against open slots, and rules' times not yet slots."""
    if not resource_ids:
        return
    resources = {r.pk: r for r in Resource.objects.filter(pk__in=resource_ids)}
    busy = (
        Slot.objects.filter(status=SlotStatus.OPEN, offering__is_active=True, resources__in=resource_ids)
        .filter(start__lt=end, end__gt=start)
        .select_related("offering")
        .prefetch_related("resources")
        .distinct()
        .order_by("start")
    )
    if exclude_slot_id is not None:
        busy = busy.exclude(pk=exclude_slot_id)
    for slot in busy[:1]:
        shared = next(resources[r.pk] for r in slot.resources.all() if r.pk in resources)
        raise _conflict(shared, slot.offering, _when(timeutil.local_date(slot.start), slot.start, slot.end))

    days = sorted({timeutil.local_date(start), timeutil.local_date(end - dt.timedelta(seconds=1))})
    rules = (
        Schedule.objects.filter(is_active=True, offering__is_active=True, resources__in=resource_ids)
        .filter(valid_from__lte=days[-1])
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=days[0]))
        .select_related("offering")
        .prefetch_related("resources")
        .distinct()
        .order_by("pk")
    )
    for rule in rules:
        calendar = _offering_calendar(rule.offering, days[0], days[-1])
        weekdays = {int(w) for w in rule.weekdays}
        for day in days:
            if not (rule.valid_from <= day and (rule.valid_until is None or day <= rule.valid_until)):
                continue
            if not _opens_on(rule, weekdays, calendar, day):
                continue
            pieces = [(s, e) for s, e in _pieces(rule, day) if s < end and start < e]
            # A time the rule already made into a slot is judged by that slot (above), open or closed.
            made = set(
                Slot.objects.filter(schedule=rule, start__in=[s for s, _e in pieces]).values_list("start", flat=True)
            )
            for piece_start, piece_end in pieces:
                if piece_start not in made:
                    shared = next(resources[r.pk] for r in rule.resources.all() if r.pk in resources)
                    raise _conflict(shared, rule.offering, _when(day, piece_start, piece_end))


# --- one-off slots ---------------------------------------------------------------------------------


def add_slot(
    *,
    offering: Offering,
    start: dt.datetime,
    end: dt.datetime,
    capacity: int,
    resources: Sequence[Resource] = (),
    price_fen: int | None = None,
    now: dt.datetime | None = None,
) -> Slot:
    """A one-off slot made by staff: in the future, and never putting a resource in two places."""
    now = now or timeutil.now()
    zone = timeutil.local_zone()
    start = timezone.make_aware(start, zone) if timezone.is_naive(start) else start
    end = timezone.make_aware(end, zone) if timezone.is_naive(end) else end
    if start <= now:
        raise DomainError("invalid", fields={"start": _("The start must be in the future.")})
    if inactive := [r.name for r in resources if not r.is_active]:
        raise DomainError(
            "invalid", fields={"resources": _("%(names)s is not active.") % {"names": "、".join(inactive)}}
        )
    resource_ids = sorted({r.pk for r in resources})

    def work() -> Slot:
        with transaction.atomic():
            _lock_resources(resource_ids)
            if end > start:
                _refuse_slot_conflict(start=start, end=end, resource_ids=resource_ids)
            return create_slot(
                offering=offering, start=start, end=end, capacity=capacity, resources=resources, price_fen=price_fen
            )

    return engine.with_retries(work)


def reopen_slot(*, slot: Slot, now: dt.datetime | None = None) -> Slot:
    """Open a closed slot again (bookings cancelled by the closure stay cancelled), if its resources are free."""
    now = now or timeutil.now()
    slot.refresh_from_db()
    if slot.status != SlotStatus.CLOSED:
        raise DomainError("not_allowed", _("This time slot is open."))
    if slot.end <= now:
        raise DomainError("not_allowed", _("This time is already over."))
    resource_ids = sorted(slot.resources.values_list("pk", flat=True))

    def work() -> Slot:
        with transaction.atomic():
            _lock_resources(resource_ids)
            _refuse_slot_conflict(start=slot.start, end=slot.end, resource_ids=resource_ids, exclude_slot_id=slot.pk)
            if not Slot.objects.filter(pk=slot.pk, status=SlotStatus.CLOSED).update(status=SlotStatus.OPEN):
                raise DomainError("not_allowed", _("This time slot is open."))
        slot.refresh_from_db()
        return slot

    return engine.with_retries(work)


# --- closing a slot or a whole day -----------------------------------------------------------


def close_slot(*, slot: Slot, reason: str, by: User | None, now: dt.datetime | None = None) -> engine.SlotClosure:
    """Close one slot: nobody can book it any more and its bookings are cancelled with the reason."""
    now = now or timeutil.now()
    if not (reason or "").strip():
        raise DomainError("invalid", fields={"reason": _("Please give a reason: customers are told it.")})
    if slot.end <= now:
        raise DomainError("not_allowed", _("This time is already over."))
    if slot.status == SlotStatus.CLOSED:
        raise DomainError("not_allowed", _("This time slot is already closed."))
    closure = engine.cancel_for_closure(slot_id=slot.pk, by=by, reason=reason, now=now)
    slot.refresh_from_db()
    return closure


@dataclass(frozen=True)
class ClosurePreview:
    """What closing a day would do, shown before the merchant confirms."""

    slots: int
    bookings: int
    seats: int
    refund_fen: int


@dataclass(frozen=True)
class DayClosure:
    closed_date: ClosedDate
    closures: list[engine.SlotClosure]

    @property
    def cancelled(self) -> int:
        return sum(len(c.cancelled) for c in self.closures)

    @property
    def untouched(self) -> int:
        return sum(len(c.untouched) for c in self.closures)

    @property
    def refund_fen(self) -> int:
        return sum(c.refund_fen for c in self.closures)


def _check_day_scope(
    *, merchant: Merchant, day: dt.date, branch: Branch | None, offering: Offering | None, now: dt.datetime
) -> None:
    errors: dict[str, object] = {}
    if day < timeutil.local_date(now):
        errors["date"] = _("That day is over.")
    if branch is not None and branch.merchant_id != merchant.pk:
        errors["branch"] = _("Choose one of your branches.")
    if offering is not None and offering.merchant_id != merchant.pk:
        errors["offering"] = _("Choose one of your offerings.")
    if errors:
        raise DomainError("invalid", fields=errors)


def day_slots(
    *,
    merchant: Merchant,
    day: dt.date,
    branch: Branch | None = None,
    offering: Offering | None = None,
    now: dt.datetime | None = None,
) -> QuerySet[Slot]:
    """The open, not yet finished slots a closure of this day and scope reaches (as ClosedDate reaches offerings)."""
    now = now or timeutil.now()
    lower = timeutil.local_datetime(day, dt.time.min)
    slots = Slot.objects.filter(
        offering__merchant=merchant,
        status=SlotStatus.OPEN,
        start__gte=lower,
        start__lt=lower + ONE_DAY,
        end__gt=now,
    )
    if offering is not None:
        slots = slots.filter(offering=offering)
    elif branch is not None:
        slots = slots.filter(offering__branch=branch)
    return slots.order_by("start", "pk")


def closure_preview(
    *,
    merchant: Merchant,
    day: dt.date,
    branch: Branch | None = None,
    offering: Offering | None = None,
    now: dt.datetime | None = None,
) -> ClosurePreview:
    """How many slots and bookings closing the day would touch (counted now; the closure counts again)."""
    now = now or timeutil.now()
    _check_day_scope(merchant=merchant, day=day, branch=branch, offering=offering, now=now)
    slots = day_slots(merchant=merchant, day=day, branch=branch, offering=offering, now=now)
    bookings = Booking.objects.filter(slot__in=slots, status__in=engine.CANCELLABLE)
    return ClosurePreview(
        slots=slots.count(),
        bookings=bookings.count(),
        seats=sum(bookings.values_list("seats", flat=True)),
        refund_fen=sum(bookings.values_list("paid_fen", flat=True)),
    )


def close_day(
    *,
    merchant: Merchant,
    day: dt.date,
    reason: str,
    by: User | None,
    branch: Branch | None = None,
    offering: Offering | None = None,
    now: dt.datetime | None = None,
) -> DayClosure:
    """Close a day for the whole merchant, one branch or one offering (a typhoon, a holiday).

    The ClosedDate is recorded first, so no rule makes new slots that day; then every open slot
    is closed in its own transaction, cancelling its bookings with the reason.
    """
    now = now or timeutil.now()
    reason = (reason or "").strip()
    _check_day_scope(merchant=merchant, day=day, branch=branch, offering=offering, now=now)
    if not reason:
        raise DomainError("invalid", fields={"reason": _("Please give a reason: customers are told it.")})
    if offering is not None:
        branch = None  # an offering is the narrowest scope
    with transaction.atomic():
        closed_date, _created = ClosedDate.objects.update_or_create(
            merchant=merchant, branch=branch, offering=offering, date=day, defaults={"reason": reason[:200]}
        )
    closures = []
    for slot in day_slots(merchant=merchant, day=day, branch=branch, offering=offering, now=now):
        try:
            closures.append(close_slot(slot=slot, reason=reason, by=by, now=now))
        except DomainError as exc:
            if exc.code != "not_allowed":  # closed or over meanwhile: nothing left to do for it
                raise
    return DayClosure(closed_date=closed_date, closures=closures)


def remove_closed_date(*, closed_date: ClosedDate) -> None:
    """Forget a closed day: rules make its missing slots again; slots closed that day stay closed until reopened."""
    closed_date.delete()
