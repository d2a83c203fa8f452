"""Console pages for setting up: calendar, weekly rules, one-off slots, closures, resources, offerings.

Thin like every front door: parse with a form, call a service of ``scheduling`` or ``catalog``,
write the audit entry, show the result or the rule that refused it. Every query goes through the
console's ``scope_*`` functions, so another merchant's row is never listed and is a 404 by id.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dates import WEEKDAYS
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yuyue.booking.models import ACTIVE_STATUSES, Booking
from yuyue.catalog import services as catalog
from yuyue.catalog.kinds import KINDS
from yuyue.catalog.models import Offering, Resource
from yuyue.console import forms_setup as forms
from yuyue.console.access import (
    Desk,
    audit,
    console_view,
    get_scoped_or_404,
    scope_bookings,
    scope_branches,
    scope_offerings,
    scope_resources,
    scope_slots,
)
from yuyue.core import money, timeutil
from yuyue.core.errors import DomainError
from yuyue.scheduling import services as scheduling
from yuyue.scheduling.models import ClosedDate, Schedule, Slot, SlotStatus
from yuyue.tenants.models import Branch


def _desk(request: HttpRequest) -> Desk:
    return request.desk  # type: ignore[attr-defined,no-any-return]


def _scoped_schedules(desk: Desk) -> QuerySet[Schedule]:
    schedules = Schedule.objects.filter(offering__in=scope_offerings(desk, Offering.objects.all()))
    if desk.own_resource_only:
        schedules = schedules.filter(resources=desk.resource_id) if desk.resource_id else schedules.none()
    return schedules


def _scoped_closed_dates(desk: Desk) -> QuerySet[ClosedDate]:
    dates = ClosedDate.objects.filter(merchant=desk.merchant)
    if desk.branch_ids is not None:
        dates = dates.filter(Q(branch__in=desk.branch_ids) | Q(offering__branch__in=desk.branch_ids))
    return dates


def _refusal_message(exc: DomainError) -> str:
    details = "；".join(str(v) for v in exc.fields.values() if str(v) != exc.message)
    return f"{exc.message} {details}".strip()


def _report_change(request: HttpRequest, change: scheduling.ScheduleChange) -> None:
    """Tell staff what happened to the rule's slots, and above all which booked slots need them."""
    messages.success(
        request,
        _("Saved. Slots: %(created)d new, %(updated)d updated, %(removed)d removed.")
        % {"created": change.created, "updated": change.updated, "removed": change.removed},
    )
    if change.held:
        messages.warning(
            request,
            ngettext(
                "%(n)d slot has more bookings than the new capacity; its capacity stays at the booked count.",
                "%(n)d slots have more bookings than the new capacity; their capacity stays at the booked count.",
                len(change.held),
            )
            % {"n": len(change.held)},
        )
    if change.kept:
        when = "、".join(
            f"{timeutil.local_date(s.start):%m-%d} {s.start.astimezone(timeutil.local_zone()):%H:%M}"
            for s in change.kept[:10]
        )
        messages.warning(
            request,
            ngettext(
                "%(n)d slot outside the new rule has bookings and stays open (%(when)s): close it from the calendar "
                "to cancel them, or keep it.",
                "%(n)d slots outside the new rule have bookings and stay open (%(when)s): close them from the "
                "calendar to cancel them, or keep them.",
                len(change.kept),
            )
            % {"n": len(change.kept), "when": when},
        )


# --- calendar ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarSlot:
    slot: Slot
    fill: int  # percent of capacity booked
    band: str  # CSS class: closed, empty, low, mid, high, full


def _band(slot: Slot) -> CalendarSlot:
    fill = round(100 * slot.reserved / slot.capacity) if slot.capacity else 100
    if slot.status == SlotStatus.CLOSED:
        band = "closed"
    elif slot.reserved >= slot.capacity:
        band = "full"
    elif fill >= 80:
        band = "high"
    elif fill >= 50:
        band = "mid"
    elif slot.reserved:
        band = "low"
    else:
        band = "empty"
    return CalendarSlot(slot=slot, fill=fill, band=band)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@console_view("schedules.view")
