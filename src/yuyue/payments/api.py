"""Payment endpoints of the JSON API: pay for a booking, see its payments, and the providers' callbacks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Field, Path, Router, Schema
from pydantic import AfterValidator

from yuyue.accounts.models import EndUser
from yuyue.booking.models import Booking
from yuyue.core import timeutil
from yuyue.core.apischema import AUTH_ERRORS, Text, client_ip, error_responses, no_nul, user_auth
from yuyue.core.errors import DomainError
from yuyue.payments import selectors, services
from yuyue.payments.providers import registry

router = Router(tags=["payments"], auth=user_auth)

BookingCode = Annotated[str, Path(max_length=32), AfterValidator(no_nul)]
ProviderName = Annotated[str, Path(max_length=20), AfterValidator(no_nul)]


class PayIn(Schema):
    provider: Text = Field(..., max_length=20, description="wechat, alipay or sandbox (what this server offers)")
    channel: Text = Field("", max_length=20, description="wechat: h5 or jsapi; alipay: wap; sandbox: cashier")


class PayOut(Schema):
    payment_id: str = Field(description="our payment number (out_trade_no)")
    provider: str
    channel: str
    amount_fen: int
    expires_at: dt.datetime | None = Field(description="pay before this; the held places are released then")
    params: dict[str, Any] | None = Field(description="for wx.requestPayment (WeChat JSAPI)")
    redirect_url: str | None = Field(description="a page to open (H5 / wap / the sandbox cashier)")


class PaymentInfo(Schema):
    payment_id: str
    provider: str
    channel: str
    amount_fen: int
    state: str
    paid_at: dt.datetime | None


class RefundInfo(Schema):
    refund_id: str
    refund_fen: int
    state: str = Field(description="pending, succeeded or failed")
    reason: str
    created_at: dt.datetime
    finished_at: dt.datetime | None


class BookingMoney(Schema):
    providers: list[str] = Field(description="payment methods this server offers")
    payments: list[PaymentInfo]
    refunds: list[RefundInfo]


def _booking(request: HttpRequest, code: str) -> Booking:
    user: EndUser = request.auth  # type: ignore[attr-defined]
    booking = Booking.objects.filter(code=code[:16], user=user).first()
    if booking is None:
        raise DomainError("not_found", _("This booking does not exist."))
    return booking


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.astimezone(timeutil.local_zone()) if moment else None


@router.post(
    "/bookings/{code}/pay",
    response={200: PayOut, **error_responses(*AUTH_ERRORS, "not_found", "too_late", "unavailable")},
    summary="Pay for a booking awaiting payment",
    description="Opens the payment (or answers the one already open for this provider and channel, so a "
    "double click does not pay twice). Refusals: invalid (not awaiting payment, unknown or unconfigured "
    "provider or channel), too_late (the hold ran out), unavailable (the provider did not answer).",
)
def pay(request: HttpRequest, code: BookingCode, payload: PayIn) -> dict:
    booking = _booking(request, code)
    user: EndUser = request.auth  # type: ignore[attr-defined]
    started = services.start_payment(
        booking=booking,
        provider_name=payload.provider,
        channel=payload.channel,
        client_ip=client_ip(request),
        payer_id=user.wechat_openid if payload.provider == "wechat" else None,
        base_url=request.build_absolute_uri("/"),
    )
    booking.refresh_from_db()
    return {
        "payment_id": started.payment.out_trade_no,
        "provider": started.payment.provider,
        "channel": started.payment.channel,
        "amount_fen": started.payment.amount_fen,
        "expires_at": _local(booking.hold_expires_at),
        "params": started.start.params,
        "redirect_url": started.start.redirect_url,
    }


@router.get(
    "/bookings/{code}/payments",
    response={200: BookingMoney, **error_responses(*AUTH_ERRORS, "not_found")},
    summary="A booking's payments and refunds, with their status",
)
def booking_payments(request: HttpRequest, code: BookingCode) -> dict:
    money = selectors.money_of(_booking(request, code))
    return {
        "providers": registry.available(),
        "payments": [
            {
                "payment_id": p.out_trade_no,
                "provider": p.provider,
                "channel": p.channel,
                "amount_fen": p.amount_fen,
                "state": p.state,
                "paid_at": _local(p.paid_at),
            }
            for p in money.payments
        ],
        "refunds": [
            {
                "refund_id": r.out_refund_no,
                "refund_fen": r.refund_fen,
                "state": r.state,
                "reason": r.reason,
                "created_at": _local(r.created_at),
                "finished_at": _local(r.finished_at),
            }
            for r in money.refunds
        ],
    }


# The callback answers in each provider's own format (WeChat Pay: JSON; Alipay, sandbox: plain text).
_PROVIDER_ANSWER = {"content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {"schema": {}}}}


@router.post(
    "/payments/{provider}/notify",
    auth=None,
    url_name="payment_notify",
    response={**error_responses()},
    summary="Payment provider callback",
    description="Called by WeChat Pay, Alipay or the sandbox with their own signed format; answered in the "
    "format each expects. Not for clients.",
    openapi_extra={
        "requestBody": {"content": {"application/octet-stream": {}}},
        "responses": {
            "200": {"description": "processed (or already processed): stop sending", **_PROVIDER_ANSWER},
            "400": {"description": "not verified (bad signature) or unreadable", **_PROVIDER_ANSWER},
            "404": {"description": "no such provider here", **_PROVIDER_ANSWER},
            "500": {"description": "not processed: send again (WeChat Pay, Alipay)", **_PROVIDER_ANSWER},
        },
    },
)
def notify(request: HttpRequest, provider: ProviderName) -> HttpResponse:
    answer = services.receive_notification(
        provider_name=provider, headers=dict(request.headers.items()), body=request.body
    )
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
