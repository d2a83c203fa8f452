"""Console pages of the privacy app: "显示证件号" (an audited POST), an owner's export with full ID
numbers, and the log of every such view. Thin: the rules and the audit rows are in ``services``."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from yuyue.booking.models import Attendee, Booking
from yuyue.console import exports, selectors
from yuyue.console.access import client_ip, console_view, desk_of, get_scoped_or_404
from yuyue.console.services import note_export
from yuyue.core.errors import DomainError
from yuyue.privacy import services
from yuyue.privacy.models import IdReveal


@console_view("personal.full")
@require_POST
def reveal_ids(request: HttpRequest, code: str) -> HttpResponse:
    desk = desk_of(request)
    booking = get_scoped_or_404(desk, Booking.objects.select_related("offering"), code=code)
    try:
        shown = services.reveal_booking_ids(
            desk=desk,
            booking=booking,
            purpose=request.POST.get("purpose", ""),
            note=request.POST.get("note", "").strip(),
            ip=client_ip(request),
        )
    except DomainError as exc:
        messages.error(request, " ".join(str(m) for m in exc.fields.values()) or exc.message)
        return redirect(reverse("console:booking", args=[code]))
    count = len(shown["attendees"]) + len(shown["answers"])
    response = render(request, "privacy/console/reveal.html", {"booking": booking, "shown": shown, "count": count})
    response["Cache-Control"] = "no-store"
    return response


@console_view("bookings.export")
@require_POST
def export_full_ids(request: HttpRequest) -> HttpResponseBase:
    desk = desk_of(request)
    back = f"{reverse('console:bookings')}?{request.GET.urlencode()}"
    try:
        flt = selectors.BookingFilter.parse(request.GET)
        qs = selectors.filter_bookings(desk, flt)
        with transaction.atomic():
            count = Attendee.objects.filter(booking__in=qs.values("pk")).exclude(id_number="").count()
            services.note_full_export(
                desk=desk,
                purpose=request.POST.get("purpose", ""),
                count=count,
                note=request.POST.get("note", "").strip(),
                ip=client_ip(request),
            )
            note_export(desk=desk, ip=client_ip(request), kind="xlsx-full-ids", filters=flt.as_params())
    except DomainError as exc:
        if exc.code == "forbidden":
            return render(request, "console/forbidden.html", {"desk": desk}, status=403)
        messages.error(request, " ".join(str(m) for m in exc.fields.values()) or exc.message)
        return redirect(back)
    return FileResponse(
        exports.xlsx_file(desk, qs, full_ids=True),
        as_attachment=True,
        filename=exports.filename("xlsx"),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


@console_view("audit.view")
@require_GET
def id_reveals(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    rows = IdReveal.objects.filter(merchant=desk.merchant).select_related("staff_user", "booking", "attendee")
    page = Paginator(rows, settings.CONSOLE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "privacy/console/reveals.html", {"page_obj": page, "query": ""})


urlpatterns = [
    path("bookings/<str:code>/reveal-ids/", reveal_ids, name="reveal_ids"),
    path("bookings/export-full-ids.xlsx", export_full_ids, name="export_full_ids"),
    path("privacy/id-views/", id_reveals, name="id_reveals"),
]
