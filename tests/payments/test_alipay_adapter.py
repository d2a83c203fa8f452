"""The Alipay adapter against a local gateway that re-verifies every RSA2 request and signs its
answers; notifications signed as Alipay signs them. No database."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from fake_alipay import APP_ID, GATEWAY_PATH, SELLER_ID, SHANGHAI, FakeAlipay, Keys, notification
from fake_http import Answer, FakeServer, fake_server
from fake_wechatpay import new_key, private_pem, public_pem

from yuyue.core.money import fen_to_yuan, yuan_to_fen
from yuyue.payments.providers.alipay import AlipayProvider, from_settings
from yuyue.payments.providers.base import (
    BadAnswerSignature,
    BadSignature,
    PaymentOrder,
    PaymentResult,
    ProviderError,
    RefundOrder,
    RefundResult,
)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def gateway(keys: Keys) -> Iterator[tuple[FakeAlipay, FakeServer]]:
    fake = FakeAlipay(keys)
    with fake_server(fake) as server:
        yield fake, server
    assert fake.problems == []  # every request the adapter sent was signed and well formed


@pytest.fixture
def provider(keys: Keys, gateway: tuple[FakeAlipay, FakeServer]) -> AlipayProvider:
    return AlipayProvider(keys.config(gateway[1].url + GATEWAY_PATH))


def order(**overrides: object) -> PaymentOrder:
    values: dict[str, object] = {
        "out_trade_no": "P20250101000001",
        "amount_fen": 1234,
        "description": "故宫博物院 · 2025-01-01 09:00 入馆",
        "channel": "wap",
        "notify_url": "https://yuyue.example.com/api/v1/payments/alipay/notify",
        "return_url": "https://yuyue.example.com/h5/bookings/ABC123",
        "expires_at": dt.datetime(2025, 1, 1, 2, 15, tzinfo=dt.UTC),
    }
    values.update(overrides)
    return PaymentOrder(**values)  # type: ignore[arg-type]


def open_cashier(provider: AlipayProvider, **overrides: object) -> dict[str, str]:
    """Create the payment and follow the redirect as the payer's browser would; the signed params."""
    url = provider.create(order(**overrides)).redirect_url or ""
    response = httpx.get(url)
    assert response.status_code == 200 and "收银台" in response.text
    return dict(parse_qsl(urlsplit(url).query))


# --- Money ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("yuan", "fen"), [("12.34", 1234), ("0.29", 29), ("0.01", 1), ("19.9", 1990), ("-0.57", -57)])
def test_yuan_strings_become_fen_exactly(yuan, fen):
    assert yuan_to_fen(yuan) == fen  # float("0.29") * 100 is 28.999999999999996
    assert yuan_to_fen(fen_to_yuan(fen)) == fen


@pytest.mark.parametrize("bad", ["", "abc", "1.234", "1e2", "NaN", "Infinity"])
def test_amounts_that_are_not_yuan_with_two_decimals_are_refused(bad):
    with pytest.raises(ValueError):
        yuan_to_fen(bad)


# --- Paying -----------------------------------------------------------------------------------------


def test_wap_payment_is_a_signed_redirect_to_the_gateway_with_the_documented_biz_content(gateway, provider):
    fake = gateway[0]
    params = open_cashier(provider)
    assert (params["method"], params["app_id"], params["sign_type"]) == ("alipay.trade.wap.pay", APP_ID, "RSA2")
    assert params["notify_url"] == "https://yuyue.example.com/api/v1/payments/alipay/notify"
    assert params["return_url"] == "https://yuyue.example.com/h5/bookings/ABC123"
    biz = json.loads(params["biz_content"])
    assert biz["total_amount"] == "12.34" and biz["product_code"] == "QUICK_WAP_PAY"
    assert biz["out_trade_no"] == "P20250101000001" and biz["subject"].startswith("故宫博物院")
    assert biz["time_expire"] == "2025-01-01 10:15:00"  # Beijing time
    assert biz["quit_url"] == "https://yuyue.example.com/h5/bookings/ABC123"
    assert fake.trades["P20250101000001"]["trade_status"] == "WAIT_BUYER_PAY"


def test_the_subject_leaves_out_what_alipay_refuses_in_it(gateway, provider):
    params = open_cashier(provider, description="亲子票 2大1小 / 含讲解=是 & 停车")
    assert json.loads(params["biz_content"])["subject"] == "亲子票 2大1小   含讲解 是   停车"


def test_a_redirect_url_with_a_changed_amount_is_refused_by_the_gateway(gateway, provider):
    fake = gateway[0]
    url = provider.create(order()).redirect_url or ""
    response = httpx.get(url.replace("12.34", "0.01"))
    assert "isv.invalid-signature" in response.text
    fake.problems.clear()  # the forged request was ours, on purpose


