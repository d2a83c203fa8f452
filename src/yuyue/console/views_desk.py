"""Console pages for the day: bookings (list, detail, actions, phone booking, export), check-in,
customers, reviews and the audit log. Thin: parse, call a selector or ``console.services``, render."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yuyue.accounts.models import Ban
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Status
from yuyue.catalog.models import Offering
from yuyue.console import exports, selectors, services
from yuyue.console.access import client_ip, console_view, desk_of, get_scoped_or_404, scope_offerings, scope_slots
from yuyue.console.models import AuditEntry, CustomerNote
from yuyue.core import personal, timeutil
from yuyue.core.errors import DomainError
from yuyue.privacy import consent
from yuyue.scheduling.models import Slot, SlotStatus
from yuyue.tenants.models import Staff


def _refusal(request: HttpRequest, exc: DomainError) -> None:
    details = "; ".join(str(v) for v in exc.fields.values())
    messages.error(request, f"{exc.message} {details}".strip() if details else exc.message)


def _act(request: HttpRequest, work: Callable[[], Any], done: str, back: str) -> HttpResponse:
    """Run a staff action; show its result or the rule that refused it; go back to ``back``."""
    try:
        work()
    except DomainError as exc:
        _refusal(request, exc)
    else:
        messages.success(request, done)
    return redirect(back)


# --- Bookings -------------------------------------------------------------------------------


@console_view("bookings.view")
@require_GET
def bookings(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    error: DomainError | None = None
    try:
        flt = selectors.BookingFilter.parse(request.GET)
    except DomainError as exc:
        error, flt = exc, selectors.BookingFilter()
    qs = selectors.filter_bookings(desk, flt)
    if error is not None:
        qs = qs.none()  # a bad filter lists nothing rather than everything
    page = min(int(request.GET["page"]), 10**6) if request.GET.get("page", "").isdigit() else 1
    rows, has_next = selectors.page_of(selectors.booking_list_rows(qs), page, settings.CONSOLE_PAGE_SIZE)
    params = flt.as_params()
    return render(
        request,
        "console/bookings.html",
        {
            "rows": rows,
            "filter": flt,
            "error": error,
            "count": qs.count(),
            "page": page,
            "has_next": has_next,
            "query": urlencode(params),
            "full": desk.can("personal.full"),
            "quick_days": _quick_days(),
            **selectors.filter_choices(desk),
        },
        status=400 if error else 200,
    )


def _quick_days() -> list[tuple[str, str]]:
    """Links for the ranges a desk asks for most: today, tomorrow, the next seven days."""
    today = timeutil.today()
    ranges = [
        (_("Today"), today, today),
        (_("Tomorrow"), today + dt.timedelta(days=1), today + dt.timedelta(days=1)),
        (_("Next 7 days"), today, today + dt.timedelta(days=6)),
    ]
    return [(str(label), urlencode({"date_from": a.isoformat(), "date_to": b.isoformat()})) for label, a, b in ranges]


def _booking(request: HttpRequest, code: str) -> Booking:
    return get_scoped_or_404(
        desk_of(request), Booking.objects.select_related("offering", "offering__branch", "slot", "user"), code=code
    )


@console_view("bookings.view")
@require_GET
def booking_detail(request: HttpRequest, code: str) -> HttpResponse:
    desk = desk_of(request)
    booking = _booking(request, code)
    other_slots: list[Slot] = []
    if desk.can("bookings.change") and booking.status in engine.CANCELLABLE:
        other_slots = list(
            scope_slots(desk, Slot.objects.all())
            .filter(offering_id=booking.offering_id, status=SlotStatus.OPEN, start__gt=timeutil.now())
            .exclude(pk=booking.slot_id)
            .order_by("start")[:60]
        )
    return render(
        request,
        "console/booking_detail.html",
        {
            "booking": booking,
            "attendees": _attendees(booking, desk.can("personal.full")),
            "events": list(booking.events.select_related("actor_staff", "actor_user")),
            "resources": list(booking.slot.resources.all()),
            "answers": _answers(booking, desk.can("personal.full")),
            "full": desk.can("personal.full"),
            "other_slots": other_slots,
            "can_change": desk.can("bookings.change"),
            "cancellable": booking.status in engine.CANCELLABLE,
            "awaiting_approval": booking.status == Status.PENDING_APPROVAL,
            "no_show_possible": booking.status == Status.CONFIRMED and booking.slot.start <= timeutil.now(),
            "account_phone": booking.user.phone if desk.can("personal.full") else booking.user.phone_masked,
        },
    )


def _attendees(booking: Booking, full: bool) -> list[dict[str, Any]]:
    """Attendees as shown: phones masked unless the desk may see them in full; ID numbers always
    masked (full ones only through the audited "显示证件号" action, privacy/console_views.py)."""
    return [
        {
            "name": a.name,  # names stay readable: the desk calls people by them
            "id_number": a.id_masked,
            "phone": a.phone if full else personal.mask_phone(a.phone),
            "is_minor": a.is_minor,
            "guardian_name": a.guardian_name,
        }
        for a in booking.attendees.all()
    ]


def _answers(booking: Booking, full: bool) -> list[tuple[str, str]]:
    shown = []
    for field in booking.offering.form:
        if field.key in booking.answers:
            value = str(booking.answers[field.key])
            if not full and field.type == "phone":
                value = personal.mask_phone(value)
            elif field.type == "id_number":  # shown in full only through the audited action
                value = personal.mask_id(value)
            shown.append((field.label, value))
    return shown


def _back_to_booking(code: str) -> str:
    return reverse("console:booking", args=[code])


@console_view("bookings.change")
@require_POST
def booking_cancel(request: HttpRequest, code: str) -> HttpResponse:
    booking = _booking(request, code)
    return _act(
        request,
        lambda: services.cancel(
            desk=desk_of(request), ip=client_ip(request), booking=booking, reason=request.POST.get("reason", "")
        ),
        _("The booking is cancelled."),
        _back_to_booking(code),
    )


@console_view("bookings.change")
@require_POST
def booking_no_show(request: HttpRequest, code: str) -> HttpResponse:
    booking = _booking(request, code)
    return _act(
        request,
        lambda: services.no_show(desk=desk_of(request), ip=client_ip(request), booking=booking),
        _("Marked as no-show."),
        _back_to_booking(code),
    )


@console_view("bookings.change")
@require_POST
def booking_move(request: HttpRequest, code: str) -> HttpResponse:
    booking = _booking(request, code)
    raw = request.POST.get("slot_id", "")
    if not raw.isdigit() or int(raw) > selectors.MAX_ID:
        messages.error(request, _("Please choose a time."))
        return redirect(_back_to_booking(code))
    return _act(
        request,
        lambda: services.move(desk=desk_of(request), ip=client_ip(request), booking=booking, slot_id=int(raw)),
        _("The booking has moved to the new time."),
        _back_to_booking(code),
    )


@console_view("bookings.change")
@require_POST
def booking_approve(request: HttpRequest, code: str) -> HttpResponse:
    booking = _booking(request, code)
    return _act(
        request,
        lambda: services.approve(desk=desk_of(request), ip=client_ip(request), booking=booking),
        _("The booking is approved."),
        _back_to_booking(code),
    )


@console_view("bookings.change")
@require_POST
def booking_reject(request: HttpRequest, code: str) -> HttpResponse:
    booking = _booking(request, code)
    return _act(
        request,
        lambda: services.reject(
            desk=desk_of(request), ip=client_ip(request), booking=booking, reason=request.POST.get("reason", "")
        ),
        _("The booking is rejected."),
        _back_to_booking(code),
    )


PHONE_BOOKING_PEOPLE = 5  # rows for people on the phone-booking form


@console_view("bookings.change")
@require_http_methods(["GET", "POST"])
def booking_new(request: HttpRequest) -> HttpResponse:
    """Book for a caller: choose the offering, then the time, the caller's phone and who is coming."""
    desk = desk_of(request)
    offerings = list(scope_offerings(desk, Offering.objects.filter(is_active=True)).order_by("title"))
    data = request.POST if request.method == "POST" else request.GET
    offering = next((o for o in offerings if str(o.pk) == data.get("offering")), None)
    slots: list[Slot] = []
    if offering is not None:
        slots = list(
            scope_slots(desk, Slot.objects.all())
            .filter(offering=offering, status=SlotStatus.OPEN, start__gt=timeutil.now())
            .order_by("start")[:120]
        )
    errors: dict[str, Any] = {}
    error_message = ""
    if request.method == "POST" and offering is not None:
        answers = {f.key: request.POST.get(f"answer_{f.key}", "") for f in offering.form}
        party = request.POST.get("party_size", "").strip()
        slot_id = request.POST.get("slot_id", "")
        try:
            if not slot_id.isdigit() or int(slot_id) > selectors.MAX_ID:
                raise DomainError("invalid", fields={"slot_id": _("Please choose a time.")})
            booking = services.book_for_caller(
                desk=desk,
                ip=client_ip(request),
                phone=request.POST.get("phone", ""),
                slot_id=int(slot_id),
                people=_callers(request),
                party_size=int(party) if party.isdigit() else None,
                answers=answers,
                sensitive_consent=request.POST.get("sensitive_consent") == "1",
            )
        except DomainError as exc:
            errors, error_message = dict(exc.fields), exc.message
        else:
            messages.success(request, _("Booked: %(code)s.") % {"code": booking.code})
            return redirect("console:booking", code=booking.code)
    return render(
        request,
        "console/booking_new.html",
        {
            "offerings": offerings,
            "offering": offering,
            "slots": slots,
            "form_fields": offering.form if offering else [],
            "policy": offering.policy if offering else None,
            "people_rows": range(PHONE_BOOKING_PEOPLE),
            "consent_texts": consent.current_texts(),
            "errors": errors,
            "error_message": error_message,
            "data": data,
        },
        status=400 if error_message else 200,
    )


