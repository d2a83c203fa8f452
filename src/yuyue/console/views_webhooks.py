"""Console pages for CRM webhooks: endpoints (list, create, edit, switch off/on), delivery log, re-send.

Endpoint secrets let a CRM trust what it receives, so these pages are for the owner (the
``audit.view`` permission is the owner-only one).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from yuyue.console.access import Desk, audit, console_view
from yuyue.core.errors import DomainError
from yuyue.webhooks import services
from yuyue.webhooks.models import WebhookAttempt, WebhookEndpoint

PERMISSION = "audit.view"


def _desk(request: HttpRequest) -> Desk:
    return request.desk  # type: ignore[attr-defined,no-any-return]


def _endpoint(desk: Desk, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, merchant=desk.merchant).first()
    if endpoint is None:
        raise Http404
    return endpoint


def _form(request: HttpRequest) -> dict[str, object]:
    return {
        "url": request.POST.get("url", ""),
        "event_types": request.POST.getlist("event_types"),
        "description": request.POST.get("description", ""),
    }


@console_view(PERMISSION)
@require_http_methods(["GET", "POST"])
def webhooks(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    error = None
    if request.method == "POST":
        try:
            endpoint = services.create_endpoint(merchant_id=desk.merchant.pk, **_form(request))  # type: ignore[arg-type]
        except DomainError as exc:
            error = exc
        else:
            audit(request, "webhook.create", endpoint, url=endpoint.url)
            messages.success(request, _("The endpoint was added. Give its signing secret to your CRM."))
            return redirect("console:webhook", endpoint.pk)
    endpoints = list(WebhookEndpoint.objects.filter(merchant=desk.merchant))
    for endpoint in endpoints:
        if endpoint.disabled_at:
            messages.warning(
                request,
                _("Endpoint %(url)s was switched off: %(reason)s")
                % {"url": endpoint.url, "reason": endpoint.disabled_reason},
            )
    return render(
        request,
        "console/webhooks/list.html",
        {
            "endpoints": endpoints,
            "event_types": services.EVENT_TYPE_LABELS,
            "error": error,
            "form": _form(request) if error else {"event_types": []},
        },
        status=400 if error else 200,
    )


@console_view(PERMISSION)
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    desk = _desk(request)
    endpoint = _endpoint(desk, endpoint_id)
    error = None
    if request.method == "POST":
        try:
            services.update_endpoint(endpoint, **_form(request))  # type: ignore[arg-type]
        except DomainError as exc:
            error = exc
            endpoint.refresh_from_db()
        else:
            audit(request, "webhook.change", endpoint, url=endpoint.url, event_types=endpoint.event_types)
            messages.success(request, _("Saved."))
            return redirect("console:webhook", endpoint.pk)
    items = Paginator(services.deliveries(endpoint).order_by("-id"), 50).get_page(request.GET.get("page"))
    attempts: dict[int, list[WebhookAttempt]] = {}
    for attempt in WebhookAttempt.objects.filter(endpoint=endpoint, outbox_item_id__in=[i.pk for i in items]):
        attempts.setdefault(attempt.outbox_item_id, []).append(attempt)
    return render(
        request,
        "console/webhooks/detail.html",
        {
            "endpoint": endpoint,
            "event_types": services.EVENT_TYPE_LABELS,
            "page_obj": items,
            "rows": [(item, attempts.get(item.pk, [])) for item in items],
            "error": error,
        },
        status=400 if error else 200,
    )


@console_view(PERMISSION)
@require_POST
def webhook_active(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(_desk(request), endpoint_id)
    active = request.POST.get("active") == "1"
    services.set_active(endpoint, active)
    audit(request, "webhook.enable" if active else "webhook.disable", endpoint)
    messages.success(request, _("The endpoint is active.") if active else _("The endpoint is switched off."))
    return redirect("console:webhook", endpoint.pk)


@console_view(PERMISSION)
@require_POST
def webhook_secret(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(_desk(request), endpoint_id)
    services.rotate_secret(endpoint)
    audit(request, "webhook.secret", endpoint)
    messages.success(request, _("A new signing secret was made; the old one no longer signs."))
    return redirect("console:webhook", endpoint.pk)


@console_view(PERMISSION)
@require_POST
def webhook_resend(request: HttpRequest, endpoint_id: int, item_id: int) -> HttpResponse:
    endpoint = _endpoint(_desk(request), endpoint_id)
    try:
        done = services.resend(endpoint, item_id)
    except DomainError:
        raise Http404 from None
    if done:
        audit(request, "webhook.resend", endpoint, delivery=item_id)
        messages.success(request, _("The delivery will be sent again shortly."))
    else:
        messages.error(request, _("This delivery is being sent right now; try again in a moment."))
    return redirect(reverse("console:webhook", args=[endpoint.pk]))


urlpatterns = [
    path("webhooks/", webhooks, name="webhooks"),
    path("webhooks/<int:endpoint_id>/", webhook, name="webhook"),
    path("webhooks/<int:endpoint_id>/active/", webhook_active, name="webhook_active"),
    path("webhooks/<int:endpoint_id>/secret/", webhook_secret, name="webhook_secret"),
    path("webhooks/<int:endpoint_id>/deliveries/<int:item_id>/resend/", webhook_resend, name="webhook_resend"),
]
