"""A local Alipay open API gateway for adapter tests.

Like Alipay it re-verifies each request's RSA2 signature with the app's public key (sorted
``key=value`` pairs, ``sign`` left out), checks the common parameters and the ``biz_content``, keeps
the trades and refunds it was given, and signs each ``*_response`` node with the Alipay key.
``notification`` builds the asynchronous notification form as Alipay posts it (RSA2 over the sorted
non-empty parameters without ``sign`` and ``sign_type``). It also serves the bill zip.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from fake_http import Answer, Received
from fake_wechatpay import new_key, private_pem, public_pem

from yuyue.integrations.alipay import rsa2_sign, rsa2_verify, signing_content
from yuyue.payments.providers.alipay import AlipayConfig

APP_ID = "2021004100000001"
SELLER_ID = "2088102100000001"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
GATEWAY_PATH = "/gateway.do"


@dataclass
class Keys:
    app: rsa.RSAPrivateKey = field(default_factory=new_key)
    alipay: rsa.RSAPrivateKey = field(default_factory=new_key)

    def config(self, gateway: str, **overrides: Any) -> AlipayConfig:
        values: dict[str, Any] = {
            "app_id": APP_ID,
            "app_private_key": private_pem(self.app),
            "alipay_public_key": public_pem(self.alipay),
            "gateway": gateway,
            "timeout": 2.0,
        }
        values.update(overrides)
        return AlipayConfig(**values)


def beijing(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(SHANGHAI)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def notification(keys: Keys, sign_with: rsa.RSAPrivateKey | None = None, **fields: str) -> bytes:
    """The form body Alipay posts to notify_url."""
    params = {
        "notify_time": beijing(),
        "notify_type": "trade_status_sync",
        "notify_id": secrets.token_hex(16),
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "app_id": APP_ID,
        "seller_id": SELLER_ID,
        "auth_app_id": APP_ID,
        "buyer_id": "2088102177846880",
        "trade_no": "2025010122001446880500000001",
        "out_trade_no": "P20250101000001",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.34",
        "receipt_amount": "12.34",
        "subject": "故宫博物院 入馆预约",
        "gmt_create": "2025-01-01 10:00:00",
        "gmt_payment": "2025-01-01 10:00:05",
        "fund_bill_list": '[{"amount":"12.34","fundChannel":"ALIPAYACCOUNT"}]',
    }
    params.update(fields)
    params = {k: v for k, v in params.items() if v is not None}
    unsigned = {k: v for k, v in params.items() if k != "sign_type"}
    params["sign"] = rsa2_sign(signing_content(unsigned), sign_with or keys.alipay)
    return urlencode(params).encode()


@dataclass
class FakeAlipay:
    """The server's behaviour; ``fake_server(FakeAlipay(keys))`` runs it on 127.0.0.1."""

    keys: Keys
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)  # by out_request_no
    problems: list[str] = field(default_factory=list)
    bill_files: dict[str, str] = field(default_factory=dict)  # file name → CSV text (written as GBK)
    answer_sign_key: rsa.RSAPrivateKey | None = None
    unsigned: bool = False
    broken: Answer | None = None

    def __call__(self, request: Received) -> Answer:
        if self.broken is not None:
            return self.broken
        if request.path == "/bill.zip":
            return Answer(200, self._bill_zip(), "application/zip")
        if request.path != GATEWAY_PATH:
            return Answer(404, "not found", "text/plain")
        params = request.query if request.method == "GET" else request.form
        problem = self.check(params)
        if problem:
            self.problems.append(problem)
            return self._answer("error_response", {"code": "40002", "msg": "Invalid Arguments", "sub_code": problem})
        method = params["method"]
        biz = json.loads(params.get("biz_content") or "{}")
        node = method.replace(".", "_") + "_response"
        if method == "alipay.trade.wap.pay":  # the payer's browser arrives at the cashier
            self.trades.setdefault(
                biz["out_trade_no"], {"total_amount": biz["total_amount"], "trade_status": "WAIT_BUYER_PAY"}
            )
            return Answer(200, "<html><body>支付宝收银台</body></html>", "text/html;charset=utf-8")
        handler = {
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }.get(method)
        if handler is None:
            return self._answer(
                "error_response", {"code": "40004", "msg": "Business Failed", "sub_code": "no-such-method"}
            )
        return self._answer(node, handler(biz, request))

    def check(self, params: dict[str, str]) -> str:
        """What Alipay checks on every request; "" when all is well."""
        if params.get("app_id") != APP_ID:
            return "isv.invalid-app-id"
        if params.get("sign_type") != "RSA2" or params.get("charset") != "utf-8" or params.get("version") != "1.0":
            return "isv.invalid-common-parameter"
        if not rsa2_verify(signing_content(params), params.get("sign", ""), self.keys.app.public_key()):
            return "isv.invalid-signature"
        try:
            sent = dt.datetime.strptime(params.get("timestamp", ""), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
        except ValueError:
            return "isv.invalid-timestamp"
        if abs((dt.datetime.now(SHANGHAI) - sent).total_seconds()) > 600:  # Beijing time, not UTC
            return "isv.invalid-timestamp"
        return ""

    def pay(self, out_trade_no: str, total_amount: str = "12.34") -> dict[str, Any]:
        trade = self.trades.setdefault(out_trade_no, {"total_amount": total_amount})
        trade.update(
            trade_status="TRADE_SUCCESS",
            trade_no=f"2025010122001446880{secrets.randbelow(10**9):09d}",
            send_pay_date=beijing(),
        )
        return trade

    # --- Methods ------------------------------------------------------------------------------

    def _query(self, biz: dict[str, Any], request: Received) -> dict[str, Any]:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return _failed("ACQ.TRADE_NOT_EXIST", "交易不存在")
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], **trade}

    def _close(self, biz: dict[str, Any], request: Received) -> dict[str, Any]:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return _failed("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade["trade_status"] != "WAIT_BUYER_PAY":
            return _failed("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade["trade_status"] = "TRADE_CLOSED"
        return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"]}

    def _refund(self, biz: dict[str, Any], request: Received) -> dict[str, Any]:
        out_trade_no, request_no = biz.get("out_trade_no", ""), biz.get("out_request_no", "")
        trade = self.trades.get(out_trade_no)
        if trade is None or trade.get("trade_status") not in ("TRADE_SUCCESS", "TRADE_CLOSED"):
            return _failed("ACQ.TRADE_NOT_EXIST", "交易不存在")
        amount = Decimal(str(biz.get("refund_amount", "")))
        if amount.as_tuple().exponent != -2 or not request_no:  # yuan with exactly two decimals
            self.problems.append(f"refund: {biz}")
            return _failed("ACQ.INVALID_PARAMETER", "参数无效")
        done = sum(Decimal(r["refund_amount"]) for r in self.refunds.values() if r["out_trade_no"] == out_trade_no)
        total = Decimal(trade["total_amount"])
        changed = request_no not in self.refunds
        if changed:
            if done + amount > total:
                return _failed("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            self.refunds[request_no] = {
                "out_trade_no": out_trade_no,
                "out_request_no": request_no,
                "refund_amount": str(amount),
                "gmt_refund_pay": beijing(),
            }
            done += amount
            if done == total:
                trade["trade_status"] = "TRADE_CLOSED"
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade["trade_no"],
            "out_trade_no": out_trade_no,
            "buyer_logon_id": "159****5620",
            "fund_change": "Y" if changed else "N",
            "refund_fee": str(done),  # everything refunded on this trade so far
            "gmt_refund_pay": self.refunds[request_no]["gmt_refund_pay"],
        }

    def _refund_query(self, biz: dict[str, Any], request: Received) -> dict[str, Any]:
        refund = self.refunds.get(biz.get("out_request_no", ""))
        if refund is None or refund["out_trade_no"] != biz.get("out_trade_no"):
            return {"code": "10000", "msg": "Success"}  # Alipay's answer for "no such refund"
        trade = self.trades[refund["out_trade_no"]]
        answer = {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade["trade_no"],
            "out_trade_no": refund["out_trade_no"],
            "out_request_no": refund["out_request_no"],
            "total_amount": trade["total_amount"],
            "refund_amount": refund["refund_amount"],
            "refund_status": "REFUND_SUCCESS",
        }
        if "gmt_refund_pay" in biz.get("query_options", []):
            answer["gmt_refund_pay"] = refund["gmt_refund_pay"]
        return answer

    def _bill_url(self, biz: dict[str, Any], request: Received) -> dict[str, Any]:
        if biz.get("bill_type") != "trade":
            self.problems.append(f"bill: {biz}")
        if not self.bill_files:
            return _failed("isp.bill_not_exist", "账单不存在")
        return {"code": "10000", "msg": "Success", "bill_download_url": f"http://{request.headers['host']}/bill.zip"}

    # --- Answers ------------------------------------------------------------------------------

    def _answer(self, node: str, value: dict[str, Any]) -> Answer:
        node_text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if self.unsigned:
            return Answer(200, f'{{"{node}":{node_text}}}', "text/html;charset=utf-8")
        sign = rsa2_sign(node_text, self.answer_sign_key or self.keys.alipay)
        # Alipay answers JSON with a text/html content type, and may put the sign first.
        return Answer(200, f'{{"{node}":{node_text},"sign":"{sign}"}}', "text/html;charset=utf-8")

    def _bill_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, text in self.bill_files.items():
                archive.writestr(name, text.encode("gbk"))
        return buffer.getvalue()


def _failed(sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}