@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    """A week (or a day) of slots with how full each is; coaches, doctors and drivers see their own."""
    desk = _desk(request)
    view = "day" if request.GET.get("view") == "day" else "week"
    try:
        day = dt.date.fromisoformat(request.GET.get("date", ""))
    except ValueError:
        day = timeutil.today()
    first = day - dt.timedelta(days=day.weekday()) if view == "week" else day
    days = [first + dt.timedelta(days=n) for n in range(7 if view == "week" else 1)]
    lower = timeutil.local_datetime(days[0], dt.time.min)
    upper = timeutil.local_datetime(days[-1] + dt.timedelta(days=1), dt.time.min)

    branches = scope_branches(desk, Branch.objects.all())
    offerings = scope_offerings(desk, Offering.objects.all()).order_by("title")
    if desk.own_resource_only:  # a coach filters among what they teach
        offerings = offerings.filter(Q(resources=desk.resource_id) | Q(slots__resources=desk.resource_id)).distinct()
    resources = scope_resources(desk, Resource.objects.all()).order_by("type", "name")
    chosen = {k: _int(request.GET.get(k)) for k in ("branch", "offering", "resource")}
    slots = scope_slots(desk, Slot.objects.filter(start__gte=lower, start__lt=upper))
    if chosen["branch"]:
        slots = slots.filter(offering__branch_id=chosen["branch"])
    if chosen["offering"]:
        slots = slots.filter(offering_id=chosen["offering"])
    if chosen["resource"]:
        slots = slots.filter(resources=chosen["resource"])
    slots = slots.select_related("offering", "offering__branch").prefetch_related("resources").order_by("start", "pk")

    by_day: dict[dt.date, list[CalendarSlot]] = defaultdict(list)
    for slot in slots:
        by_day[timeutil.local_date(slot.start)].append(_band(slot))
    columns = []
    for d in days:
        entries = by_day.get(d, [])
        open_slots = [e.slot for e in entries if e.slot.status == SlotStatus.OPEN]
        capacity = sum(s.capacity for s in open_slots)
        reserved = sum(s.reserved for s in open_slots)
        columns.append(
            {
                "day": d,
                "weekday": WEEKDAYS[d.weekday()],
                "entries": entries,
                "capacity": capacity,
                "reserved": reserved,
                "fill": round(100 * reserved / capacity) if capacity else 0,
                "today": d == timeutil.today(),
            }
        )
    step = dt.timedelta(days=7 if view == "week" else 1)
    params: dict[str, Any] = {k: v for k, v in chosen.items() if v}
    return render(
        request,
        "console/setup/calendar.html",
        {
            "view": view,
            "day": day,
            "columns": columns,
            "branches": branches if branches.count() > 1 else None,
            "offerings": offerings,
            "resources": None if desk.own_resource_only else resources,
            "chosen": chosen,
            "prev": urlencode({**params, "view": view, "date": (day - step).isoformat()}),
            "next": urlencode({**params, "view": view, "date": (day + step).isoformat()}),
            "today_link": urlencode({**params, "view": view, "date": timeutil.today().isoformat()}),
            "week_link": urlencode({**params, "view": "week", "date": day.isoformat()}),
            "filters": urlencode(params),
            "can_change": desk.can("schedules.change"),
        },
    )


# --- weekly rules -------------------------------------------------------------------------------


@console_view("schedules.view")
@require_GET
def schedules(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    rules = (
        _scoped_schedules(desk)
        .select_related("offering", "offering__branch")
        .prefetch_related("resources")
        .order_by("-is_active", "offering__title", "start_time", "pk")
        .distinct()
    )
    rows = [
        {
            "rule": rule,
            "days": _("official working days")
            if rule.workdays_only
            else "、".join(str(WEEKDAYS[int(w)]) for w in sorted(rule.weekdays)),
        }
        for rule in rules
    ]
    return render(request, "console/setup/schedules.html", {"rows": rows, "can_change": desk.can("schedules.change")})


@console_view("schedules.change")
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, schedule_id: int | None = None) -> HttpResponse:
    """The weekly-rule editor; saving brings the rule's future slots in line at once."""
    desk = _desk(request)
    rule = get_scoped_or_404(desk, Schedule, pk=schedule_id) if schedule_id is not None else None
    usable = Q(is_active=True) | Q(pk=rule.offering_id) if rule is not None else Q(is_active=True)
    offerings = scope_offerings(desk, Offering.objects.filter(usable)).order_by("title")
    resources = scope_resources(desk, Resource.objects.all()).order_by("type", "name")
    initial = None
    if rule is None and _int(request.GET.get("offering")):
        initial = {"offering": _int(request.GET.get("offering")), "valid_from": timeutil.today()}
    form = forms.ScheduleForm(
        request.POST or None,
        offerings=offerings,
        resources=resources,
        schedule=rule,
        **({"initial": initial} if initial else {}),
    )
    if request.method == "POST" and form.is_valid():
        offering = rule.offering if rule is not None else form.cleaned_data["offering"]
        try:
            change = scheduling.save_schedule(offering=offering, spec=form.spec(), schedule=rule)
        except DomainError as exc:
            forms.put_errors(form, exc)
        else:
            audit(
                request,
                "schedule.update" if rule is not None else "schedule.create",
                change.schedule,
                created=change.created,
                updated=change.updated,
                removed=change.removed,
                kept=[s.pk for s in change.kept],
            )
            _report_change(request, change)
            return redirect("console:schedules")
    return render(
        request,
        "console/setup/schedule_edit.html",
        {"form": form, "rule": rule},
        status=422 if form.errors else 200,
    )


