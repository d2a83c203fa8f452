"""The whole payment flow with the WeChat Pay adapter against the local fake APIv3 gateway: JSAPI
parameters through the API, the encrypted and signed callback to our notify endpoint, a refund that
WeChat Pay finishes later (asked again with backoff, then notified)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from fake_http import FakeServer, fake_server
from fake_wechatpay import (
    APPID,
    CERT_SERIAL,
    MCHID,
    PUBLIC_KEY_ID,
    FakeWechatPay,
    Keys,
    new_key,
    notification,
    private_pem,
    public_pem,
)
from paydom_world import PRICE_FEN, ApiClient, send_refunds

from yuyue.booking import services as engine
from yuyue.booking.models import Status
from yuyue.core import timeutil
from yuyue.payments.models import NoticeOutcome, Payment, PaymentNotice, PaymentState, Refund, RefundState

pytestmark = pytest.mark.django_db


@pytest.fixture
def wechatpay(settings: Any) -> Iterator[tuple[FakeWechatPay, FakeServer, Keys]]:
    keys = Keys(merchant=new_key(), platform=new_key())
    fake = FakeWechatPay(keys)
    with fake_server(fake) as server:
        settings.WECHATPAY_MCHID = MCHID
        settings.WECHATPAY_APPID = APPID
        settings.WECHATPAY_PRIVATE_KEY = private_pem(keys.merchant)
        settings.WECHATPAY_CERT_SERIAL = CERT_SERIAL
        settings.WECHATPAY_APIV3_KEY = keys.apiv3_key
        settings.WECHATPAY_PUBLIC_KEY = public_pem(keys.platform)
        settings.WECHATPAY_PUBLIC_KEY_ID = PUBLIC_KEY_ID
        settings.WECHATPAY_API_BASE = server.url
        settings.PUBLIC_URL = "https://book.example.com"  # WeChat Pay calls back over HTTPS only
        yield fake, server, keys
    assert fake.problems == []


def _notify(headers: dict[str, str], body: bytes) -> Any:
    return Client(enforce_csrf_checks=True).post(
        "/api/v1/payments/wechat/notify", body, content_type="application/json", headers=headers
    )


def test_pay_in_the_mini_program_and_a_refund_finished_later(wechatpay, booking, customer):
    fake, server, keys = wechatpay
    api = ApiClient(customer)
    refused = api.post(f"/bookings/{booking.code}/pay", {"provider": "wechat", "channel": "jsapi"})
    assert refused.status_code == 422 and "channel" in refused.json()["error"]["fields"]  # no WeChat sign-in

    customer.wechat_openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    customer.save(update_fields=["wechat_openid"])
    answer = api.post(f"/bookings/{booking.code}/pay", {"provider": "wechat", "channel": "jsapi"}).json()
    assert answer["params"]["package"].startswith("prepay_id=") and answer["redirect_url"] is None
    sent = server.received[0].json()
    assert sent["amount"]["total"] == PRICE_FEN and sent["payer"]["openid"] == customer.wechat_openid
    assert sent["notify_url"] == "https://book.example.com/api/v1/payments/wechat/notify"

    paid = fake.pay(answer["payment_id"])
    forged = notification(keys, "TRANSACTION.SUCCESS", paid, sign_with=new_key())
    assert _notify(*forged).status_code == 500  # WeChat Pay retries what was not accepted
    response = _notify(*notification(keys, "TRANSACTION.SUCCESS", paid))
    assert response.status_code == 200
    booking.refresh_from_db()
    assert booking.status == Status.CONFIRMED and booking.paid_fen == PRICE_FEN
    assert Payment.objects.get().state == PaymentState.PAID

    engine.cancel(booking=booking, by=customer)
    send_refunds()  # sent: WeChat Pay answers "processing"
    refund = Refund.objects.get()
    assert refund.state == RefundState.PENDING and refund.provider_refund_no == "" and refund.attempts == 1
    send_refunds(now=timeutil.now() + dt.timedelta(minutes=5))  # asked again: still processing
    refund.refresh_from_db()
    assert refund.state == RefundState.PENDING and refund.attempts == 2

    finished = fake.finish_refund(refund.out_refund_no)
    resource = {
        "mchid": MCHID,
        "out_trade_no": finished["out_trade_no"],
        "transaction_id": finished["transaction_id"],
        "out_refund_no": refund.out_refund_no,
        "refund_id": finished["refund_id"],
        "refund_status": "SUCCESS",
        "success_time": finished["success_time"],
        "user_received_account": "支付用户零钱",
        "amount": {"total": PRICE_FEN, "refund": PRICE_FEN, "payer_total": PRICE_FEN, "payer_refund": PRICE_FEN},
    }
    assert _notify(*notification(keys, "REFUND.SUCCESS", resource)).status_code == 200
    refund.refresh_from_db()
    booking.refresh_from_db()
    assert refund.state == RefundState.SUCCEEDED and refund.provider_refund_no == finished["refund_id"]
    assert booking.status == Status.REFUNDED
    send_refunds(now=timeutil.now() + dt.timedelta(hours=1))  # the outbox row sees it done and stops
    refund.refresh_from_db()
    assert refund.attempts == 2 and refund.state == RefundState.SUCCEEDED
    assert NoticeOutcome.BAD_SIGNATURE in PaymentNotice.objects.values_list("outcome", flat=True)


def test_the_h5_channel_and_a_callback_with_another_amount(wechatpay, booking, customer):
    fake, _server, keys = wechatpay
    answer = ApiClient(customer).post(f"/bookings/{booking.code}/pay", {"provider": "wechat", "channel": "h5"}).json()
    assert answer["redirect_url"] and answer["params"] is None
    paid = fake.pay(answer["payment_id"])
    paid["amount"] = {**paid["amount"], "total": 1, "payer_total": 1}
    assert _notify(*notification(keys, "TRANSACTION.SUCCESS", paid)).status_code == 200
    booking.refresh_from_db()
    assert booking.status == Status.PENDING_PAYMENT
    assert PaymentNotice.objects.get().outcome == NoticeOutcome.AMOUNT_MISMATCH
