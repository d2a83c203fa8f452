"""Payment pages: paying from the H5 booking page, the sandbox cashier, and the console's 支付 page.

Thin, like every front door: they call ``payments.services`` and show refusals.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yuyue.accounts.models import EndUser
from yuyue.booking.models import Booking
from yuyue.console.access import audit, console_view, desk_of
from yuyue.core.apischema import client_ip
from yuyue.core.errors import DomainError
from yuyue.h5.auth import current_user, user_required
from yuyue.payments import selectors, services
from yuyue.payments.models import Payment, PaymentNotice, PaymentState, RefundState
from yuyue.payments.providers import registry
from yuyue.payments.providers.base import ProviderError
from yuyue.payments.providers.sandbox import SandboxProvider

PERMISSION = "payments.view"


# --------------------------------------------------------------------------------------------
# H5: "去支付"
# --------------------------------------------------------------------------------------------


@user_required
@require_POST
def h5_pay(request: HttpRequest, user: EndUser, code: str) -> HttpResponse:
    """Open the payment of one of my bookings and go to the provider's page (the cashier in demo mode)."""
    booking = Booking.objects.filter(code=code[:16], user=user).first()
    if booking is None:
        raise Http404
    back = reverse("h5:booking", args=[booking.code])
    provider = request.POST.get("provider", "") or next(iter(registry.available()), "")
    try:
        started = services.start_payment(
            booking=booking,
            provider_name=provider,
            channel=request.POST.get("channel", ""),
            client_ip=client_ip(request),
            base_url=request.build_absolute_uri("/"),
        )
    except DomainError as exc:
        messages.error(request, str(next(iter(exc.fields.values()), exc.message)))
        return HttpResponseRedirect(back)
    if not started.start.redirect_url:
        messages.error(request, _("This payment method works inside the mini-program only."))
        return HttpResponseRedirect(back)
    return HttpResponseRedirect(started.start.redirect_url)


# --------------------------------------------------------------------------------------------
# The sandbox cashier
# --------------------------------------------------------------------------------------------


def _sandbox() -> SandboxProvider:
    sandbox = registry.get("sandbox")
    if not isinstance(sandbox, SandboxProvider):
        raise Http404
    return sandbox


@require_http_methods(["GET", "POST"])
def sandbox_cashier(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    """A stand-in for the provider's payment page: 支付 or 支付失败, then back to the booking.

    The outcome reaches us as a signed notification through the same verification as the real
    providers' (``services.receive_notification`` → ``SandboxProvider.parse_notification``).
    """
    sandbox = _sandbox()
    trade = sandbox.trade(out_trade_no[:32])
    payment = Payment.objects.filter(out_trade_no=out_trade_no[:32], provider="sandbox").select_related(
        "booking", "booking__offering", "merchant"
    )
    payment = payment.first()
    if trade is None or payment is None:
        raise Http404
    back = reverse("h5:booking", args=[payment.booking.code])
    if request.method == "POST":
        try:
            result = (
                sandbox.fail(trade.out_trade_no)
                if request.POST.get("action") == "fail"
                else sandbox.pay(trade.out_trade_no)
            )
        except ProviderError:
            messages.error(request, _("This payment can no longer be made (it was closed or has expired)."))
            return HttpResponseRedirect(back)
        headers, body = sandbox.notification(result)
        services.receive_notification(provider_name="sandbox", headers=headers, body=body)
        if result.state == "paid":
            messages.success(request, _("Payment received."))
        else:
            messages.error(request, _("The payment did not go through; you can try again while the places are held."))
        return HttpResponseRedirect(back)
    context = {
        "trade": trade,
        "payment": payment,
        "booking": payment.booking,
        "back": back,
        "me": current_user(request),
    }
    return render(request, "payments/sandbox_cashier.html", context)


# --------------------------------------------------------------------------------------------
# Console: 支付
# --------------------------------------------------------------------------------------------


def _day(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@console_view(PERMISSION)
@require_GET
def console_payments(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    day = _day(request.GET.get("date", "").strip())
    state = request.GET.get("state", "")
    if state not in PaymentState.values:
        state = ""
    provider = request.GET.get("provider", "")
    if provider not in registry.MODULES:
        provider = ""
    payments = selectors.payments_of(desk.merchant.pk, day=day, state=state, provider=provider)
    page = Paginator(payments, 50).get_page(request.GET.get("page"))
    query = "&".join(
        f"{k}={v}" for k, v in (("date", day.isoformat() if day else ""), ("state", state), ("provider", provider)) if v
    )
    return render(
        request,
        "payments/console_payments.html",
        {
            "page_obj": page,
            "query": query,
            "day": day,
            "state": state,
            "provider": provider,
            "states": PaymentState.choices,
            "providers": list(registry.MODULES),
            "refunds": list(selectors.refunds_of(desk.merchant.pk, day=day)[:50]),
            "refund_states": RefundState,
            "flagged": list(selectors.flagged_notices(desk.merchant.pk)[:100]),
            "totals": selectors.totals(desk.merchant.pk, day=day),
        },
    )


@console_view(PERMISSION)
@require_POST
def console_notice_handled(request: HttpRequest, notice_id: int) -> HttpResponse:
    desk = desk_of(request)
    notice = PaymentNotice.objects.filter(pk=notice_id, merchant=desk.merchant).first()
    if notice is None:
        raise Http404
    if services.mark_notice_handled(notice=notice, staff=desk.user):
        audit(request, "payments.notice_handled", notice, outcome=notice.outcome, out_trade_no=notice.out_trade_no)
        messages.success(request, _("Marked as handled."))
    return HttpResponseRedirect(reverse("console:payments") + "#flagged")