@console_view("schedules.change")
@require_POST
def schedule_toggle(request: HttpRequest, schedule_id: int) -> HttpResponse:
    desk = _desk(request)
    rule = get_scoped_or_404(desk, Schedule, pk=schedule_id)
    try:
        change = scheduling.set_schedule_active(schedule=rule, active=not rule.is_active)
    except DomainError as exc:
        messages.error(request, _refusal_message(exc))
    else:
        audit(request, "schedule.activate" if change.schedule.is_active else "schedule.deactivate", change.schedule)
        _report_change(request, change)
    return redirect("console:schedules")


# --- slots ----------------------------------------------------------------------------------------


@console_view("schedules.change")
@require_http_methods(["GET", "POST"])
def slot_new(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    offerings = scope_offerings(desk, Offering.objects.filter(is_active=True)).order_by("title")
    resources = scope_resources(desk, Resource.objects.all()).order_by("type", "name")
    initial: dict[str, Any] = {"capacity": 10}
    if day := request.GET.get("date"):
        initial["day"] = day
    if offering_id := _int(request.GET.get("offering")):
        initial["offering"] = offering_id
    form = forms.SlotForm(request.POST or None, offerings=offerings, resources=resources, initial=initial)
    if request.method == "POST" and form.is_valid():
        start, end = form.times()
        try:
            slot = scheduling.add_slot(
                offering=form.cleaned_data["offering"],
                start=start,
                end=end,
                capacity=form.cleaned_data["capacity"],
                resources=list(form.cleaned_data["resources"]),
                price_fen=forms.yuan_to_fen(form.cleaned_data["price_yuan"]),
            )
        except DomainError as exc:
            forms.put_errors(form, exc)
        else:
            audit(request, "slot.create", slot, capacity=slot.capacity)
            messages.success(request, _("The slot was added."))
            return redirect("console:slot_detail", slot_id=slot.pk)
    return render(request, "console/setup/slot_new.html", {"form": form}, status=422 if form.errors else 200)


@console_view("schedules.view")
@require_GET
def slot_detail(request: HttpRequest, slot_id: int) -> HttpResponse:
    desk = _desk(request)
    slot = get_scoped_or_404(desk, Slot.objects.select_related("offering", "offering__branch", "schedule"), pk=slot_id)
    bookings = (
        scope_bookings(desk, Booking.objects.filter(slot=slot))
        .select_related("user")
        .prefetch_related("attendees")
        .order_by("status", "created_at")
    )
    return render(
        request,
        "console/setup/slot_detail.html",
        {
            "slot": slot,
            "entry": _band(slot),
            "resources": list(slot.resources.all()),
            "bookings": bookings if desk.can("bookings.view") else None,
            "active": bookings.filter(status__in=ACTIVE_STATUSES).count(),
            "capacity_form": forms.CapacityForm(initial={"capacity": slot.capacity}),
            "close_form": forms.ReasonForm(),
            "can_change": desk.can("schedules.change"),
            "is_over": slot.end <= timeutil.now(),
        },
    )


@console_view("schedules.change")
@require_POST
def slot_capacity(request: HttpRequest, slot_id: int) -> HttpResponse:
    desk = _desk(request)
    slot = get_scoped_or_404(desk, Slot, pk=slot_id)
    form = forms.CapacityForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please enter a whole number."))
        return redirect("console:slot_detail", slot_id=slot.pk)
    before = slot.capacity
    try:
        changed = scheduling.change_capacity(slot_id=slot.pk, capacity=form.cleaned_data["capacity"])
    except DomainError as exc:
        messages.error(request, _refusal_message(exc))
    else:
        audit(request, "slot.capacity", changed, before=before, after=changed.capacity)
        messages.success(request, _("Capacity is now %(n)d.") % {"n": changed.capacity})
    return redirect("console:slot_detail", slot_id=slot.pk)


@console_view("schedules.change")
@require_POST
def slot_close(request: HttpRequest, slot_id: int) -> HttpResponse:
    desk = _desk(request)
    slot = get_scoped_or_404(desk, Slot, pk=slot_id)
    form = forms.ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please give a reason: customers are told it."))
        return redirect("console:slot_detail", slot_id=slot.pk)
    try:
        closure = scheduling.close_slot(slot=slot, reason=form.cleaned_data["reason"], by=desk.user)
    except DomainError as exc:
        messages.error(request, _refusal_message(exc))
    else:
        audit(
            request,
            "slot.close",
            slot,
            reason=form.cleaned_data["reason"],
            cancelled=[b.code for b in closure.cancelled],
            refund_fen=closure.refund_fen,
        )
        messages.success(
            request,
            _("The slot is closed; %(n)d bookings were cancelled (refund due %(refund)s).")
            % {"n": len(closure.cancelled), "refund": money.format_yuan(closure.refund_fen)},
        )
        if closure.untouched:
            messages.warning(
                request,
                _("%(n)d bookings were already checked in and stay as they are.") % {"n": len(closure.untouched)},
            )
    return redirect("console:slot_detail", slot_id=slot.pk)


@console_view("schedules.change")
@require_POST
def slot_reopen(request: HttpRequest, slot_id: int) -> HttpResponse:
    desk = _desk(request)
    slot = get_scoped_or_404(desk, Slot, pk=slot_id)
    try:
        scheduling.reopen_slot(slot=slot)
    except DomainError as exc:
        messages.error(request, _refusal_message(exc))
    else:
        audit(request, "slot.reopen", slot)
        messages.success(request, _("The slot is open for booking again."))
    return redirect("console:slot_detail", slot_id=slot.pk)


# --- closures -------------------------------------------------------------------------------------


@console_view("schedules.change")
@require_http_methods(["GET", "POST"])
def close_day(request: HttpRequest) -> HttpResponse:
    """Close a day: first shows how many slots and bookings it touches, then closes on confirmation."""
    desk = _desk(request)
    branches = scope_branches(desk, Branch.objects.all())
    offerings = scope_offerings(desk, Offering.objects.all()).order_by("title")
    initial = {
        "day": request.GET.get("date") or timeutil.today(),
        "scope": "merchant" if desk.branch_ids is None else "branch",
    }
    form = forms.CloseDayForm(
        request.POST or None,
        branches=branches,
        offerings=offerings,
        whole_merchant=desk.branch_ids is None,
        initial=initial,
    )
    preview = None
    if request.method == "POST" and form.is_valid():
        args = {"merchant": desk.merchant, "day": form.cleaned_data["day"], **form.scope_args()}
        try:
            if request.POST.get("confirm") == "yes":
                closure = scheduling.close_day(reason=form.cleaned_data["reason"], by=desk.user, **args)
                audit(
                    request,
                    "day.close",
                    closure.closed_date,
                    date=closure.closed_date.date.isoformat(),
                    reason=form.cleaned_data["reason"],
                    slots=len(closure.closures),
                    cancelled=closure.cancelled,
                    refund_fen=closure.refund_fen,
                )
                messages.success(
                    request,
                    _("%(day)s is closed: %(slots)d slots closed, %(n)d bookings cancelled (refund due %(refund)s).")
                    % {
                        "day": closure.closed_date.date.isoformat(),
                        "slots": len(closure.closures),
                        "n": closure.cancelled,
                        "refund": money.format_yuan(closure.refund_fen),
                    },
                )
                if closure.untouched:
                    messages.warning(
                        request,
                        _("%(n)d bookings were already checked in and stay as they are.") % {"n": closure.untouched},
                    )
                return redirect("console:closed_dates")
            preview = scheduling.closure_preview(**args)
        except DomainError as exc:
            forms.put_errors(form, exc)
    return render(
        request,
        "console/setup/close_day.html",
        {"form": form, "preview": preview},
        status=422 if form.errors else 200,
    )


@console_view("schedules.view")
@require_GET
def closed_dates(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    dates = (
        _scoped_closed_dates(desk)
        .filter(date__gte=timeutil.today() - dt.timedelta(days=30))
        .select_related("branch", "offering")
        .order_by("date", "pk")
    )
    return render(
        request, "console/setup/closed_dates.html", {"dates": dates, "can_change": desk.can("schedules.change")}
    )


@console_view("schedules.change")
@require_POST
def closed_date_delete(request: HttpRequest, closed_date_id: int) -> HttpResponse:
    desk = _desk(request)
    closed = get_scoped_or_404(desk, _scoped_closed_dates(desk), pk=closed_date_id)
    audit(request, "day.reopen", closed, date=closed.date.isoformat(), reason=closed.reason)
    scheduling.remove_closed_date(closed_date=closed)
    messages.success(
        request,
        _("The closed day was removed. Slots closed that day stay closed; reopen them from the calendar if needed."),
    )
    return redirect("console:closed_dates")


# --- resources ------------------------------------------------------------------------------------


@console_view("catalog.view")
@require_GET
def resources(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    rows = (
        scope_resources(desk, Resource.objects.all())
        .select_related("branch")
        .annotate(
            upcoming=Count(
                "slots", filter=Q(slots__start__gte=timeutil.now(), slots__status=SlotStatus.OPEN), distinct=True
            )
        )
        .order_by("-is_active", "type", "name")
    )
    return render(request, "console/setup/resources.html", {"rows": rows, "can_change": desk.can("catalog.change")})


@console_view("catalog.change")
@require_http_methods(["GET", "POST"])
def resource_edit(request: HttpRequest, resource_id: int | None = None) -> HttpResponse:
    desk = _desk(request)
    resource = get_scoped_or_404(desk, Resource, pk=resource_id) if resource_id is not None else None
    form = forms.ResourceForm(
        request.POST or None, branches=scope_branches(desk, Branch.objects.all()), resource=resource
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = catalog.save_resource(merchant=desk.merchant, spec=form.spec(), resource=resource)
        except DomainError as exc:
            forms.put_errors(form, exc)
        else:
            audit(request, "resource.update" if resource else "resource.create", saved, **form.cleaned_data)
            messages.success(request, _("%(name)s was saved.") % {"name": saved.name})
            return redirect("console:resources")
    return render(
        request,
        "console/setup/resource_edit.html",
        {"form": form, "resource": resource},
        status=422 if form.errors else 200,
    )


# --- offerings ------------------------------------------------------------------------------------


@console_view("catalog.view")
@require_GET
def offerings(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    now = timeutil.now()
    rows = (
        scope_offerings(desk, Offering.objects.all())
        .select_related("branch")
        .annotate(
            upcoming=Count("slots", filter=Q(slots__start__gte=now, slots__status=SlotStatus.OPEN), distinct=True),
            booked=Sum("slots__reserved", filter=Q(slots__start__gte=now, slots__status=SlotStatus.OPEN)),
            places=Sum("slots__capacity", filter=Q(slots__start__gte=now, slots__status=SlotStatus.OPEN)),
        )
        .order_by("-is_active", "title")
    )
    return render(request, "console/setup/offerings.html", {"rows": rows, "can_change": desk.can("catalog.change")})


@console_view("catalog.change")
@require_http_methods(["GET", "POST"])
def offering_edit(request: HttpRequest, offering_id: int | None = None) -> HttpResponse:
    """Offering editor: texts and price, the booking form's questions, and the policy."""
    desk = _desk(request)
    offering = get_scoped_or_404(desk, Offering, pk=offering_id) if offering_id is not None else None
    kind = request.GET.get("kind", "") if request.GET.get("kind") in KINDS else "course"
    form = forms.OfferingForm(
        request.POST or None,
        branches=scope_branches(desk, Branch.objects.all()),
        resources=scope_resources(desk, Resource.objects.all()).order_by("type", "name"),
        offering=offering,
        kind=kind,
    )
    questions = offering.form if offering is not None else list(KINDS[kind].form)
    rows = forms.FormFieldRows(
        request.POST or None, prefix="ff", initial=None if request.POST else forms.form_rows_initial(questions)
    )
    rows_error = ""
    if request.method == "POST" and form.is_valid() and rows.is_valid():
        form_rows = [r for r in (f.row() for f in rows.forms) if r is not None]
        try:
            saved = catalog.save_offering(merchant=desk.merchant, spec=form.spec(form_rows), offering=offering)
        except DomainError as exc:
            rows_error = str(exc.fields.get("form_fields", ""))
            forms.put_offering_errors(
                form,
                DomainError(exc.code, exc.message, fields={k: v for k, v in exc.fields.items() if k != "form_fields"}),
            )
            if rows_error and not form.errors:
                form.add_error(None, exc.message)
        else:
            audit(
                request,
                "offering.update" if offering else "offering.create",
                saved,
                price_fen=saved.price_fen,
                policy=saved.policy_overrides,
                form_fields=saved.form_fields,
            )
            messages.success(request, _("%(title)s was saved.") % {"title": saved.title})
            return redirect("console:offerings")
    return render(
        request,
        "console/setup/offering_edit.html",
        {"form": form, "rows": rows, "rows_error": rows_error, "offering": offering},
        status=422 if (form.errors or rows_error) else 200,
    )