def _callers(request: HttpRequest) -> list[services.Caller]:
    people = []
    for n in range(PHONE_BOOKING_PEOPLE):
        name = request.POST.get(f"person_{n}_name", "").strip()
        if not name:
            continue
        birth = request.POST.get(f"person_{n}_birth_date", "").strip()
        try:
            birth_date = dt.date.fromisoformat(birth) if birth else None
        except ValueError:
            raise DomainError("invalid", fields={"birth_date": _("Please enter a date like 2025-05-01.")}) from None
        people.append(
            services.Caller(
                name=name,
                id_number=request.POST.get(f"person_{n}_id_number", "").strip(),
                phone=request.POST.get(f"person_{n}_phone", "").strip(),
                birth_date=birth_date,
            )
        )
    return people


def _export_filter(request: HttpRequest) -> selectors.BookingFilter | HttpResponse:
    try:
        return selectors.BookingFilter.parse(request.GET)
    except DomainError as exc:
        _refusal(request, exc)
        return redirect(f"{reverse('console:bookings')}?{request.GET.urlencode()}")


@console_view("bookings.export")
@require_GET
def bookings_export_xlsx(request: HttpRequest) -> HttpResponseBase:
    flt = _export_filter(request)
    if isinstance(flt, HttpResponse):
        return flt
    desk = desk_of(request)
    services.note_export(desk=desk, ip=client_ip(request), kind="xlsx", filters=flt.as_params())
    response = FileResponse(
        exports.xlsx_file(desk, selectors.filter_bookings(desk, flt)),
        as_attachment=True,
        filename=exports.filename("xlsx"),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    return response


@console_view("bookings.export")
@require_GET
def bookings_export_csv(request: HttpRequest) -> HttpResponseBase:
    flt = _export_filter(request)
    if isinstance(flt, HttpResponse):
        return flt
    desk = desk_of(request)
    services.note_export(desk=desk, ip=client_ip(request), kind="csv", filters=flt.as_params())
    response = StreamingHttpResponse(
        exports.csv_chunks(desk, selectors.filter_bookings(desk, flt)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{exports.filename("csv")}"'
    return response


# --- Check-in -------------------------------------------------------------------------------


@console_view("checkin")
@require_http_methods(["GET", "POST"])
def checkin(request: HttpRequest) -> HttpResponse:
    """Scan the voucher QR (camera) or type the booking code; admits once, says when if again."""
    desk = desk_of(request)
    context: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        text = request.POST.get("code", "")
        try:
            booking = services.check_in(desk=desk, ip=client_ip(request), text=text)
            context.update(ok=True, booking=booking, message=_("Checked in."))
        except DomainError as exc:
            status = exc.status
            context.update(ok=False, message=exc.message)
            with contextlib.suppress(DomainError):  # show what the code names, if anything
                context["booking"] = services.booking_for_code(desk, text)
        if "booking" in context:
            booking = context["booking"]
            context["attendees"] = _attendees(booking, desk.can("personal.full"))
            context["resources"] = list(booking.slot.resources.all())
    return render(request, "console/checkin.html", context, status=status)


# --- Customers ------------------------------------------------------------------------------


@console_view("customers.view")
@require_GET
def customers(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    q = request.GET.get("q", "")
    paginator = Paginator(selectors.customers(desk, q), settings.CONSOLE_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "console/customers.html",
        {"page_obj": page, "q": q, "full": desk.can("personal.full")},
    )


def _customer(request: HttpRequest, user_id: int) -> Any:
    if user_id > selectors.MAX_ID:
        raise Http404

    user = selectors.customer_or_none(desk_of(request), user_id)
    if user is None:
        raise Http404
    return user


@console_view("customers.view")
@require_GET
def customer_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    desk = desk_of(request)
    user = _customer(request, user_id)
    history = selectors.booking_list_rows(selectors.filter_bookings(desk, selectors.BookingFilter()).filter(user=user))[
        :100
    ]
    return render(
        request,
        "console/customer_detail.html",
        {
            "customer": user,
            "phone": user.phone if desk.can("personal.full") else user.phone_masked,
            "bookings": list(history),
            "notes": list(CustomerNote.objects.filter(merchant=desk.merchant, user=user).select_related("author")),
            "bans": list(Ban.objects.filter(merchant=desk.merchant, user=user).order_by("-starts_at")),
            "can_change": desk.can("customers.change"),
            "now": timeutil.now(),
            "default_until": timeutil.today() + dt.timedelta(days=30),
        },
    )


def _back_to_customer(user_id: int) -> str:
    return reverse("console:customer", args=[user_id])


@console_view("customers.change")
@require_POST
def customer_note(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _customer(request, user_id)
    return _act(
        request,
        lambda: services.add_note(
            desk=desk_of(request), ip=client_ip(request), user=user, text=request.POST.get("text", "")
        ),
        _("Note saved."),
        _back_to_customer(user_id),
    )


@console_view("customers.change")
@require_POST
def customer_ban(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _customer(request, user_id)

    def work() -> Any:
        raw = request.POST.get("until", "").strip()
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            raise DomainError("invalid", fields={"until": _("Please enter a date like 2025-05-01.")}) from None
        until = timeutil.local_datetime(day + dt.timedelta(days=1), dt.time.min)  # through the whole day
        return services.ban(
            desk=desk_of(request), ip=client_ip(request), user=user, until=until, reason=request.POST.get("reason", "")
        )

    return _act(request, work, _("The customer is banned."), _back_to_customer(user_id))


@console_view("customers.change")
@require_POST
def customer_lift_ban(request: HttpRequest, user_id: int, ban_id: int) -> HttpResponse:
    user = _customer(request, user_id)
    if (
        ban_id > selectors.MAX_ID
        or not Ban.objects.filter(pk=ban_id, user=user, merchant=desk_of(request).merchant).exists()
    ):
        raise Http404
    return _act(
        request,
        lambda: services.lift_ban(
            desk=desk_of(request), ip=client_ip(request), ban_id=ban_id, reason=request.POST.get("reason", "")
        ),
        _("The ban is lifted."),
        _back_to_customer(user_id),
    )


# --- Reviews --------------------------------------------------------------------------------


@console_view("reviews.change")
@require_GET
def reviews(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    hidden = request.GET.get("hidden", "")
    paginator = Paginator(selectors.reviews(desk, hidden), settings.CONSOLE_PAGE_SIZE)
    return render(
        request, "console/reviews.html", {"page_obj": paginator.get_page(request.GET.get("page")), "hidden": hidden}
    )


@console_view("reviews.change")
@require_POST
def review_visibility(request: HttpRequest, review_id: int) -> HttpResponse:
    desk = desk_of(request)
    review = selectors.reviews(desk).filter(pk=review_id).first() if review_id <= selectors.MAX_ID else None
    if review is None:
        raise Http404
    hide = request.POST.get("hidden") == "1"
    return _act(
        request,
        lambda: services.set_review_hidden(desk=desk, ip=client_ip(request), review=review, hidden=hide),
        _("The review is hidden.") if hide else _("The review is shown again."),
        reverse("console:reviews"),
    )


# --- Audit log ------------------------------------------------------------------------------


@console_view("audit.view")
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    error = None
    try:
        entries = selectors.audit_entries(desk, request.GET)
    except DomainError as exc:
        error, entries = exc, selectors.audit_entries(desk, {})
    paginator = Paginator(entries, settings.CONSOLE_PAGE_SIZE)
    return render(
        request,
        "console/audit.html",
        {
            "page_obj": paginator.get_page(request.GET.get("page")),
            "error": error,
            "params": request.GET,
            "staff": Staff.objects.filter(merchant=desk.merchant).select_related("user").order_by("user__username"),
            "actions": list(
                AuditEntry.objects.filter(merchant=desk.merchant)
                .order_by("action")
                .values_list("action", flat=True)
                .distinct()
            ),
            "query": urlencode({k: v for k, v in request.GET.dict().items() if k != "page" and v}),
        },
        status=400 if error else 200,
    )
