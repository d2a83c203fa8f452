"""The Aliyun SMS adapter against a local server that checks the request like Aliyun does."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from urllib.parse import quote_plus

import pytest
from django.test import override_settings
from factories import make_phone
from fake_http import Answer, Received, fake_server

from yuyue.accounts import services
from yuyue.core.errors import DomainError
from yuyue.integrations import sms

KEY_ID, SECRET = "LTAI5tTestKeyId", "test-secret/with+chars="


def java_style_encode(value: str) -> str:
    """Aliyun's documented recipe: URLEncoder (UTF-8), then '+'→%20, '*'→%2A, %7E→'~'."""
    return quote_plus(value, safe="*").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def expected_signature(params: dict[str, str]) -> str:
    canonical = "&".join(
        f"{java_style_encode(k)}={java_style_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    to_sign = "GET&" + java_style_encode("/") + "&" + java_style_encode(canonical)
    return base64.b64encode(hmac.new(f"{SECRET}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def aliyun(request: Received) -> Answer:
    """Answers like dysmsapi: signature and parameters checked, then OK or Aliyun's error codes."""
    params = request.query
    if params.get("Signature") != expected_signature(params):
        return Answer(
            400, json.dumps({"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"})
        )
    if params.get("AccessKeyId") != KEY_ID:
        return Answer(404, json.dumps({"Code": "InvalidAccessKeyId.NotFound", "Message": "not found"}))
    required = {"Action": "SendSms", "Version": "2017-05-25", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0"}
    if any(params.get(k) != v for k, v in required.items()):
        return Answer(400, json.dumps({"Code": "MissingParameter", "Message": "bad common parameters"}))
    if params["PhoneNumbers"] == "13000000000":
        return Answer(200, json.dumps({"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}))
    if params["PhoneNumbers"] == "13000000001":
        return Answer(200, json.dumps({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "业务限流"}))
    if params["TemplateCode"] == "SMS_BROKEN":
        return Answer(200, json.dumps({"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模版不合法"}))
    return Answer(200, json.dumps({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "R1"}))


def backend(url: str, secret: str = SECRET) -> sms.AliyunSmsBackend:
    return sms.AliyunSmsBackend(access_key_id=KEY_ID, access_key_secret=secret, sign_name="预约", endpoint=url + "/")


def test_send_is_signed_and_carries_the_template_and_its_parameters():
    with fake_server(aliyun) as server:
        message_id = backend(server.url).send("13812345678", "SMS_153055065", {"code": "123456", "name": "张 三*~"})
    assert message_id == "900619746936498440^0"
    (request,) = server.received
    params = request.query
    assert request.method == "GET" and request.path == "/"
    assert params["PhoneNumbers"] == "13812345678"
    assert params["SignName"] == "预约"
    assert params["TemplateCode"] == "SMS_153055065"
    assert json.loads(params["TemplateParam"]) == {"code": "123456", "name": "张 三*~"}
    assert params["Format"] == "JSON" and params["RegionId"] == "cn-hangzhou"
    assert len(params["SignatureNonce"]) >= 16
    stamp = dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs(dt.datetime.now(dt.UTC) - stamp) < dt.timedelta(minutes=1)
    assert "+" not in request.raw_query  # spaces travel as %20, as the signature assumed


def test_nonces_differ_between_messages():
    with fake_server(aliyun) as server:
        for _ in range(2):
            backend(server.url).send("13812345678", "SMS_1", {"code": "1"})
    assert len({r.query["SignatureNonce"] for r in server.received}) == 2


def test_a_wrong_secret_is_refused_by_the_server_and_reported_as_unavailable():
    with fake_server(aliyun) as server, pytest.raises(DomainError) as refusal:
        backend(server.url, secret="wrong").send("13812345678", "SMS_1", {"code": "1"})
    assert refusal.value.code == "unavailable" and refusal.value.status == 503


@pytest.mark.parametrize(
    ("phone", "template", "code"),
    [
        ("13000000000", "SMS_1", "invalid"),
        ("13000000001", "SMS_1", "rate_limited"),
        ("13812345678", "SMS_BROKEN", "unavailable"),
    ],
)
def test_aliyun_errors_become_translated_refusals(phone, template, code):
    with fake_server(aliyun) as server, pytest.raises(DomainError) as refusal:
        backend(server.url).send(phone, template, {"code": "1"})
    assert refusal.value.code == code and refusal.value.message


def test_a_server_that_answers_nonsense_is_unavailable():
    nonsense = Answer(502, "<html>bad gateway</html>", "text/html")
    with fake_server(lambda r: nonsense) as server, pytest.raises(DomainError) as refusal:
        backend(server.url).send("13812345678", "SMS_1", {"code": "1"})
    assert refusal.value.code == "unavailable"


def test_nobody_listening_is_unavailable():
    with fake_server(aliyun) as server:
        url = server.url
    with pytest.raises(DomainError) as refusal:
        backend(url).send("13812345678", "SMS_1", {"code": "1"})
    assert refusal.value.code == "unavailable"


@pytest.mark.django_db
def test_sign_in_code_travels_through_aliyun_and_signs_in():
    phone = make_phone()
    with (
        fake_server(aliyun) as server,
        override_settings(
            SMS_BACKEND="aliyun",
            ALIYUN_SMS_ACCESS_KEY_ID=KEY_ID,
            ALIYUN_SMS_ACCESS_KEY_SECRET=SECRET,
            ALIYUN_SMS_SIGN_NAME="预约",
            ALIYUN_SMS_ENDPOINT=server.url + "/",
            SMS_LOGIN_TEMPLATE="SMS_LOGIN",
        ),
    ):
        services.request_login_code(phone, ip="10.1.1.1")
    (request,) = server.received
    assert request.query["TemplateCode"] == "SMS_LOGIN"
    code = json.loads(request.query["TemplateParam"])["code"]
    assert services.login_with_code(phone, code).phone == phone


@pytest.mark.django_db
def test_a_failed_send_voids_the_code_and_allows_asking_again_at_once():
    phone = make_phone()
    with (
        fake_server(lambda r: Answer(500, "{}")) as server,
        override_settings(
            SMS_BACKEND="aliyun",
            ALIYUN_SMS_ACCESS_KEY_ID=KEY_ID,
            ALIYUN_SMS_ACCESS_KEY_SECRET=SECRET,
            ALIYUN_SMS_SIGN_NAME="预约",
            ALIYUN_SMS_ENDPOINT=server.url + "/",
        ),
        pytest.raises(DomainError, match=r"^unavailable"),
    ):
        services.request_login_code(phone, ip="10.1.1.2")
    services.request_login_code(phone, ip="10.1.1.2")  # console backend again; no resend wait
    assert sms.ConsoleSmsBackend.last_for(phone) is not None


@pytest.mark.parametrize("answer", ["[]", '"OK"', "null"])
def test_odd_aliyun_answers_are_unavailable_not_crashes(answer):
    with fake_server(lambda r: Answer(200, answer)) as server, pytest.raises(DomainError) as refusal:
        backend(server.url).send("13812345678", "SMS_1", {"code": "1"})
    assert refusal.value.code == "unavailable"
