"""The whole payment flow with the Alipay adapter against the local fake gateway: pay through the
API, Alipay's signed notification to our notify endpoint, a refund on cancel, reconciliation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client
from fake_alipay import APP_ID, GATEWAY_PATH, SELLER_ID, FakeAlipay, Keys, notification
from fake_http import FakeServer, fake_server
from fake_wechatpay import new_key, private_pem, public_pem
from paydom_world import PRICE_FEN, ApiClient, send_refunds

from yuyue.booking import services as engine
from yuyue.booking.models import Status
from yuyue.core import timeutil
from yuyue.payments import services
from yuyue.payments.models import NoticeOutcome, Payment, PaymentNotice, PaymentState, Refund, RefundState

pytestmark = pytest.mark.django_db


@pytest.fixture
def alipay(settings: Any) -> Iterator[tuple[FakeAlipay, FakeServer, Keys]]:
    keys = Keys()
    fake = FakeAlipay(keys)
    with fake_server(fake) as server:
        settings.ALIPAY_APP_ID = APP_ID
        settings.ALIPAY_APP_PRIVATE_KEY = private_pem(keys.app)
        settings.ALIPAY_PUBLIC_KEY = public_pem(keys.alipay)
        settings.ALIPAY_SELLER_ID = SELLER_ID
        settings.ALIPAY_GATEWAY = server.url + GATEWAY_PATH
        yield fake, server, keys
    assert fake.problems == []


def _notify(body: bytes) -> Any:
    return Client(enforce_csrf_checks=True).post(
        "/api/v1/payments/alipay/notify", body, content_type="application/x-www-form-urlencoded"
    )


def test_pay_with_alipay_refund_on_cancel_and_reconcile(alipay, booking, customer):
    fake, _server, keys = alipay
    answer = ApiClient(customer).post(f"/bookings/{booking.code}/pay", {"provider": "alipay"}).json()
    assert answer["provider"] == "alipay" and answer["channel"] == "wap"
    assert httpx.get(answer["redirect_url"]).status_code == 200  # the payer's browser at Alipay's cashier
    trade = fake.pay(answer["payment_id"], total_amount="88.00")

    forged = notification(
        keys, sign_with=new_key(), out_trade_no=answer["payment_id"], total_amount="88.00", trade_no=trade["trade_no"]
    )
    assert _notify(forged).content == b"failure"
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT

    genuine = notification(
        keys,
        out_trade_no=answer["payment_id"],
        total_amount="88.00",
        receipt_amount="88.00",
        trade_no=trade["trade_no"],
    )
    response = _notify(genuine)
    assert response.status_code == 200 and response.content == b"success"
    assert _notify(genuine).content == b"success"  # Alipay sends it again: no second effect
    booking.refresh_from_db()
    payment = Payment.objects.get()
    assert booking.status == Status.CONFIRMED and booking.paid_fen == PRICE_FEN
    assert payment.state == PaymentState.PAID and payment.provider_trade_no == trade["trade_no"]
    assert list(PaymentNotice.objects.order_by("id").values_list("outcome", flat=True)) == [
        NoticeOutcome.BAD_SIGNATURE,
        NoticeOutcome.APPLIED,
        NoticeOutcome.DUPLICATE,
    ]

    engine.cancel(booking=booking, by=customer)
    send_refunds()
    refund = Refund.objects.get()
    booking.refresh_from_db()
    assert refund.state == RefundState.SUCCEEDED and refund.refund_fen == PRICE_FEN
    assert booking.status == Status.REFUNDED
    assert fake.refunds  # the gateway received the signed refund request

    # Alipay's bill for the day, as its detail file lists them: both lines match ours.
    day = timeutil.today()
    fake.bill_files = {
        f"20881021000000010156_{day:%Y%m%d}_业务明细.csv": _bill(day, payment.out_trade_no, refund.out_refund_no),
    }
    report = services.reconcile(day=day, provider_name="alipay")
    assert report.ok, report.mismatches
    assert report.matched == 2


def test_a_notification_for_another_alipay_account_is_flagged_not_confirmed(alipay, booking, customer):
    fake, _server, keys = alipay
    answer = ApiClient(customer).post(f"/bookings/{booking.code}/pay", {"provider": "alipay"}).json()
    httpx.get(answer["redirect_url"])
    fake.pay(answer["payment_id"], total_amount="88.00")
    body = notification(keys, out_trade_no=answer["payment_id"], total_amount="88.00", seller_id="2088000000000999")
    assert _notify(body).content == b"success"
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT
    notice = PaymentNotice.objects.get()
    assert notice.outcome == NoticeOutcome.MERCHANT_MISMATCH and notice.flagged_for_merchant


ALIPAY_DETAIL_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)


def _bill(day: Any, out_trade_no: str, out_refund_no: str) -> str:
    """Alipay's trade detail CSV for one payment of ¥88 and its full refund, on ``day``."""
    at = f"{day:%Y-%m-%d}"
    return "\n".join(
        [
            "#支付宝业务明细查询",
            "#-----------------------------------------业务明细列表----------------------------------------",
            ALIPAY_DETAIL_HEADER,
            f"2025010122001446880500000001\t,{out_trade_no}\t,交易,瑜伽课,{at} 10:00:00,{at} 10:00:05,,,,,"
            "159****5620,88.00,88.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.53,0.00,",
            f"2025010122001446880500000001\t,{out_trade_no}\t,退款,瑜伽课,{at} 10:00:00,{at} 12:00:00,,,,,"
            f"159****5620,-88.00,-88.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{out_refund_no}\t,0.53,0.00,",
            "#-----------------------------------------业务明细列表结束------------------------------------",
        ]
    )
