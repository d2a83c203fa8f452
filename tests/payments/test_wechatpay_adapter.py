"""The WeChat Pay APIv3 adapter against a local gateway that checks every signed request and signs
its answers; notifications built as WeChat Pay builds them. No database."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ImproperlyConfigured
from fake_http import Answer, FakeServer, fake_server
from fake_wechatpay import (
    APPID,
    BILL_HEADER,
    MCHID,
    PUBLIC_KEY_ID,
    SHANGHAI,
    FakeWechatPay,
    Keys,
    bill_line,
    new_key,
    notification,
    platform_certificate,
    private_pem,
    public_pem,
    verifies,
)

from yuyue.payments.providers.base import (
    BadAnswerSignature,
    BadSignature,
    PaymentOrder,
    PaymentResult,
    ProviderError,
    RefundOrder,
    RefundResult,
)
from yuyue.payments.providers.wechatpay import WechatPayProvider, from_settings


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(merchant=new_key(), platform=new_key())


@pytest.fixture
def gateway(keys: Keys) -> Iterator[tuple[FakeWechatPay, FakeServer]]:
    fake = FakeWechatPay(keys)
    with fake_server(fake) as server:
        yield fake, server
    assert fake.problems == []  # every request the adapter sent was well formed and signed


@pytest.fixture
def provider(keys: Keys, gateway: tuple[FakeWechatPay, FakeServer]) -> WechatPayProvider:
    return WechatPayProvider(keys.config(gateway[1].url))


def order(channel: str = "jsapi", **overrides: object) -> PaymentOrder:
    values: dict[str, object] = {
        "out_trade_no": "P20250101000001",
        "amount_fen": 12345,
        "description": "故宫博物院 · 2025-01-01 09:00 入馆",
        "channel": channel,
        "notify_url": "https://yuyue.example.com/api/v1/payments/wechat/notify",
        "return_url": "https://yuyue.example.com/h5/bookings/ABC123",
        "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
        "client_ip": "203.0.113.7",
        "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" if channel == "jsapi" else None,
    }
    values.update(overrides)
    return PaymentOrder(**values)  # type: ignore[arg-type]


def paid_order(fake: FakeWechatPay, provider: WechatPayProvider, out_trade_no: str = "P20250101000001") -> dict:
    provider.create(order(out_trade_no=out_trade_no))
    return fake.pay(out_trade_no)


# --- Paying -----------------------------------------------------------------------------------------


def test_jsapi_payment_sends_the_documented_fields_and_returns_request_payment_params_signed_by_the_merchant(
    keys, gateway, provider
):
    server = gateway[1]
    start = provider.create(order())
    (request,) = server.received
    assert request.method == "POST" and request.path == "/v3/pay/transactions/jsapi"
    sent = request.json()
    assert sent["amount"] == {"total": 12345, "currency": "CNY"}
    assert sent["payer"] == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    assert (sent["appid"], sent["mchid"], sent["out_trade_no"]) == (APPID, MCHID, "P20250101000001")
    assert sent["notify_url"] == "https://yuyue.example.com/api/v1/payments/wechat/notify"
    assert dt.datetime.fromisoformat(sent["time_expire"]).utcoffset() == dt.timedelta(hours=8)

    params = start.params
    assert start.redirect_url is None and params is not None
    assert params["appId"] == APPID and params["signType"] == "RSA"
    assert params["package"].startswith("prepay_id=wx")
    assert abs(int(params["timeStamp"]) - time.time()) < 60
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    assert verifies(keys.merchant.public_key(), message, params["paySign"])
    assert not verifies(keys.merchant.public_key(), message.replace("prepay_id=", "prepay_id=x"), params["paySign"])


def test_h5_payment_sends_scene_info_and_redirects_to_the_h5_url_with_the_way_back(gateway, provider):
    server = gateway[1]
    start = provider.create(order("h5", payer_id=None))
    sent = server.received[0].json()
    assert server.received[0].path == "/v3/pay/transactions/h5"
    assert sent["scene_info"] == {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}
    assert "payer" not in sent
    url = urlsplit(start.redirect_url or "")
    assert (url.netloc, url.path) == ("wx.tenpay.com", "/cgi-bin/mmpayweb-bin/checkmweb")
    assert parse_qs(url.query)["redirect_url"] == ["https://yuyue.example.com/h5/bookings/ABC123"]


def test_a_long_description_is_cut_to_wechat_pays_127_bytes_without_splitting_a_character(gateway, provider):
    provider.create(order(description="预约" * 100))
    sent = gateway[1].received[0].json()["description"]
    assert sent == "预约" * 21  # 126 bytes: a 43rd character would need 129


def test_jsapi_without_an_openid_and_unknown_channels_are_refused_before_anything_is_sent(gateway, provider):
    with pytest.raises(ValueError, match="openid"):
        provider.create(order(payer_id=None))
    with pytest.raises(ValueError, match="channel"):
        provider.create(order("native"))
    assert gateway[1].received == []


def test_query_reads_a_paid_order_exactly(gateway, provider):
    fake, _ = gateway
    paid = paid_order(fake, provider)
    result = provider.query("P20250101000001")
    assert isinstance(result, PaymentResult)
    assert (result.state, result.amount_fen, result.merchant_ref) == ("paid", 12345, MCHID)
    assert result.provider_trade_no == paid["transaction_id"]
    assert result.paid_at == dt.datetime.fromisoformat(paid["success_time"])
    assert gateway[1].received[-1].raw_query == f"mchid={MCHID}"


def test_query_of_an_unpaid_order_is_pending_and_of_an_unknown_one_a_provider_error(gateway, provider):
    provider.create(order())
    result = provider.query("P20250101000001")
    assert (result.state, result.amount_fen, result.paid_at) == ("pending", 12345, None)
    with pytest.raises(ProviderError, match="ORDER_NOT_EXIST"):
        provider.query("P-never-created")


def test_close_stops_an_unpaid_order_and_reports_one_that_was_paid(gateway, provider):
    fake, server = gateway
    provider.create(order())
    provider.close("P20250101000001")
    assert server.received[-1].path == "/v3/pay/transactions/out-trade-no/P20250101000001/close"
    assert provider.query("P20250101000001").state == "closed"
    paid_order(fake, provider, "P20250101000002")
    with pytest.raises(ProviderError, match="ORDER_PAID"):
        provider.close("P20250101000002")


# --- Refunds ----------------------------------------------------------------------------------------


def test_refund_flow_request_query_and_notification(keys, gateway, provider):
    fake, server = gateway
    paid_order(fake, provider)
    refund = RefundOrder(
        out_trade_no="P20250101000001",
        out_refund_no="R20250101000001",
        refund_fen=2345,
        total_fen=12345,
        reason="行程有变",
        notify_url="https://yuyue.example.com/api/v1/payments/wechat/notify",
    )
    started = provider.refund(refund)
    sent = server.received[-1].json()
    assert server.received[-1].path == "/v3/refund/domestic/refunds"
    assert sent["amount"] == {"refund": 2345, "total": 12345, "currency": "CNY"}
    assert (sent["out_refund_no"], sent["reason"], sent["notify_url"]) == (
        "R20250101000001",
        "行程有变",
        refund.notify_url,
    )
    assert (started.state, started.refund_fen, started.finished_at) == ("pending", 2345, None)
    assert started.provider_refund_no.startswith("50000")

    assert provider.refund(refund) == started  # the same refund number again: the same refund

    finished = fake.finish_refund("R20250101000001")
    queried = provider.query_refund("R20250101000001", "P20250101000001")
    assert (queried.state, queried.refund_fen, queried.out_trade_no) == ("succeeded", 2345, "P20250101000001")
    assert queried.finished_at == dt.datetime.fromisoformat(finished["success_time"])

    resource = {
        "mchid": MCHID,
        "out_trade_no": "P20250101000001",
        "transaction_id": finished["transaction_id"],
        "out_refund_no": "R20250101000001",
        "refund_id": finished["refund_id"],
        "refund_status": "SUCCESS",
        "success_time": finished["success_time"],
        "user_received_account": "支付用户零钱",
        "amount": {"total": 12345, "refund": 2345, "payer_total": 12345, "payer_refund": 2345},
    }
    notified = provider.parse_notification(*notification(keys, "REFUND.SUCCESS", resource))
    assert isinstance(notified, RefundResult)
    assert (notified.state, notified.refund_fen, notified.provider_refund_no) == (
        "succeeded",
        2345,
        finished["refund_id"],
    )
    abnormal = provider.parse_notification(
        *notification(keys, "REFUND.ABNORMAL", {**resource, "refund_status": "ABNORMAL"})
    )
    assert abnormal.state == "failed"


def test_refunding_more_than_was_paid_is_a_provider_error(gateway, provider):
    paid_order(gateway[0], provider)
    with pytest.raises(ProviderError, match="NOT_ENOUGH"):
        provider.refund(RefundOrder("P20250101000001", "R1", 12346, 12345, "", ""))


# --- Notifications ----------------------------------------------------------------------------------


def payment_resource(**overrides: object) -> dict:
    resource = {
        "appid": APPID,
        "mchid": MCHID,
        "out_trade_no": "P20250101000001",
        "transaction_id": "4200000000202501010000000001",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": "2025-01-01T10:00:05+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY", "payer_currency": "CNY"},
    }
    resource.update(overrides)
    return resource


def test_a_payment_notification_verifies_decrypts_and_reads_exactly(keys):
    provider = WechatPayProvider(keys.config("http://127.0.0.1:9"))
    result = provider.parse_notification(*notification(keys, "TRANSACTION.SUCCESS", payment_resource()))
    assert isinstance(result, PaymentResult)
    assert (result.out_trade_no, result.state, result.amount_fen) == ("P20250101000001", "paid", 1999)
    assert (result.merchant_ref, result.provider_trade_no) == (MCHID, "4200000000202501010000000001")
    assert result.paid_at == dt.datetime(2025, 1, 1, 2, 0, 5, tzinfo=dt.UTC)


def test_notification_headers_are_read_in_any_spelling_django_meta_included(keys):
    provider = WechatPayProvider(keys.config("http://127.0.0.1:9"))
    headers, body = notification(keys, "TRANSACTION.SUCCESS", payment_resource())
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    lower = {name.lower(): value for name, value in headers.items()}
    assert provider.parse_notification(meta, body).state == "paid"
    assert provider.parse_notification(lower, body).state == "paid"


@pytest.mark.parametrize(
    "forge",
    ["tampered body", "wrong key", "stale timestamp", "future timestamp", "wrong serial", "no headers", "probe"],
)
def test_a_notification_not_provably_from_wechat_pay_is_refused(keys, forge, caplog):
    provider = WechatPayProvider(keys.config("http://127.0.0.1:9"))
    options: dict = {}
    if forge == "wrong key":
        options["sign_with"] = new_key()
    if forge == "stale timestamp":
        options["timestamp"] = int(time.time()) - 301
    if forge == "future timestamp":
        options["timestamp"] = int(time.time()) + 301
    if forge == "wrong serial":
        options["serial"] = "PUB_KEY_ID_0119000001092024062100000000000999"
    headers, body = notification(keys, "TRANSACTION.SUCCESS", payment_resource(), **options)
    if forge == "tampered body":
        body = body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCESS" ')
    if forge == "no headers":
        headers = {}
    if forge == "probe":  # WeChat Pay's own signature probe must never verify
        headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    with pytest.raises(BadSignature):
        provider.parse_notification(headers, body)
    assert "wechat pay: refused" in caplog.text and keys.apiv3_key not in caplog.text


def test_a_signed_notification_that_does_not_decrypt_means_a_wrong_apiv3_key(keys):
    provider = WechatPayProvider(keys.config("http://127.0.0.1:9"))
    headers, body = notification(keys, "TRANSACTION.SUCCESS", payment_resource(), apiv3_key="x" * 32)
    with pytest.raises(ValueError, match="APIv3 key"):
        provider.parse_notification(headers, body)


def test_platform_certificate_mode_verifies_by_certificate_serial(keys):
    certificate = platform_certificate(keys.platform)
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    provider = WechatPayProvider(
        keys.config("http://127.0.0.1:9", public_key="", public_key_id="", platform_certificates=(pem,))
    )
    serial = format(certificate.serial_number, "x")  # another case than the configured one
    result = provider.parse_notification(*notification(keys, "TRANSACTION.SUCCESS", payment_resource(), serial=serial))
    assert result.state == "paid"
    with pytest.raises(BadSignature):
        provider.parse_notification(*notification(keys, "TRANSACTION.SUCCESS", payment_resource()))  # a public key id


def test_the_answer_to_wechat_pay_is_empty_200_or_a_json_failure(keys):
    provider = WechatPayProvider(keys.config("http://127.0.0.1:9"))
    ok, failed = provider.answer(True), provider.answer(False)
    assert (ok.status, ok.body) == (200, b"")
    assert failed.status == 500 and json.loads(failed.body)["code"] == "FAIL"


# --- Reconciliation ---------------------------------------------------------------------------------


def test_statement_downloads_the_trade_bill_checks_its_hash_and_reads_payment_and_refund_lines(gateway, provider):
    fake, server = gateway
    blank = [""] * 27

    def row(**cells: str) -> str:
        names = BILL_HEADER.split(",")
        values = list(blank)
        for name, value in cells.items():
            values[names.index(name)] = value
        return bill_line(*values)

    fake.bill = "\n".join(
        [
            BILL_HEADER,
            row(
                交易时间="2025-01-01 10:00:05",
                微信订单号="4200000001",
                商户订单号="P1",
                交易状态="SUCCESS",
                应结订单金额="123.45",
                订单金额="123.45",
                退款金额="0.00",
            ),
            row(
                交易时间="2025-01-01 11:30:00",
                微信订单号="4200000001",
                商户订单号="P1",
                交易状态="REFUND",
                微信退款单号="50000001",
                商户退款单号="R1",
                退款金额="23.45",
                申请退款金额="23.45",
                应结订单金额="0.00",
                订单金额="0.00",
            ),
            row(
                交易时间="2025-01-01 23:59:59",
                微信订单号="4200000002",
                商户订单号="P2",
                交易状态="SUCCESS",
                应结订单金额="0.29",
                订单金额="0.29",
            ),
            "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
            "`3,`100.29,`23.45,`0.00,`0.60,`123.74,`23.45",
        ]
    )
    lines = provider.statement(dt.date(2025, 1, 1))
    assert [(x.kind, x.out_trade_no, x.out_refund_no, x.amount_fen, x.provider_no) for x in lines] == [
        ("payment", "P1", "", 12345, "4200000001"),
        ("refund", "P1", "R1", 2345, "50000001"),
        ("payment", "P2", "", 29, "4200000002"),
    ]
    assert lines[0].at == dt.datetime(2025, 1, 1, 10, 0, 5, tzinfo=SHANGHAI)
    bill_request, download = server.received
    assert bill_request.path == "/v3/bill/tradebill"
    assert bill_request.query == {"bill_date": "2025-01-01", "bill_type": "ALL", "tar_type": "GZIP"}
    assert download.path == "/v3/billdownload/file"  # signed too: the fake checked it


def test_a_bill_that_does_not_match_its_hash_is_a_provider_error(gateway, provider):
    fake, _ = gateway
    fake.bill, fake.bill_hash = BILL_HEADER, "0" * 40
    with pytest.raises(ProviderError, match="hash"):
        provider.statement(dt.date(2025, 1, 1))


# --- When WeChat Pay misbehaves ---------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_network_down_is_a_provider_error(keys):
    provider = WechatPayProvider(keys.config(f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(ProviderError, match="did not answer"):
        provider.create(order())
    with pytest.raises(ProviderError):
        provider.query("P1")


@pytest.mark.parametrize(
    "broken",
    [
        Answer(500, '{"code":"SYSTEM_ERROR","message":"系统错误"}'),
        Answer(502, "<html>Bad Gateway</html>", "text/html"),
        Answer(200, "<html>not json</html>", "text/html"),
    ],
)
def test_errors_and_garbage_from_the_gateway_are_provider_errors(keys, broken):
    fake = FakeWechatPay(keys, broken=broken)
    with fake_server(fake) as server, pytest.raises(ProviderError) as caught:
        WechatPayProvider(keys.config(server.url)).query("P1")
    # a 2xx that is not signed is refused as such; anything else is the provider's failure
    assert isinstance(caught.value, BadSignature) == (broken.status == 200)


def test_signed_garbage_is_a_provider_error(keys):
    fake = FakeWechatPay(keys)
    fake.orders["P1"] = {"trade_state": "SUCCESS", "amount": {"total": "12.34"}, "out_trade_no": "P1"}
    with fake_server(fake) as server, pytest.raises(ProviderError, match="whole fen"):
        WechatPayProvider(keys.config(server.url)).query("P1")


@pytest.mark.parametrize("forge", ["another key", "unsigned"])
def test_an_answer_without_the_platform_signature_is_refused(keys, forge):
    fake = FakeWechatPay(
        keys, answer_sign_key=new_key() if forge == "another key" else None, unsigned=forge == "unsigned"
    )
    with fake_server(fake) as server, pytest.raises(BadAnswerSignature) as caught:
        WechatPayProvider(keys.config(server.url)).create(order())
    # never acted on, and a failure callers that catch ProviderError handle (retry later)
    assert isinstance(caught.value, BadSignature) and isinstance(caught.value, ProviderError)


# --- Configuration ----------------------------------------------------------------------------------


def test_from_settings_is_none_until_configured_and_refuses_half_a_configuration(keys, settings, tmp_path):
    settings.WECHATPAY_MCHID = ""
    assert from_settings() is None
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_text(private_pem(keys.merchant))
    settings.WECHATPAY_MCHID = MCHID
    settings.WECHATPAY_APPID = APPID
    settings.WECHATPAY_PRIVATE_KEY = str(key_file)  # a file path works as well as PEM text
    settings.WECHATPAY_CERT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD9C2A1E9B"
    settings.WECHATPAY_APIV3_KEY = keys.apiv3_key
    settings.WECHATPAY_PUBLIC_KEY = public_pem(keys.platform)
    settings.WECHATPAY_PUBLIC_KEY_ID = PUBLIC_KEY_ID
    provider = from_settings()
    assert provider is not None and provider.merchant_ref == MCHID and provider.name == "wechat"
    assert provider.parse_notification(*notification(keys, "TRANSACTION.SUCCESS", payment_resource())).state == "paid"
    settings.WECHATPAY_APIV3_KEY = "too-short"
    with pytest.raises(ImproperlyConfigured, match="32"):
        from_settings()
    settings.WECHATPAY_PUBLIC_KEY_ID = ""
    with pytest.raises(ImproperlyConfigured, match="YUYUE_WECHATPAY_PUBLIC_KEY_ID"):
        from_settings()
