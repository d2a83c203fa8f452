"""Console page for notifications: the message templates (Chinese defaults, the merchant's own
wording), reminder times per offering, and the delivery log with its status and a re-send.

Included from urls_desk.py; changing what customers are told is for owners and managers
(``catalog.change``)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from yuyue.catalog.models import Offering
from yuyue.console.access import audit, console_view, desk_of, scope_offerings
from yuyue.core.errors import DomainError
from yuyue.notify import outbox, services
from yuyue.notify.events import reminder_hours
from yuyue.notify.models import OutboxStatus
from yuyue.notify.templates import DEFAULTS

PERMISSION = "catalog.change"


@console_view(PERMISSION)
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    status = request.GET.get("status", "")
    if status not in OutboxStatus.values:
        status = ""
    page = Paginator(services.delivery_log(desk.merchant, status), 50).get_page(request.GET.get("page"))
    offerings = [
        {"offering": o, "hours": ", ".join(f"{h:g}" for h in reminder_hours(o.pk))}
        for o in scope_offerings(desk, Offering.objects.filter(merchant=desk.merchant)).order_by("title")[:200]
    ]
    return render(
        request,
        "console/notify/index.html",
        {
            "templates": services.templates_of(desk.merchant),
            "offerings": offerings,
            "page_obj": page,
            "status": status,
            "statuses": OutboxStatus.choices,
            "stats": outbox.stats(desk.merchant.pk),
            "errors": {},
        },
    )


@console_view(PERMISSION)
@require_POST
def template_save(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    event = request.POST.get("event", "")
    if event not in DEFAULTS:
        raise Http404
    if request.POST.get("reset"):
        services.reset_template(merchant=desk.merchant, event=event)
        audit(request, "notify.template_reset", None, event=event)
        messages.success(request, _("Back to the default wording."))
        return redirect(reverse("console:notifications") + f"#t-{event}")
    try:
        services.save_template(
            merchant=desk.merchant,
            event=event,
            title=request.POST.get("title", ""),
            body=request.POST.get("body", ""),
            sms_template_code=request.POST.get("sms_template_code", ""),
            wechat_template_id=request.POST.get("wechat_template_id", ""),
        )
    except DomainError as exc:
        messages.error(request, " ".join(str(m) for m in exc.fields.values()) or exc.message)
    else:
        audit(request, "notify.template_save", None, event=event)
        messages.success(request, _("Saved."))
    return redirect(reverse("console:notifications") + f"#t-{event}")


@console_view(PERMISSION)
@require_POST
def reminders_save(request: HttpRequest, offering_id: int) -> HttpResponse:
    desk = desk_of(request)
    offering = scope_offerings(desk, Offering.objects.filter(merchant=desk.merchant, pk=offering_id)).first()
    if offering is None:
        raise Http404
    try:
        hours = services.save_reminder_hours(offering=offering, raw=request.POST.get("hours", ""))
    except DomainError as exc:
        messages.error(request, " ".join(str(m) for m in exc.fields.values()) or exc.message)
    else:
        audit(request, "notify.reminders_save", offering, hours=hours)
        messages.success(request, _("Saved."))
    return redirect(reverse("console:notifications") + "#reminders")


@console_view(PERMISSION)
@require_POST
def delivery_resend(request: HttpRequest, item_id: int) -> HttpResponse:
    desk = desk_of(request)
    if outbox.redeliver(item_id, merchant_id=desk.merchant.pk):
        audit(request, "notify.resend", None, item=item_id)
        messages.success(request, _("It will be sent again shortly."))
    else:
        raise Http404
    return redirect(reverse("console:notifications") + "#log")


urlpatterns = [
    path("notifications/", notifications, name="notifications"),
    path("notifications/templates/", template_save, name="notification_template"),
    path("notifications/reminders/<int:offering_id>/", reminders_save, name="notification_reminders"),
    path("notifications/log/<int:item_id>/resend/", delivery_resend, name="notification_resend"),
]
