"""Text messages: one interface, a console backend for demos and an Aliyun SMS adapter.

Chinese SMS gateways send only pre-approved templates, so a message is a template code plus its
parameters (``send(phone, "SMS_123", {"code": "123456"})``); sign-in codes and, later,
notifications use the same call. ``YUYUE_SMS_BACKEND`` picks the backend.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import httpx
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from yuyue.core import personal
from yuyue.core.errors import DomainError
from yuyue.integrations.http import json_object

log = logging.getLogger("yuyue.sms")


class SmsBackend(Protocol):
    def send(self, phone: str, template_code: str, params: dict[str, str]) -> str:
        """Send one templated message; returns the provider's message id. Failures are DomainErrors."""
        ...


@dataclass(frozen=True)
class SentMessage:
    phone: str
    template_code: str
    params: dict[str, str]
    message_id: str


class ConsoleSmsBackend:
    """Writes messages to the log (WARNING, so ``make run`` shows the demo sign-in code).

    The last messages stay readable in ``outbox`` (per process), e.g. for tests.
    """

    outbox: collections.deque[SentMessage] = collections.deque(maxlen=200)
    _lock = threading.Lock()

    def send(self, phone: str, template_code: str, params: dict[str, str]) -> str:
        message_id = f"console-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.outbox.append(SentMessage(phone, template_code, dict(params), message_id))
        if "code" in params:
            log.warning("SMS to %s: 验证码 %s", personal.mask_phone(phone), params["code"])
        else:
            log.warning("SMS to %s: %s %s", personal.mask_phone(phone), template_code, params)
        return message_id

    @classmethod
    def last_for(cls, phone: str) -> SentMessage | None:
        with cls._lock:
            return next((m for m in reversed(cls.outbox) if m.phone == phone), None)


# --- Aliyun SMS (dysmsapi, RPC style) ---------------------------------------------------------

ALIYUN_API_VERSION = "2017-05-25"
# Aliyun's codes for a number it will not send to, and for its own per-number throttling.
_ALIYUN_BAD_NUMBER = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT"}
_ALIYUN_THROTTLED = {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User"}


def aliyun_percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signature wants it: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return quote(value, safe="-_.~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """Signature 1.0 (HMAC-SHA1) of an RPC request: sorted, encoded parameters, keyed with ``secret&``."""
    canonical = "&".join(
        f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    string_to_sign = f"{method}&{aliyun_percent_encode('/')}&{aliyun_percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsBackend:
    """``SendSms`` of Aliyun's dysmsapi over plain HTTPS (no SDK): signed GET, JSON answer."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        endpoint: str = "https://dysmsapi.aliyuncs.com/",
        region: str = "cn-hangzhou",
        timeout: float = 5.0,
    ) -> None:
        if not (access_key_id and access_key_secret and sign_name):
            raise ValueError("Aliyun SMS needs an access key id, its secret and a sign name")
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.endpoint = endpoint
        self.region = region
        self.timeout = timeout

    def request_params(self, phone: str, template_code: str, params: dict[str, str]) -> dict[str, str]:
        query = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": ALIYUN_API_VERSION,
            "PhoneNumbers": phone,
            "SignName": self.sign_name,
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
        }
        query["Signature"] = aliyun_signature(query, self.access_key_secret)
        return query

    def send(self, phone: str, template_code: str, params: dict[str, str]) -> str:
        query = self.request_params(phone, template_code, params)
        # Encoded by hand: Aliyun checks the signature against exactly this encoding (%20, not +).
        url = (
            self.endpoint
            + "?"
            + "&".join(f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}" for k, v in query.items())
        )
        try:
            response = httpx.get(url, timeout=self.timeout)
            body = json_object(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            log.error("Aliyun SMS did not answer usefully: %s", exc)
            raise DomainError("unavailable", _("The text message could not be sent; please try again.")) from None
        code = str(body.get("Code", ""))
        if code == "OK":
            return str(body.get("BizId", ""))
        log.error("Aliyun SMS refused %s: %s %s", personal.mask_phone(phone), code, body.get("Message"))
        if code in _ALIYUN_BAD_NUMBER:
            raise DomainError("invalid", fields={"phone": _("Text messages cannot be sent to this number.")})
        if code in _ALIYUN_THROTTLED:
            raise DomainError("rate_limited", _("Too many text messages to this number; please try again later."))
        raise DomainError("unavailable", _("The text message could not be sent; please try again."))


def backend() -> SmsBackend:
    """The configured backend (``YUYUE_SMS_BACKEND``)."""
    if settings.SMS_BACKEND == "aliyun":
        return AliyunSmsBackend(
            access_key_id=settings.ALIYUN_SMS_ACCESS_KEY_ID,
            access_key_secret=settings.ALIYUN_SMS_ACCESS_KEY_SECRET,
            sign_name=settings.ALIYUN_SMS_SIGN_NAME,
            endpoint=settings.ALIYUN_SMS_ENDPOINT,
            region=settings.ALIYUN_SMS_REGION,
            timeout=settings.INTEGRATION_TIMEOUT,
        )
    if settings.SMS_BACKEND == "console":
        return ConsoleSmsBackend()
    raise ValueError(f"unknown YUYUE_SMS_BACKEND {settings.SMS_BACKEND!r} (console or aliyun)")


def send_login_code(phone: str, code: str) -> str:
    return backend().send(phone, settings.SMS_LOGIN_TEMPLATE, {"code": code})