def test_only_the_wap_channel_exists(gateway, provider):
    with pytest.raises(ValueError, match="channel"):
        provider.create(order(channel="jsapi"))


def test_query_maps_the_trade_status(gateway, provider):
    fake, server = gateway
    open_cashier(provider)
    assert provider.query("P20250101000001").state == "pending"
    trade = fake.pay("P20250101000001")
    paid = provider.query("P20250101000001")
    assert (paid.state, paid.amount_fen, paid.provider_trade_no) == ("paid", 1234, trade["trade_no"])
    assert paid.merchant_ref == APP_ID
    assert paid.paid_at == dt.datetime.strptime(trade["send_pay_date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    trade["trade_status"] = "TRADE_FINISHED"
    assert provider.query("P20250101000001").state == "paid"
    trade["trade_status"] = "TRADE_CLOSED"
    assert provider.query("P20250101000001").state == "closed"
    request = server.received[-1]
    assert request.query["method"] == "alipay.trade.query"
    assert json.loads(request.query["biz_content"]) == {"out_trade_no": "P20250101000001"}


def test_a_trade_alipay_does_not_know_yet_is_pending(gateway, provider):
    result = provider.query("P-cashier-never-opened")
    assert (result.state, result.amount_fen, result.raw["sub_code"]) == ("pending", 0, "ACQ.TRADE_NOT_EXIST")


def test_close_closes_a_waiting_trade_accepts_an_unknown_one_and_reports_a_paid_one(gateway, provider):
    fake = gateway[0]
    open_cashier(provider)
    provider.close("P20250101000001")
    assert fake.trades["P20250101000001"]["trade_status"] == "TRADE_CLOSED"
    provider.close("P-cashier-never-opened")
    fake.pay("P2")
    with pytest.raises(ProviderError, match="TRADE_STATUS_ERROR"):
        provider.close("P2")


# --- Refunds ----------------------------------------------------------------------------------------


def test_refund_flow_refund_repeat_query_and_notification(keys, gateway, provider):
    fake, server = gateway
    fake.pay("P20250101000001", "12.34")
    refund = RefundOrder("P20250101000001", "R20250101000001", 234, 1234, "行程有变", "")
    done = provider.refund(refund)
    assert isinstance(done, RefundResult)
    assert (done.state, done.refund_fen, done.out_refund_no) == ("succeeded", 234, "R20250101000001")
    biz = json.loads(server.received[-1].query["biz_content"])
    assert biz == {
        "out_trade_no": "P20250101000001",
        "refund_amount": "2.34",
        "out_request_no": "R20250101000001",
        "refund_reason": "行程有变",
    }

    again = provider.refund(refund)  # fund_change N: confirmed by a refund query, never refunded twice
    assert (again.state, again.refund_fen) == ("succeeded", 234)
    assert server.received[-1].query["method"] == "alipay.trade.fastpay.refund.query"
    assert sum(1 for r in fake.refunds.values() if r["out_trade_no"] == "P20250101000001") == 1

    second = provider.refund(RefundOrder("P20250101000001", "R20250101000002", 1000, 1234, "", ""))
    assert (second.state, second.refund_fen) == ("succeeded", 1000)

    # Alipay's refund notification names our refund number and gives the trade's running refund total.
    requests_before = len(server.received)
    body = notification(
        keys,
        trade_status="TRADE_CLOSED",
        out_biz_no="R20250101000002",
        refund_fee="12.34",
        gmt_refund="2025-01-01 12:00:00",
    )
    notified = provider.parse_notification({}, body)
    assert isinstance(notified, RefundResult)
    assert (notified.out_refund_no, notified.out_trade_no, notified.state) == (
        "R20250101000002",
        "P20250101000001",
        "succeeded",
    )
    assert notified.refund_fen == 1234 and notified.finished_at == dt.datetime(2025, 1, 1, 4, tzinfo=dt.UTC)
    assert len(server.received) == requests_before  # reading a notification calls nobody


def test_refunding_more_than_was_paid_fails_and_an_unknown_refund_did_not_happen(gateway, provider):
    fake = gateway[0]
    fake.pay("P20250101000001", "12.34")
    refused = provider.refund(RefundOrder("P20250101000001", "R1", 1235, 1234, "", ""))
    assert (refused.state, refused.raw["sub_code"]) == ("failed", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    unknown = provider.query_refund("R1", "P20250101000001")
    assert (unknown.state, unknown.refund_fen) == ("failed", 0)


# --- Notifications ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "fen"), [("12.34", 1234), ("0.29", 29), ("1999.99", 199999)])
def test_a_payment_notification_verifies_and_reads_the_amount_exactly(keys, total, fen):
    provider = AlipayProvider(keys.config("http://127.0.0.1:9/gateway.do"))
    result = provider.parse_notification({}, notification(keys, total_amount=total))
    assert isinstance(result, PaymentResult)
    assert (result.state, result.amount_fen, result.out_trade_no) == ("paid", fen, "P20250101000001")
    assert result.provider_trade_no == "2025010122001446880500000001"
    assert result.paid_at == dt.datetime(2025, 1, 1, 2, 0, 5, tzinfo=dt.UTC)
    assert result.merchant_ref == provider.merchant_ref == APP_ID


def test_with_a_seller_id_the_merchant_ref_names_the_seller_the_money_reached(keys):
    provider = AlipayProvider(keys.config("http://127.0.0.1:9/gateway.do", seller_id=SELLER_ID))
    assert provider.merchant_ref == f"{APP_ID}/{SELLER_ID}"
    assert provider.parse_notification({}, notification(keys)).merchant_ref == provider.merchant_ref
    other = provider.parse_notification({}, notification(keys, seller_id="2088999999999999"))
    assert other.merchant_ref != provider.merchant_ref  # the payments service refuses it


def test_notification_states_and_empty_parameters(keys):
    provider = AlipayProvider(keys.config("http://127.0.0.1:9/gateway.do"))
    assert provider.parse_notification({}, notification(keys, trade_status="WAIT_BUYER_PAY")).state == "pending"
    closed = provider.parse_notification({}, notification(keys, trade_status="TRADE_CLOSED", gmt_payment=None))
    assert (closed.state, closed.paid_at) == ("closed", None)
    # Alipay leaves empty parameters out of what it signs
    assert provider.parse_notification({}, notification(keys, body="")).state == "paid"


@pytest.mark.parametrize(
    "forge", ["tampered", "wrong key", "other app", "no sign", "rsa1", "garbage sign", "not a form"]
)
def test_a_notification_not_provably_from_alipay_for_this_app_is_refused(keys, forge, caplog):
    provider = AlipayProvider(keys.config("http://127.0.0.1:9/gateway.do"))
    body = notification(
        keys,
        sign_with=new_key() if forge == "wrong key" else None,
        app_id="2021009999999999" if forge == "other app" else APP_ID,
        sign_type="RSA" if forge == "rsa1" else "RSA2",
    )
    if forge == "tampered":
        body = body.replace(b"total_amount=12.34", b"total_amount=1234.00")
    if forge == "no sign":
        body = b"&".join(p for p in body.split(b"&") if not p.startswith(b"sign="))
    if forge == "garbage sign":
        body = b"&".join(p if not p.startswith(b"sign=") else b"sign=%25%25%25" for p in body.split(b"&"))
    if forge == "not a form":
        body = b"\xff\xfe{not a form"
    with pytest.raises(BadSignature):
        provider.parse_notification({}, body)
    assert "alipay: refused" in caplog.text


def test_the_answer_to_alipay_is_plain_success_or_failure(keys):
    provider = AlipayProvider(keys.config("http://127.0.0.1:9/gateway.do"))
    assert (provider.answer(True).status, provider.answer(True).body) == (200, b"success")
    assert provider.answer(False).body == b"failure"


# --- Reconciliation ---------------------------------------------------------------------------------

DETAIL_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
DETAIL = "\n".join(
    [
        "#支付宝业务明细查询",
        "#账号：[20881021000000010156]",
        "#起始日期：[2025年01月01日 00:00:00]   终止日期：[2025年01月02日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        DETAIL_HEADER,
        "2025010122001446880500000001\t,P1\t,交易,故宫门票,2025-01-01 10:00:00,2025-01-01 10:00:05,,,,,"
        "159****5620,12.34,12.34,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.07,0.00,",
        "2025010122001446880500000001\t,P1\t,退款,故宫门票,2025-01-01 10:00:00,2025-01-01 12:00:00,,,,,"
        "159****5620,-2.34,-2.34,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,R1\t,0.01,0.00,",
        "2025010122001446880500000002\t,P2\t,交易,颐和园门票,2025-01-01 23:00:00,2025-01-01 23:00:09,,,,,"
        "138****0000,0.29,0.29,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,",
        "#-----------------------------------------业务明细列表结束------------------------------------",
        "#交易合计：2笔，商家实收共12.63元，商家优惠共0.00元，服务费共-0.07元",
        "#退款合计：1笔，商家实收退款共-2.34元，商家优惠退款共0.00元，服务费共0.01元",
        "#导出时间：[2025年01月02日 09:00:00]",
    ]
)
SUMMARY = """#支付宝业务汇总查询
#账号：[20881021000000010156]
门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）
合计,,2,1,12.63,12.63
#导出时间：[2025年01月02日 09:00:00]
"""


def test_statement_downloads_the_bill_zip_and_reads_the_gbk_detail_file(gateway, provider):
    fake, server = gateway
    fake.bill_files = {
        "20881021000000010156_20250101_业务明细.csv": DETAIL,
        "20881021000000010156_20250101_业务明细(汇总).csv": SUMMARY,
    }
    lines = provider.statement(dt.date(2025, 1, 1))
    assert [(x.kind, x.out_trade_no, x.out_refund_no, x.amount_fen, x.provider_no) for x in lines] == [
        ("payment", "P1", "", 1234, "2025010122001446880500000001"),
        ("refund", "P1", "R1", 234, "2025010122001446880500000001"),
        ("payment", "P2", "", 29, "2025010122001446880500000002"),
    ]
    assert lines[1].at == dt.datetime(2025, 1, 1, 12, 0, tzinfo=SHANGHAI)
    biz = json.loads(server.received[0].query["biz_content"])
    assert biz == {"bill_type": "trade", "bill_date": "2025-01-01"}


def test_a_day_without_a_bill_has_no_lines(gateway, provider):
    assert provider.statement(dt.date(2025, 1, 1)) == []


# --- When Alipay misbehaves -------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_network_down_is_a_provider_error(keys):
    provider = AlipayProvider(keys.config(f"http://127.0.0.1:{closed_port()}/gateway.do"))
    with pytest.raises(ProviderError, match="did not answer"):
        provider.query("P1")
    with pytest.raises(ProviderError):
        provider.refund(RefundOrder("P1", "R1", 1, 1, "", ""))


@pytest.mark.parametrize(
    "broken",
    [
        Answer(500, "<html>Internal Server Error</html>", "text/html"),
        Answer(200, "<html>维护中</html>", "text/html"),
        Answer(200, '{"alipay_trade_query_response":', "text/html"),
        Answer(200, '{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}'),
    ],
)
def test_errors_and_garbage_from_the_gateway_are_provider_errors(keys, broken):
    fake = FakeAlipay(keys, broken=broken)
    with fake_server(fake) as server, pytest.raises(ProviderError):
        AlipayProvider(keys.config(server.url + GATEWAY_PATH)).query("P1")


def test_an_answer_signed_with_another_key_is_refused(keys):
    fake = FakeAlipay(keys, answer_sign_key=new_key())
    fake.pay("P1")
    with fake_server(fake) as server, pytest.raises(BadAnswerSignature) as caught:
        AlipayProvider(keys.config(server.url + GATEWAY_PATH)).query("P1")
    # never acted on, and a failure callers that catch ProviderError handle (retry later)
    assert isinstance(caught.value, BadSignature) and isinstance(caught.value, ProviderError)


def test_an_unsigned_success_is_refused_and_an_unsigned_refusal_is_a_provider_error(keys):
    fake = FakeAlipay(keys, unsigned=True)
    fake.pay("P1")
    with fake_server(fake) as server:
        provider = AlipayProvider(keys.config(server.url + GATEWAY_PATH))
        with pytest.raises(BadAnswerSignature):
            provider.query("P1")
        with pytest.raises(ProviderError, match="TRADE_NOT_EXIST"):
            provider.query("P-unknown")  # never read as "pending" without Alipay's signature


# --- Configuration ----------------------------------------------------------------------------------


def test_from_settings_is_none_without_an_app_and_uses_the_alipay_sign_in_settings(keys, settings):
    settings.ALIPAY_APP_ID = ""
    assert from_settings() is None
    settings.ALIPAY_APP_ID = APP_ID
    # the bare base64 body the Alipay console shows works as well as PEM
    settings.ALIPAY_APP_PRIVATE_KEY = "".join(private_pem(keys.app).splitlines()[1:-1])
    settings.ALIPAY_PUBLIC_KEY = public_pem(keys.alipay)
    settings.ALIPAY_SELLER_ID = SELLER_ID
    settings.ALIPAY_GATEWAY = "https://openapi.alipay.com/gateway.do"
    provider = from_settings()
    assert provider is not None and provider.name == "alipay"
    assert provider.merchant_ref == f"{APP_ID}/{SELLER_ID}"
    assert provider.parse_notification({}, notification(keys)).state == "paid"
    settings.ALIPAY_PUBLIC_KEY = "not a key"
    with pytest.raises(ImproperlyConfigured):
        from_settings()
