"""Alipay (open API gateway, RSA2): mobile-web payments (alipay.trade.wap.pay), queries, closing,
refunds, the daily bill, and the asynchronous notifications.

Requests are built and signed by the official ``python-alipay-sdk`` (``build_body`` +
``sign_data``: RSA2 over the sorted ``key=value`` pairs, exactly the query string the SDK sends),
and notifications are checked with its ``verify``. The HTTP exchange is ours, with httpx, so the
gateway, the timeout and the errors are yuyue's; answers are verified with the same
``response_node`` / ``rsa2_verify`` the Alipay sign-in uses (the signature covers the exact bytes
of the ``*_response`` node, which ``response_node`` cuts out with a real JSON parser).

``merchant_ref`` is the app id, or ``"<app_id>/<seller_id>"`` when a seller id is configured; a
notification's ``merchant_ref`` is built the same way from its own ``app_id`` and ``seller_id``, so
money that went to another seller never matches. Notifications for another app id are refused here.
Query and refund answers are about our own app's trades (we asked, Alipay signed), so they carry
our ``merchant_ref``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl

import httpx
from alipay import AliPay
from alipay.exceptions import AliPayException
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from yuyue.core import timeutil
from yuyue.core.money import fen_to_yuan, yuan_to_fen
from yuyue.integrations.alipay import load_private_key, load_public_key, response_node, rsa2_verify
from yuyue.integrations.http import json_object
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
    StatementLine,
)

log = logging.getLogger(__name__)

SUBJECT_MAX_CHARS = 256
_SUBJECT_FORBIDDEN = re.compile(r"[/=&]")
_TRADE_STATES: dict[str, PaymentState] = {
    "TRADE_SUCCESS": "paid",
    "TRADE_FINISHED": "paid",  # paid, and past the refund period
    "WAIT_BUYER_PAY": "pending",
    "TRADE_CLOSED": "closed",  # unpaid and timed out, or fully refunded
}
# Answers that mean "try again later", not "Alipay said no".
_RETRY_CODES = {"20000", "20001"}
_RETRY_SUB_CODES = {"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"}
_TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"


@dataclass(frozen=True)
class AlipayConfig:
    app_id: str
    app_private_key: str  # PEM text, a PEM file path or the bare base64 the Alipay console shows
    alipay_public_key: str  # same forms
    seller_id: str = ""  # the 2088… partner id the money must reach; empty: any seller of this app
    gateway: str = "https://openapi.alipay.com/gateway.do"
    timeout: float = 5.0


class AlipayProvider(Provider):
    name = "alipay"

    def __init__(self, config: AlipayConfig) -> None:
        self.config = config
        self.merchant_ref = _merchant_ref(config.app_id, config.seller_id)
        app_key = load_private_key(config.app_private_key)
        self._alipay_key = load_public_key(config.alipay_public_key)
        self._sdk = AliPay(
            appid=config.app_id,
            app_private_key_string=app_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            alipay_public_key_string=self._alipay_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            sign_type="RSA2",
        )

    # --- Paying -------------------------------------------------------------------------------

    def create(self, order: PaymentOrder) -> PaymentStart:
        if order.channel != "wap":
            raise ValueError(f"Alipay has no channel {order.channel!r} (wap)")
        biz = {
            # Alipay refuses subjects with / = & in them.
            "subject": _SUBJECT_FORBIDDEN.sub(" ", order.description)[:SUBJECT_MAX_CHARS],
            "out_trade_no": order.out_trade_no,
            "total_amount": fen_to_yuan(order.amount_fen),
            "product_code": "QUICK_WAP_PAY",
            # After this Alipay refuses to collect, so an expired hold cannot be paid late.
            "time_expire": _beijing(order.expires_at),
        }
        if order.return_url:  # where the payer lands when leaving the cashier unpaid
            biz["quit_url"] = order.return_url
        query = self._sdk.client_api(
            "alipay.trade.wap.pay",
            biz,
            return_url=order.return_url,
            notify_url=order.notify_url,
            timestamp=_beijing(timeutil.now()),
        )
        return PaymentStart(redirect_url=f"{self.config.gateway}?{query}")

    def query(self, out_trade_no: str) -> PaymentResult:
        node = self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        if node.get("sub_code") == _TRADE_NOT_EXIST:
            # A wap trade exists at Alipay only once the payer has opened the cashier page.
            return PaymentResult(out_trade_no, "pending", 0, self.merchant_ref, raw=node)
        _require_success(node)
        state = _TRADE_STATES.get(str(node.get("trade_status", "")))
        if state is None:
            raise ProviderError(f"Alipay trade status we do not know: {node.get('trade_status')!r}")
        return PaymentResult(
            out_trade_no=str(node.get("out_trade_no") or out_trade_no),
            state=state,
            amount_fen=_fen(node.get("total_amount")),
            merchant_ref=self.merchant_ref,
            provider_trade_no=str(node.get("trade_no") or ""),
            paid_at=_answer_time(node.get("send_pay_date")) if state == "paid" else None,
            raw=node,
        )

    def close(self, out_trade_no: str) -> None:
        node = self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        if node.get("sub_code") == _TRADE_NOT_EXIST:
            return  # the payer never opened the cashier; time_expire stops a late payment
        _require_success(node)

    # --- Refunds ------------------------------------------------------------------------------

    def refund(self, order: RefundOrder) -> RefundResult:
        biz = {
            "out_trade_no": order.out_trade_no,
            "refund_amount": fen_to_yuan(order.refund_fen),
            "out_request_no": order.out_refund_no,  # the same number again never refunds twice
        }
        if order.reason:
            biz["refund_reason"] = order.reason[:256]
        node = self._call("alipay.trade.refund", biz)
        if node.get("code") != "10000":
            _raise_if_retryable(node)
            return RefundResult(order.out_refund_no, order.out_trade_no, "failed", order.refund_fen, raw=node)
        if node.get("fund_change") != "Y":
            # No money moved on this call: done before under this number, or not at all. Ask.
            return self.query_refund(order.out_refund_no, order.out_trade_no)
        return RefundResult(
            out_refund_no=order.out_refund_no,
            out_trade_no=order.out_trade_no,
            state="succeeded",
            refund_fen=order.refund_fen,
            provider_refund_no=str(node.get("trade_no") or ""),
            finished_at=_answer_time(node.get("gmt_refund_pay")) or timeutil.now(),
            raw=node,
        )

    def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        biz = {"out_trade_no": out_trade_no, "out_request_no": out_refund_no, "query_options": ["gmt_refund_pay"]}
        node = self._call("alipay.trade.fastpay.refund.query", biz)
        _require_success(node)
        found = bool(node.get("refund_amount")) and node.get("refund_status", "REFUND_SUCCESS") == "REFUND_SUCCESS"
        return RefundResult(
            out_refund_no=out_refund_no,
            out_trade_no=out_trade_no,
            # Alipay refunds synchronously: a refund it does not know did not happen (retry is safe).
            state="succeeded" if found else "failed",
            refund_fen=_fen(node.get("refund_amount")) if found else 0,
            provider_refund_no=str(node.get("trade_no") or ""),
            finished_at=_answer_time(node.get("gmt_refund_pay")) if found else None,
            raw=node,
        )

    # --- Notifications ------------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentResult | RefundResult:
        """Verify and read an asynchronous notification (a form POST). No outbound call.

        A refund notification (it carries ``out_biz_no``, our refund number) comes only for a refund
        that succeeded; Alipay gives the trade's running refund total in it, not this refund's own
        amount, so ``refund_fen`` is that total (exact, but cumulative for partial refunds).
        """
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            self._refuse("not a form")
        signature = params.pop("sign", "")
        # What Alipay signs: every non-empty parameter except sign and sign_type, sorted.
        signed = {k: v for k, v in params.items() if v != ""}
        try:
            good = bool(signature) and self._sdk.verify(signed, signature)
        except (AliPayException, ValueError):  # another sign_type, or a signature that is no base64
            good = False
        if not good:
            self._refuse("signature does not verify")
        if params.get("app_id") != self.config.app_id:
            self._refuse(f"for another app id {params.get('app_id', '')[:32]!r}")
        out_trade_no = params.get("out_trade_no", "")
        if params.get("out_biz_no") and params.get("refund_fee"):
            return RefundResult(
                out_refund_no=params["out_biz_no"],
                out_trade_no=out_trade_no,
                state="succeeded",
                refund_fen=yuan_to_fen(params["refund_fee"]),
                provider_refund_no=params.get("trade_no", ""),
                finished_at=_time(params.get("gmt_refund")),
                raw=params,
            )
        state = _TRADE_STATES.get(params.get("trade_status", ""))
        if state is None:
            raise ValueError(f"an Alipay notification with trade status {params.get('trade_status')!r}")
        return PaymentResult(
            out_trade_no=out_trade_no,
            state=state,
            amount_fen=yuan_to_fen(params.get("total_amount", "")),
            merchant_ref=_merchant_ref(
                params.get("app_id", ""), params.get("seller_id", "") if self.config.seller_id else ""
            ),
            provider_trade_no=params.get("trade_no", ""),
            paid_at=_time(params.get("gmt_payment")) if state == "paid" else None,
            raw=params,
        )

    def answer(self, ok: bool) -> NotifyAnswer:
        # Alipay reads only the body: anything but "success" makes it send the notification again.
        return NotifyAnswer(status=200, body=b"success") if ok else NotifyAnswer(status=500, body=b"failure")

    def _refuse(self, problem: str) -> NoReturn:
        log.warning("alipay: refused a notification with a bad signature (%s)", problem)
        raise BadSignature(f"alipay: {problem}")

    # --- Reconciliation -----------------------------------------------------------------------

    def statement(self, day: dt.date) -> list[StatementLine]:
        """The trade bill of ``day``: a zip of GBK CSV files, of which the detail file has the lines."""
        node = self._call(
            "alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day.isoformat()}
        )
        if node.get("sub_code") == "isp.bill_not_exist":
            return []
        _require_success(node)
        url = str(node.get("bill_download_url") or "")
        if not url:
            raise ProviderError("Alipay bill answer without a download url")
        try:
            with httpx.Client(timeout=self.config.timeout, follow_redirects=True) as client:
                response = client.get(url)
            response.raise_for_status()
            with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                texts = [archive.read(info).decode("gbk") for info in archive.infolist() if not info.is_dir()]
            return [line for text in texts for line in parse_trade_bill(text)]
        except httpx.HTTPError as exc:
            raise ProviderError(f"Alipay bill download failed: {exc.__class__.__name__}") from None
        except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, csv.Error) as exc:
            raise ProviderError(f"Alipay bill we cannot read: {exc}") from None

    # --- Wire ---------------------------------------------------------------------------------

    def _call(self, method: str, biz: dict[str, Any]) -> dict[str, Any]:
        """One signed gateway call; returns the verified ``*_response`` node (success or not)."""
        query = self._sdk.sign_data(self._sdk.build_body(method, biz, timestamp=_beijing(timeutil.now())))
        try:
            with httpx.Client(timeout=self.config.timeout) as client:
                response = client.get(f"{self.config.gateway}?{query}")
        except httpx.HTTPError as exc:
            raise ProviderError(f"Alipay did not answer: {exc.__class__.__name__}") from None
        if not 200 <= response.status_code < 300:
            raise ProviderError(f"Alipay answered HTTP {response.status_code}")
        text = response.text
        node_name = method.replace(".", "_") + "_response"
        try:
            body = json_object(text)
            node_text = response_node(text, node_name)
            if node_text is None:
                error = response_node(text, "error_response")
                detail = json_object(error) if error else {}
                raise ProviderError(f"Alipay refused: {_codes(detail)}")
            node = json_object(node_text)
        except (ValueError, IndexError):
            raise ProviderError("Alipay answered something that is not its JSON") from None
        signature = body.get("sign")
        if not signature:
            if node.get("code") == "10000":  # a success nobody signed is not one
                log.warning("alipay: refused an unsigned answer to %s", method)
                raise BadAnswerSignature("alipay: unsigned answer")
            raise ProviderError(f"Alipay refused (unsigned): {_codes(node)}")
        if not rsa2_verify(node_text, str(signature), self._alipay_key):
            log.warning("alipay: refused an answer to %s with a bad signature", method)
            raise BadAnswerSignature("alipay: answer signature does not verify")
        return node


def parse_trade_bill(text: str) -> list[StatementLine]:
    """Lines of an Alipay trade detail bill (业务明细). Comment lines start with ``#``; the header
    row starts with 支付宝交易号; refund rows (业务类型 退款) carry negative amounts. The summary
    file of the same zip has no such header and gives no lines."""
    lines: list[StatementLine] = []
    column: dict[str, int] = {}
    for row in csv.reader(io.StringIO(text)):
        cells = [cell.strip() for cell in row]
        if not cells or not cells[0] or cells[0].startswith("#"):
            if column and cells and cells[0].startswith("#"):
                break  # the end of the detail list
            continue
        if cells[0] == "支付宝交易号":
            column = {name.split("（")[0].split("(")[0]: i for i, name in enumerate(cells)}
            continue
        if not column:
            continue

        def cell(name: str, cells: list[str] = cells, column: dict[str, int] = column) -> str:
            at = column.get(name)
            return cells[at] if at is not None and at < len(cells) else ""

        refund = cell("业务类型") == "退款"
        lines.append(
            StatementLine(
                kind="refund" if refund else "payment",
                out_trade_no=cell("商户订单号"),
                out_refund_no=cell("退款批次号/请求号") if refund else "",
                amount_fen=abs(yuan_to_fen(cell("订单金额"))),
                provider_no=cell("支付宝交易号"),
                at=_time(cell("完成时间") or cell("创建时间")),
            )
        )
    return lines


def _merchant_ref(app_id: str, seller_id: str) -> str:
    return f"{app_id}/{seller_id}" if seller_id else app_id


def _require_success(node: Mapping[str, Any]) -> None:
    if node.get("code") != "10000":
        raise ProviderError(f"Alipay refused: {_codes(node)}")


def _raise_if_retryable(node: Mapping[str, Any]) -> None:
    if node.get("code") in _RETRY_CODES or node.get("sub_code") in _RETRY_SUB_CODES:
        raise ProviderError(f"Alipay is unavailable: {_codes(node)}")


def _codes(node: Mapping[str, Any]) -> str:
    return " ".join(str(node.get(k, "")) for k in ("code", "sub_code", "sub_msg") if node.get(k))


def _fen(value: Any) -> int:
    try:
        return yuan_to_fen(str(value))
    except ValueError:
        raise ProviderError(f"Alipay amount we cannot read: {value!r}") from None


def _time(value: Any) -> dt.datetime | None:
    """Alipay writes Beijing wall time, "2024-01-02 10:00:00"."""
    if not value:
        return None
    try:
        moment = dt.datetime.strptime(str(value).strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValueError(f"an Alipay time we cannot read: {value!r}") from None
    return moment.replace(tzinfo=timeutil.local_zone()).astimezone(dt.UTC)


def _answer_time(value: Any) -> dt.datetime | None:
    try:
        return _time(value)
    except ValueError as exc:
        raise ProviderError(str(exc)) from None


def _beijing(moment: dt.datetime) -> str:
    return moment.astimezone(timeutil.local_zone()).strftime("%Y-%m-%d %H:%M:%S")


def from_settings() -> AlipayProvider | None:
    """The configured Alipay app, or None when ``YUYUE_ALIPAY_APP_ID`` is unset (settings.py
    already requires the two keys whenever it is set)."""
    if not settings.ALIPAY_APP_ID:
        return None
    try:
        return AlipayProvider(
            AlipayConfig(
                app_id=settings.ALIPAY_APP_ID,
                app_private_key=settings.ALIPAY_APP_PRIVATE_KEY,
                alipay_public_key=settings.ALIPAY_PUBLIC_KEY,
                seller_id=settings.ALIPAY_SELLER_ID,
                gateway=settings.ALIPAY_GATEWAY,
                timeout=settings.INTEGRATION_TIMEOUT,
            )
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"Alipay settings: {exc}") from None
