"""WeChat Pay APIv3 (direct merchant): JSAPI (mini-program, in-WeChat H5) and H5 payments.

The byte-exact parts come from the official ``wechatpayv3`` SDK: the ``Authorization`` header
(``build_authorization``: SHA256withRSA over ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n``), the
``paySign`` for ``wx.requestPayment`` (``rsa_sign``), answer and notification signatures
(``rsa_verify`` over ``TIMESTAMP\\nNONCE\\nBODY\\n``) and the AEAD_AES_256_GCM resource decryption
(``aes_decrypt``). The HTTP exchange is ours, with httpx like every other yuyue integration, because
the SDK's ``Core`` pins the gateway in a private attribute, raises bare ``Exception`` for every kind
of failure, and in platform-certificate mode downloads certificates from its constructor and again
for every unknown ``Wechatpay-Serial`` — a forged callback would make the server call out.

Platform keys are configuration: the WeChat Pay public key and its id (公钥模式, what WeChat Pay
gives merchants now; it does not expire) and/or platform certificates (the older mode). A serial
we were not given is refused, never fetched.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from wechatpayv3.utils import aes_decrypt, build_authorization, load_certificate, rsa_sign, rsa_verify

from yuyue.core import timeutil
from yuyue.core.money import yuan_to_fen
from yuyue.integrations.alipay import load_private_key, load_public_key
from yuyue.payments.providers.base import (
    BadAnswerSignature,
    BadSignature,
    NotifyAnswer,
    PaymentOrder,
    PaymentResult,
    PaymentStart,
    PaymentState,
    Provider,
    ProviderError,
    RefundOrder,
    RefundResult,
    RefundState,
    StatementLine,
)

log = logging.getLogger(__name__)
_Result = TypeVar("_Result", PaymentResult, RefundResult)

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# WeChat Pay signs each callback with its send time; older ones are replays (its own guidance: 5 min).
MAX_NOTIFY_SKEW_SECONDS = 300
DESCRIPTION_MAX_BYTES = 127
REASON_MAX_CHARS = 80

_TRADE_STATES: dict[str, PaymentState] = {
    "SUCCESS": "paid",
    "REFUND": "refunded",  # paid, then (partly) refunded
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "failed",
}
_REFUND_STATES: dict[str, RefundState] = {
    "SUCCESS": "succeeded",
    "PROCESSING": "pending",
    "CLOSED": "failed",
    "ABNORMAL": "failed",  # money could not reach the payer (closed card …): a person must act
}


@dataclass(frozen=True)
class WechatPayConfig:
    mchid: str
    appid: str
    private_key: str  # the merchant API key (apiclient_key.pem): PEM text or a file path
    cert_serial_no: str  # serial of the merchant API certificate
    apiv3_key: str  # 32 characters, set in the merchant platform
    public_key: str = ""  # WeChat Pay public key (公钥模式): PEM text or a file path
    public_key_id: str = ""  # "PUB_KEY_ID_…"
    platform_certificates: tuple[str, ...] = ()  # older mode: WeChat Pay platform certificates (PEM)
    api_base: str = "https://api.mch.weixin.qq.com"
    timeout: float = 5.0


class WechatPayProvider(Provider):
    name = "wechat"

    def __init__(self, config: WechatPayConfig) -> None:
        if len(config.apiv3_key.encode()) != 32:
            raise ValueError("the WeChat Pay APIv3 key must be 32 bytes")
        if bool(config.public_key) != bool(config.public_key_id):
            raise ValueError("the WeChat Pay public key and its id go together")
        self.config = config
        self.merchant_ref = config.mchid
        self._private_key = load_private_key(config.private_key)
        self._platform_keys: dict[str, rsa.RSAPublicKey] = {}
        if config.public_key:
            self._platform_keys[config.public_key_id] = load_public_key(config.public_key)
        for pem in config.platform_certificates:
            certificate = load_certificate(pem)
            key = certificate.public_key() if certificate else None
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("a WeChat Pay platform certificate does not load or is not RSA")
            self._platform_keys[format(certificate.serial_number, "X")] = key
        if not self._platform_keys:
            raise ValueError("WeChat Pay needs its public key (and id) or a platform certificate")
        self._base = config.api_base.rstrip("/")

    # --- Paying -------------------------------------------------------------------------------

    def create(self, order: PaymentOrder) -> PaymentStart:
        body: dict[str, Any] = {
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            "description": _cut_bytes(order.description, DESCRIPTION_MAX_BYTES),
            "out_trade_no": order.out_trade_no,
            # After this WeChat Pay refuses to collect, so an expired hold cannot be paid late.
            "time_expire": _rfc3339(order.expires_at),
            "notify_url": order.notify_url,
            "amount": {"total": order.amount_fen, "currency": "CNY"},
        }
        if order.channel == "jsapi":
            if not order.payer_id:
                raise ValueError("a JSAPI payment needs the payer's openid")
            body["payer"] = {"openid": order.payer_id}
            answer = self._call("POST", "/v3/pay/transactions/jsapi", body)
            return PaymentStart(params=self.jsapi_params(_text(answer, "prepay_id")))
        if order.channel == "h5":
            body["scene_info"] = {"payer_client_ip": order.client_ip, "h5_info": {"type": "Wap"}}
            answer = self._call("POST", "/v3/pay/transactions/h5", body)
            url = _text(answer, "h5_url")
            if order.return_url:  # where WeChat sends the browser back to after paying
                url += ("&" if "?" in url else "?") + urlencode({"redirect_url": order.return_url})
            return PaymentStart(redirect_url=url)
        raise ValueError(f"WeChat Pay has no channel {order.channel!r} (jsapi or h5)")

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What ``wx.requestPayment`` / ``WeixinJSBridge`` needs, signed with the merchant key."""
        params = {
            "appId": self.config.appid,
            "timeStamp": str(int(time.time())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
        }
        message = "\n".join((params["appId"], params["timeStamp"], params["nonceStr"], params["package"])) + "\n"
        params["paySign"] = rsa_sign(self._private_key, message)
        return params

    def query(self, out_trade_no: str) -> PaymentResult:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}?mchid={quote(self.config.mchid)}"
        return _answer(self._payment_result, self._call("GET", path))

    def close(self, out_trade_no: str) -> None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close"
        self._call("POST", path, {"mchid": self.config.mchid})

    # --- Refunds ------------------------------------------------------------------------------

    def refund(self, order: RefundOrder) -> RefundResult:
        body: dict[str, Any] = {
            "out_trade_no": order.out_trade_no,
            "out_refund_no": order.out_refund_no,
            "amount": {"refund": order.refund_fen, "total": order.total_fen, "currency": "CNY"},
        }
        if order.reason:
            body["reason"] = order.reason[:REASON_MAX_CHARS]
        if order.notify_url:
            body["notify_url"] = order.notify_url
        return _answer(self._refund_result, self._call("POST", "/v3/refund/domestic/refunds", body))

    def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        return _answer(self._refund_result, self._call("GET", path))

    # --- Notifications ------------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentResult | RefundResult:
        """Verify a callback (signature, age) and decrypt its resource.

        ``headers`` may be Django's ``request.headers`` or ``request.META``: the Wechatpay-* headers
        must reach us unchanged, and ``body`` must be the raw request body.
        """
        text = body.decode("utf-8", errors="replace")
        self._verify(headers, text, max_age=MAX_NOTIFY_SKEW_SECONDS, refused=BadSignature)
        envelope = json.loads(text)
        resource = envelope.get("resource") if isinstance(envelope, dict) else None
        if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise ValueError("a WeChat Pay notification without an AEAD_AES_256_GCM resource")
        plain = aes_decrypt(
            nonce=str(resource.get("nonce", "")),
            ciphertext=str(resource.get("ciphertext", "")),
            associated_data=str(resource.get("associated_data") or ""),
            apiv3_key=self.config.apiv3_key,
        )
        if plain is None:  # signed by WeChat Pay, so the APIv3 key must be wrong
            raise ValueError("the WeChat Pay notification does not decrypt: check the APIv3 key")
        data = json.loads(plain)
        if not isinstance(data, dict):
            raise ValueError("the WeChat Pay notification resource is not an object")
        event = str(envelope.get("event_type", ""))
        if event == "TRANSACTION.SUCCESS":
            return self._payment_result(data)
        if event.startswith("REFUND."):
            return self._refund_result(data)
        raise ValueError(f"a WeChat Pay notification of an unknown kind: {event!r}")

    def answer(self, ok: bool) -> NotifyAnswer:
        if ok:
            return NotifyAnswer(status=200, content_type="application/json")
        body = json.dumps({"code": "FAIL", "message": "not processed, please retry"}).encode()
        return NotifyAnswer(status=500, body=body, content_type="application/json")

    # --- Reconciliation -----------------------------------------------------------------------

    def statement(self, day: dt.date) -> list[StatementLine]:
        """The trade bill (bill_type ALL) of ``day``: payment lines and refund lines."""
        answer = self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL&tar_type=GZIP")
        download_url = _text(answer, "download_url")
        expected_hash = _text(answer, "hash_value").lower()
        parts = urlsplit(download_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        # The file itself is not signed; its SHA1 comes in the signed answer above.
        response = self._send("GET", download_url, path, "")
        try:
            content = gzip.decompress(response.content)
        except (OSError, EOFError) as exc:
            raise ProviderError(f"WeChat Pay bill is not a gzip file: {exc}") from None
        # SHA1 is WeChat Pay's choice: a transfer check on a file fetched over TLS from their host, not
        # a signature (forging a bill would take a SHA1 second preimage of their signed hash).
        digest = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        if answer.get("hash_type", "SHA1") != "SHA1" or digest != expected_hash:
            raise ProviderError("WeChat Pay bill does not match the hash in the bill answer")
        try:
            return parse_trade_bill(content.decode("utf-8-sig"))
        except (ValueError, csv.Error) as exc:
            raise ProviderError(f"WeChat Pay bill we cannot read: {exc}") from None

    # --- Wire ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One signed APIv3 request; the answer's signature is verified before it is read."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
        response = self._send(method, self._base + path, path, payload)
        self._verify(response.headers, response.text, refused=BadAnswerSignature)
        if response.status_code == 204:  # close answers "done" with no body
            return {}
        try:
            value = json.loads(response.text)
        except ValueError:
            raise ProviderError("WeChat Pay answered something that is not JSON") from None
        if not isinstance(value, dict):
            raise ProviderError("WeChat Pay answered something that is not a JSON object")
        return value

    def _send(self, method: str, url: str, signed_path: str, payload: str) -> httpx.Response:
        authorization = build_authorization(
            signed_path, method, self.config.mchid, self.config.cert_serial_no, self._private_key, data=payload or None
        )
        headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "yuyue",
        }
        if self.config.public_key_id:  # tells WeChat Pay which key we verify its answers with
            headers["Wechatpay-Serial"] = self.config.public_key_id
        try:
            with httpx.Client(timeout=self.config.timeout) as client:
                response = client.request(method, url, headers=headers, content=payload.encode())
        except httpx.HTTPError as exc:
            raise ProviderError(f"WeChat Pay did not answer: {exc.__class__.__name__}") from None
        if not 200 <= response.status_code < 300:
            raise ProviderError(f"WeChat Pay refused ({response.status_code}): {_error_text(response.text)}")
        return response

    def _verify(
        self, headers: Mapping[str, str], text: str, *, refused: type[BadSignature], max_age: int | None = None
    ) -> None:
        """Raise ``refused`` unless WeChat Pay signed ``text`` with a platform key we were given."""
        found = _wechatpay_headers(headers)
        serial = found.get("serial", "")
        key = self._platform_keys.get(serial)
        if key is None:
            key = next((k for s, k in self._platform_keys.items() if _same_serial(s, serial)), None)
        timestamp = found.get("timestamp", "")
        problem = ""
        if key is None:
            problem = f"unknown platform key serial {serial[:64]!r}"
        elif found.get("signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            problem = "unsupported signature type"
        elif not timestamp.isdigit():
            problem = "missing timestamp"
        elif max_age is not None and abs(time.time() - int(timestamp)) > max_age:
            problem = "timestamp too far from now"
        elif not rsa_verify(timestamp, found.get("nonce", ""), text, found.get("signature", ""), key):
            problem = "signature does not verify"
        if problem:
            log.warning("wechat pay: refused a message with a bad signature (%s)", problem)
            raise refused(f"wechat: {problem}")

    # --- Mapping ------------------------------------------------------------------------------

    def _payment_result(self, data: Mapping[str, Any]) -> PaymentResult:
        state = _TRADE_STATES.get(str(data.get("trade_state", "")))
        if state is None:
            raise ValueError(f"a WeChat Pay trade state we do not know: {data.get('trade_state')!r}")
        amount = _amount(data)
        return PaymentResult(
            out_trade_no=str(data.get("out_trade_no", "")),
            state=state,
            amount_fen=_int(amount.get("total")),
            merchant_ref=str(data.get("mchid", "")),
            provider_trade_no=str(data.get("transaction_id") or ""),
            paid_at=_parse_time(data.get("success_time")) if state in ("paid", "refunded") else None,
            raw=dict(data),
        )

    def _refund_result(self, data: Mapping[str, Any]) -> RefundResult:
        status = str(data.get("refund_status") or data.get("status") or "")
        state = _REFUND_STATES.get(status)
        if state is None:
            raise ValueError(f"a WeChat Pay refund status we do not know: {status!r}")
        amount = _amount(data)
        return RefundResult(
            out_refund_no=str(data.get("out_refund_no", "")),
            out_trade_no=str(data.get("out_trade_no", "")),
            state=state,
            refund_fen=_int(amount.get("refund")),
            provider_refund_no=str(data.get("refund_id") or ""),
            finished_at=_parse_time(data.get("success_time")) if state == "succeeded" else None,
            raw=dict(data),
        )


def parse_trade_bill(text: str) -> list[StatementLine]:
    """Lines of a trade bill: a header row, detail rows whose fields start with a backquote (so
    spreadsheets keep long numbers), then a summary header and row, which are not lines."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [name.strip() for name in rows[0]]
    column = {name: i for i, name in enumerate(header)}
    for needed in ("交易时间", "微信订单号", "商户订单号", "交易状态"):
        if needed not in column:
            raise ProviderError(f"WeChat Pay bill without the column {needed}")

    def cell(row: list[str], name: str) -> str:
        at = column.get(name)
        return row[at].strip().lstrip("`").strip() if at is not None and at < len(row) else ""

    def fen(row: list[str], *names: str) -> int:
        for name in names:
            if value := cell(row, name):
                return yuan_to_fen(value)
        return 0

    lines: list[StatementLine] = []
    for row in rows[1:]:
        if not row or not row[0].strip().startswith("`"):
            break  # the summary part starts here
        at = _parse_time(cell(row, "交易时间"), local=True)
        if cell(row, "交易状态") == "REFUND":
            lines.append(
                StatementLine(
                    kind="refund",
                    out_trade_no=cell(row, "商户订单号"),
                    out_refund_no=cell(row, "商户退款单号"),
                    amount_fen=fen(row, "申请退款金额", "退款金额"),
                    provider_no=cell(row, "微信退款单号"),
                    at=at,
                )
            )
        else:
            lines.append(
                StatementLine(
                    kind="payment",
                    out_trade_no=cell(row, "商户订单号"),
                    out_refund_no="",
                    amount_fen=fen(row, "订单金额", "应结订单金额"),
                    provider_no=cell(row, "微信订单号"),
                    at=at,
                )
            )
    return lines


def _answer(read: Callable[[Mapping[str, Any]], _Result], data: Mapping[str, Any]) -> _Result:
    """A verified API answer read into a result; one we cannot read is the provider's failure."""
    try:
        return read(data)
    except ValueError as exc:
        raise ProviderError(str(exc)) from None


def _wechatpay_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Wechatpay-* headers by their short name, from any spelling (HTTP, Django META, lower case)."""
    found = {}
    for name, value in headers.items():
        normal = name.lower().replace("_", "-").removeprefix("http-")
        if normal.startswith("wechatpay-"):
            found[normal.removeprefix("wechatpay-")] = str(value).strip()
    return found


def _same_serial(configured: str, given: str) -> bool:
    """Certificate serials are hex; WeChat Pay may write them with other case or leading zeros."""
    try:
        return int(configured, 16) == int(given, 16)
    except ValueError:
        return False


def _text(answer: Mapping[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"WeChat Pay answer without {key}")
    return value


def _amount(data: Mapping[str, Any]) -> Mapping[str, Any]:
    amount = data.get("amount")
    return amount if isinstance(amount, dict) else {}


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a WeChat Pay amount that is not whole fen: {value!r}")
    return value


def _parse_time(value: Any, *, local: bool = False) -> dt.datetime | None:
    """RFC 3339 from the API ("2024-01-02T10:00:00+08:00"), Beijing wall time in bills."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"a WeChat Pay time we cannot read: {value!r}") from None
    if moment.tzinfo is None:
        if not local:
            raise ValueError(f"a WeChat Pay time without an offset: {value!r}")
        moment = moment.replace(tzinfo=timeutil.local_zone())
    return moment.astimezone(dt.UTC)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(timeutil.local_zone()).isoformat(timespec="seconds")


def _cut_bytes(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, never cutting a character in half."""
    return text.encode()[:limit].decode(errors="ignore")


def _error_text(text: str) -> str:
    """WeChat Pay's own error code and message, or the start of whatever came back."""
    try:
        value = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(value, dict) and "code" in value:
        return f"{value.get('code')} {str(value.get('message', ''))[:200]}"
    return text[:200]


def from_settings() -> WechatPayProvider | None:
    """The configured WeChat Pay merchant, or None when ``YUYUE_WECHATPAY_MCHID`` is unset."""
    if not settings.WECHATPAY_MCHID:
        return None
    missing = [
        f"YUYUE_{name}"
        for name in (
            "WECHATPAY_APPID",
            "WECHATPAY_PRIVATE_KEY",
            "WECHATPAY_CERT_SERIAL",
            "WECHATPAY_APIV3_KEY",
            "WECHATPAY_PUBLIC_KEY",
            "WECHATPAY_PUBLIC_KEY_ID",
        )
        if not getattr(settings, name)
    ]
    if missing:
        raise ImproperlyConfigured(f"WeChat Pay needs {', '.join(missing)}")
    try:
        return WechatPayProvider(
            WechatPayConfig(
                mchid=settings.WECHATPAY_MCHID,
                appid=settings.WECHATPAY_APPID,
                private_key=settings.WECHATPAY_PRIVATE_KEY,
                cert_serial_no=settings.WECHATPAY_CERT_SERIAL,
                apiv3_key=settings.WECHATPAY_APIV3_KEY,
                public_key=settings.WECHATPAY_PUBLIC_KEY,
                public_key_id=settings.WECHATPAY_PUBLIC_KEY_ID,
                api_base=settings.WECHATPAY_API_BASE,
                timeout=settings.INTEGRATION_TIMEOUT,
            )
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"WeChat Pay settings: {exc}") from None
