"""A local WeChat Pay APIv3 merchant gateway for adapter tests.

It checks what the adapter sends the way WeChat Pay does (the ``Authorization`` signature with the
merchant's public key over ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n``, the mchid and certificate
serial, the documented JSON fields), keeps the orders and refunds it was given, and signs every
answer with the platform key (``Wechatpay-Signature`` over ``TIMESTAMP\\nNONCE\\nBODY\\n``).
``notification`` builds callbacks as WeChat Pay sends them: resource encrypted with AES-256-GCM
under the APIv3 key, headers signed with the platform key.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from fake_http import Answer, Received

from yuyue.payments.providers.wechatpay import WechatPayConfig

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
CERT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD9C2A1E9B"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092024062100000000000001"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def verifies(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def platform_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A platform certificate like WeChat Pay's older mode hands out (self-signed here)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


@dataclass
class Keys:
    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey
    apiv3_key: str = field(default_factory=lambda: "".join(secrets.choice(string.ascii_letters) for _ in range(32)))

    def config(self, api_base: str, **overrides: Any) -> WechatPayConfig:
        values: dict[str, Any] = {
            "mchid": MCHID,
            "appid": APPID,
            "private_key": private_pem(self.merchant),
            "cert_serial_no": CERT_SERIAL,
            "apiv3_key": self.apiv3_key,
            "public_key": public_pem(self.platform),
            "public_key_id": PUBLIC_KEY_ID,
            "api_base": api_base,
            "timeout": 2.0,
        }
        values.update(overrides)
        return WechatPayConfig(**values)


def signed_headers(
    key: rsa.RSAPrivateKey, body: str, *, serial: str = PUBLIC_KEY_ID, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16)
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": sign(key, f"{stamp}\n{nonce}\n{body}\n"),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def notification(
    keys: Keys,
    event_type: str,
    resource: dict[str, Any],
    *,
    sign_with: rsa.RSAPrivateKey | None = None,
    serial: str = PUBLIC_KEY_ID,
    timestamp: int | None = None,
    apiv3_key: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """A callback as WeChat Pay posts it: (headers, body)."""
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay uses
    associated_data = "transaction" if event_type.startswith("TRANSACTION") else "refund"
    aes = AESGCM((apiv3_key or keys.apiv3_key).encode())
    ciphertext = aes.encrypt(
        nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), associated_data.encode()
    )
    body = json.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": dt.datetime.now(SHANGHAI).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功" if event_type == "TRANSACTION.SUCCESS" else "退款状态变更",
            "resource": {
                "original_type": associated_data,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": associated_data,
                "nonce": nonce,
            },
        },
        ensure_ascii=False,
    )
    headers = signed_headers(sign_with or keys.platform, body, serial=serial, timestamp=timestamp)
    return headers, body.encode()


_AUTH = re.compile(r"^WECHATPAY2-SHA256-RSA2048 (.+)$")
BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
)


@dataclass
class FakeWechatPay:
    """The server's behaviour; ``fake_server(FakeWechatPay(keys))`` runs it on 127.0.0.1."""

    keys: Keys
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what the adapter sent wrong
    bill: str = ""
    answer_sign_key: rsa.RSAPrivateKey | None = None  # another key: the adapter must refuse the answer
    unsigned: bool = False
    broken: Answer | None = None  # answer everything with this (500, HTML …)
    bill_hash: str | None = None

    def __call__(self, request: Received) -> Answer:
        if self.broken is not None:
            return self.broken
        url = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        problem = self._check_authorization(request, url)
        if problem:
            self.problems.append(problem)
            return self._answer(401, {"code": "SIGN_ERROR", "message": problem})
        if request.path == "/v3/billdownload/file":
            content = self.bill.encode()
            return Answer(200, gzip.compress(content), "application/octet-stream")
        status, body = self._route(request)
        return self._answer(status, body)

    def pay(self, out_trade_no: str, at: dt.datetime | None = None) -> dict[str, Any]:
        """The payer pays: what the notification resource and later queries say."""
        order = self.orders[out_trade_no]
        order.update(
            trade_state="SUCCESS",
            trade_state_desc="支付成功",
            transaction_id=f"42000{len(self.orders):05d}{secrets.randbelow(10**10):010d}",
            success_time=(at or dt.datetime.now(SHANGHAI)).astimezone(SHANGHAI).isoformat(timespec="seconds"),
            payer={"openid": order.get("payer", {}).get("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")},
            bank_type="OTHERS",
        )
        order["amount"].update(payer_total=order["amount"]["total"], payer_currency="CNY")
        return dict(order)

    def finish_refund(self, out_refund_no: str) -> dict[str, Any]:
        refund = self.refunds[out_refund_no]
        refund.update(status="SUCCESS", success_time=dt.datetime.now(SHANGHAI).isoformat(timespec="seconds"))
        return dict(refund)

    # --- Checks -------------------------------------------------------------------------------

    def _check_authorization(self, request: Received, url: str) -> str:
        match = _AUTH.match(request.headers.get("authorization", ""))
        if not match:
            return "no WECHATPAY2-SHA256-RSA2048 Authorization header"
        fields = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if fields.get("mchid") != MCHID or fields.get("serial_no") != CERT_SERIAL:
            return f"wrong mchid or serial_no: {fields}"
        if abs(time.time() - int(fields.get("timestamp", "0"))) > 300:
            return "timestamp too old"
        message = f"{request.method}\n{url}\n{fields['timestamp']}\n{fields['nonce_str']}\n{request.body.decode()}\n"
        if not verifies(self.keys.merchant.public_key(), message, fields.get("signature", "")):
            return "Authorization signature does not verify with the merchant public key"
        if request.headers.get("wechatpay-serial", PUBLIC_KEY_ID) != PUBLIC_KEY_ID:
            return "Wechatpay-Serial names a key we do not have"
        return ""

    def _route(self, request: Received) -> tuple[int, dict[str, Any] | None]:
        path, method = request.path, request.method
        if method == "POST" and path in ("/v3/pay/transactions/jsapi", "/v3/pay/transactions/h5"):
            return self._prepay(request.json(), jsapi=path.endswith("jsapi"))
        if m := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path):
            if method != "GET" or request.query.get("mchid") != MCHID:
                return 400, {"code": "PARAM_ERROR", "message": "mchid is required"}
            order = self.orders.get(m.group(1))
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            return 200, order
        if m := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path):
            if request.json() != {"mchid": MCHID}:
                return 400, {"code": "PARAM_ERROR", "message": "body must be the mchid"}
            order = self.orders.get(m.group(1))
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            if order["trade_state"] == "SUCCESS":
                return 400, {"code": "ORDER_PAID", "message": "订单已支付"}
            order.update(trade_state="CLOSED")
            return 204, None
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(request.json())
        if m := re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path):
            refund = self.refunds.get(m.group(1))
            return (200, refund) if refund else (404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
        if path == "/v3/bill/tradebill":
            q = request.query
            if q.get("bill_type") != "ALL" or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", q.get("bill_date", "")):
                return 400, {"code": "PARAM_ERROR", "message": "bill_date/bill_type"}
            content = self.bill.encode()
            return 200, {
                "hash_type": "SHA1",
                "hash_value": self.bill_hash or hashlib.sha1(content).hexdigest(),
                "download_url": f"http://{request.headers['host']}/v3/billdownload/file?token=T{q['bill_date']}",
            }
        return 404, {"code": "NOT_FOUND", "message": f"no {method} {path}"}

    def _prepay(self, body: dict[str, Any], *, jsapi: bool) -> tuple[int, dict[str, Any]]:
        wrong = []
        if body.get("appid") != APPID or body.get("mchid") != MCHID:
            wrong.append("appid/mchid")
        amount = body.get("amount", {})
        if not isinstance(amount.get("total"), int) or amount["total"] <= 0 or amount.get("currency") != "CNY":
            wrong.append("amount")
        if not body.get("notify_url", "").startswith("https://") or not body.get("out_trade_no"):
            wrong.append("notify_url/out_trade_no")
        if not body.get("description") or len(body["description"].encode()) > 127:
            wrong.append("description")
        try:
            expires = dt.datetime.fromisoformat(body.get("time_expire", ""))
            if expires.tzinfo is None:
                wrong.append("time_expire without offset")
        except ValueError:
            wrong.append("time_expire")
        if jsapi and not body.get("payer", {}).get("openid"):
            wrong.append("payer.openid")
        scene = body.get("scene_info", {})
        if not jsapi and (not scene.get("payer_client_ip") or scene.get("h5_info", {}).get("type") != "Wap"):
            wrong.append("scene_info")
        if wrong:
            self.problems.append(f"prepay: {wrong}")
            return 400, {"code": "PARAM_ERROR", "message": ", ".join(wrong)}
        out_trade_no = body["out_trade_no"]
        self.orders[out_trade_no] = {
            "appid": APPID,
            "mchid": MCHID,
            "out_trade_no": out_trade_no,
            "trade_type": "JSAPI" if jsapi else "MWEB",
            "trade_state": "NOTPAY",
            "trade_state_desc": "订单未支付",
            "amount": {"total": amount["total"], "currency": "CNY"},
            **({"payer": body["payer"]} if jsapi else {}),
        }
        prepay_id = f"wx{secrets.token_hex(14)}"
        if jsapi:
            return 200, {"prepay_id": prepay_id}
        return 200, {"h5_url": f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={prepay_id}&package=1"}

    def _refund(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        out_refund_no = body.get("out_refund_no", "")
        if out_refund_no in self.refunds:  # the same refund number again: the same refund
            return 200, self.refunds[out_refund_no]
        order = self.orders.get(body.get("out_trade_no", ""))
        if order is None or order["trade_state"] not in ("SUCCESS", "REFUND"):
            return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在或未支付"}
        amount = body.get("amount", {})
        refunded = sum(
            r["amount"]["refund"] for r in self.refunds.values() if r["out_trade_no"] == order["out_trade_no"]
        )
        if amount.get("total") != order["amount"]["total"] or amount.get("currency") != "CNY":
            return 400, {"code": "PARAM_ERROR", "message": "订单金额与原订单不一致"}
        if not isinstance(amount.get("refund"), int) or not 0 < amount["refund"] <= order["amount"]["total"] - refunded:
            return 403, {"code": "NOT_ENOUGH", "message": "退款金额超过可退金额"}
        order["trade_state"] = "REFUND"
        refund = {
            "refund_id": f"50000{secrets.randbelow(10**20):020d}",
            "out_refund_no": out_refund_no,
            "transaction_id": order.get("transaction_id", ""),
            "out_trade_no": order["out_trade_no"],
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": dt.datetime.now(SHANGHAI).isoformat(timespec="seconds"),
            "status": "PROCESSING",
            "amount": {
                "total": order["amount"]["total"],
                "refund": amount["refund"],
                "payer_total": order["amount"]["total"],
                "payer_refund": amount["refund"],
                "currency": "CNY",
            },
        }
        self.refunds[out_refund_no] = refund
        return 200, refund

    def _answer(self, status: int, body: dict[str, Any] | None) -> Answer:
        text = "" if body is None else json.dumps(body, ensure_ascii=False)
        if self.unsigned:
            return Answer(status, text)
        return Answer(status, text, headers=signed_headers(self.answer_sign_key or self.keys.platform, text))


def bill_line(*fields: str) -> str:
    return ",".join(f"`{value}" for value in fields)
