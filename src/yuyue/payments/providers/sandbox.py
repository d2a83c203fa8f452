"""The sandbox cashier: a local stand-in for WeChat Pay and Alipay, for demo mode and tests.

It behaves like a real provider from the payments service's point of view. ``create`` opens a
trade in the sandbox's own ledger (``SandboxTrade``, its "bank") and answers with the address of a
local cashier page (``/pay/sandbox/<out_trade_no>/``). Pressing 支付 there records the payment and
delivers a *signed* notification to the same entry point as the real providers' callbacks, where
``parse_notification`` verifies it like theirs: HMAC-SHA256 over ``"<timestamp>.<body>"`` with the
sandbox key (``YUYUE_PAYMENT_SANDBOX_KEY``, else one derived from SECRET_KEY), refused when older
than five minutes.

Refunds are answered at once: the sandbox bank records the refund and ``refund`` returns
``succeeded`` (real providers may answer "processing" and notify later; the service handles both).
``query``, ``query_refund`` and ``statement`` read the sandbox ledger.

Enabled by ``YUYUE_PAYMENT_SANDBOX`` (default: on in demo mode, like the sign-in sandboxes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from yuyue.core import timeutil
from yuyue.payments.providers.base import (
    BadSignature,
    NotifyAnswer,
    PaymentOrder,
    PaymentResult,
    PaymentStart,
    ProviderError,
    RefundOrder,
    RefundResult,
    StatementLine,
)

SIGNATURE_HEADER = "Yuyue-Sandbox-Signature"
TIMESTAMP_HEADER = "Yuyue-Sandbox-Timestamp"
MAX_AGE_SECONDS = 300
MERCHANT_REF = "sandbox-merchant"


def sandbox_key() -> bytes:
    configured = getattr(settings, "PAYMENT_SANDBOX_KEY", "")
    if configured:
        return str(configured).encode()
    return hashlib.sha256(b"payment sandbox|" + settings.SECRET_KEY.encode()).digest()


def sign(body: bytes, timestamp: int, key: bytes | None = None) -> str:
    return hmac.new(key or sandbox_key(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _when(raw: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(raw) if raw else None


class SandboxProvider:
    name = "sandbox"
    merchant_ref = MERCHANT_REF

    # --- the provider interface ---------------------------------------------------------------

    def create(self, order: PaymentOrder) -> PaymentStart:
        from yuyue.payments.models import SandboxTrade

        try:
            with transaction.atomic():
                SandboxTrade.objects.create(
                    kind="payment",
                    out_trade_no=order.out_trade_no,
                    amount_fen=order.amount_fen,
                    state="pending",
                    provider_no=f"SBX{secrets.token_hex(8).upper()}",
                    description=order.description[:200],
                    merchant_ref=self.merchant_ref,
                    notify_url=order.notify_url[:300],
                    return_url=order.return_url[:300],
                    expires_at=order.expires_at,
                )
        except IntegrityError:  # the same order again (a double click): the trade exists
            pass
        return PaymentStart(redirect_url=reverse("payments:sandbox_cashier", args=[order.out_trade_no]))

    def query(self, out_trade_no: str) -> PaymentResult:
        trade = self._trade(out_trade_no)
        return self._result(trade)

    def close(self, out_trade_no: str) -> None:
        from yuyue.payments.models import SandboxTrade

        if SandboxTrade.objects.filter(kind="payment", out_trade_no=out_trade_no, state="pending").update(
            state="closed"
        ):
            return
        if self._trade(out_trade_no).state == "paid":
            raise ProviderError("ORDERPAID: the order is paid and cannot be closed")

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentResult | RefundResult:
        lowered = {k.lower(): v for k, v in headers.items()}
        signature = lowered.get(SIGNATURE_HEADER.lower(), "")
        try:
            timestamp = int(lowered.get(TIMESTAMP_HEADER.lower(), ""))
        except ValueError:
            raise BadSignature("missing or malformed timestamp") from None
        if not signature or not hmac.compare_digest(signature, sign(body, timestamp)):
            raise BadSignature("signature does not verify")
        if abs(time.time() - timestamp) > MAX_AGE_SECONDS:
            raise BadSignature("notification too old (replayed?)")
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        if data.get("type") == "refund":
            return RefundResult(
                out_refund_no=str(data["out_refund_no"]),
                out_trade_no=str(data["out_trade_no"]),
                state=data["state"],
                refund_fen=int(data["refund_fen"]),
                provider_refund_no=str(data.get("provider_refund_no", "")),
                finished_at=_when(data.get("finished_at")),
                raw=data,
            )
        return PaymentResult(
            out_trade_no=str(data["out_trade_no"]),
            state=data["state"],
            amount_fen=int(data["amount_fen"]),
            merchant_ref=str(data["merchant_ref"]),
            provider_trade_no=str(data.get("provider_trade_no", "")),
            paid_at=_when(data.get("paid_at")),
            raw=data,
        )

    def refund(self, order: RefundOrder) -> RefundResult:
        from yuyue.payments.models import SandboxTrade

        paid = self._trade(order.out_trade_no)
        if paid.state != "paid":
            raise ProviderError(f"TRADE_NOT_PAID: {order.out_trade_no} is {paid.state}")
        at = order.requested_at or timeutil.now()
        try:
            with transaction.atomic():
                SandboxTrade.objects.create(
                    kind="refund",
                    out_trade_no=order.out_trade_no,
                    out_refund_no=order.out_refund_no,
                    amount_fen=order.refund_fen,
                    state="succeeded",
                    provider_no=f"SBR{secrets.token_hex(8).upper()}",
                    merchant_ref=self.merchant_ref,
                    notify_url=order.notify_url[:300],
                    at=at,
                )
        except IntegrityError:  # asked again with the same number: the first refund stands
            pass
        return self.query_refund(order.out_refund_no, order.out_trade_no)

    def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        from yuyue.payments.models import SandboxTrade

        trade = SandboxTrade.objects.filter(
            kind="refund", out_trade_no=out_trade_no, out_refund_no=out_refund_no
        ).first()
        if trade is None:
            raise ProviderError(f"REFUND_NOT_EXIST: {out_refund_no}")
        return RefundResult(
            out_refund_no=out_refund_no,
            out_trade_no=out_trade_no,
            state="succeeded",
            refund_fen=trade.amount_fen,
            provider_refund_no=trade.provider_no,
            finished_at=trade.at,
        )

    def statement(self, day: dt.date) -> list[StatementLine]:
        from yuyue.payments.models import SandboxTrade

        start = timeutil.local_datetime(day, dt.time.min)
        trades = SandboxTrade.objects.filter(
            state__in=("paid", "succeeded"), at__gte=start, at__lt=start + dt.timedelta(days=1)
        ).order_by("at", "id")
        return [
            StatementLine(
                kind="refund" if t.kind == "refund" else "payment",
                out_trade_no=t.out_trade_no,
                out_refund_no=t.out_refund_no,
                amount_fen=t.amount_fen,
                provider_no=t.provider_no,
                at=t.at,
            )
            for t in trades
        ]

    def answer(self, ok: bool) -> NotifyAnswer:
        return NotifyAnswer(status=200 if ok else 400, body=b"OK" if ok else b"FAIL")

    # --- the cashier page's side of the bank ----------------------------------------------------

    def trade(self, out_trade_no: str) -> Any:
        from yuyue.payments.models import SandboxTrade

        return SandboxTrade.objects.filter(kind="payment", out_trade_no=out_trade_no).first()

    def pay(self, out_trade_no: str, *, at: dt.datetime | None = None) -> PaymentResult:
        """The payer pressed 支付: the bank takes the money unless the order is closed or expired."""
        from yuyue.payments.models import SandboxTrade

        at = at or timeutil.now()
        trade = self._trade(out_trade_no)
        if trade.state == "pending" and trade.expires_at is not None and trade.expires_at <= at:
            SandboxTrade.objects.filter(pk=trade.pk, state="pending").update(state="closed")
            raise ProviderError("ORDER_EXPIRED: the order has expired")
        if not SandboxTrade.objects.filter(pk=trade.pk, state="pending").update(state="paid", at=at):
            trade.refresh_from_db()
            if trade.state != "paid":
                raise ProviderError(f"ORDER_{trade.state.upper()}: the order cannot be paid")
        return self.query(out_trade_no)

    def fail(self, out_trade_no: str) -> PaymentResult:
        """The payer pressed 支付失败 (a declined card, not enough balance)."""
        from yuyue.payments.models import SandboxTrade

        SandboxTrade.objects.filter(kind="payment", out_trade_no=out_trade_no, state="pending").update(state="failed")
        return self.query(out_trade_no)

    def notification(self, result: PaymentResult | RefundResult, *, timestamp: int | None = None) -> tuple[dict, bytes]:
        """Headers and body of the signed callback the sandbox sends about ``result``."""
        if isinstance(result, RefundResult):
            data: dict[str, Any] = {
                "type": "refund",
                "out_trade_no": result.out_trade_no,
                "out_refund_no": result.out_refund_no,
                "state": result.state,
                "refund_fen": result.refund_fen,
                "provider_refund_no": result.provider_refund_no,
                "finished_at": _iso(result.finished_at),
            }
        else:
            data = {
                "type": "payment",
                "out_trade_no": result.out_trade_no,
                "state": result.state,
                "amount_fen": result.amount_fen,
                "merchant_ref": result.merchant_ref,
                "provider_trade_no": result.provider_trade_no,
                "paid_at": _iso(result.paid_at),
            }
        body = json.dumps(data, separators=(",", ":")).encode()
        timestamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(body, timestamp),
        }
        return headers, body

    # --- helpers ----------------------------------------------------------------------------------

    def _trade(self, out_trade_no: str) -> Any:
        trade = self.trade(out_trade_no)
        if trade is None:
            raise ProviderError(f"ORDER_NOT_EXIST: {out_trade_no}")
        return trade

    def _result(self, trade: Any) -> PaymentResult:
        return PaymentResult(
            out_trade_no=trade.out_trade_no,
            state=trade.state,
            amount_fen=trade.amount_fen,
            merchant_ref=trade.merchant_ref,
            provider_trade_no=trade.provider_no,
            paid_at=trade.at if trade.state == "paid" else None,
        )


def from_settings() -> SandboxProvider | None:
    return SandboxProvider() if getattr(settings, "PAYMENT_SANDBOX", False) else None
