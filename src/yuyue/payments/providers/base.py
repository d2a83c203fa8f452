"""What every payment provider (WeChat Pay, Alipay, the sandbox cashier) offers the payments service.

Adapters speak the provider's protocol and nothing else: they never touch the database. The
service (``payments/services.py``) decides what a verified result means for a booking.
All amounts are integer fen; all times are aware datetimes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class ProviderError(Exception):
    """The provider could not be reached or gave an answer we cannot use (the caller may retry)."""


class BadSignature(Exception):
    """A notification (or an answer) whose signature does not verify: never act on it."""


class BadAnswerSignature(BadSignature, ProviderError):
    """An answer to one of our own requests whose signature does not verify: never act on it, and
    (like any answer we cannot use) a reason to try again later, so callers catching ProviderError
    handle it too."""


PaymentState = Literal["pending", "paid", "closed", "failed", "refunded"]
RefundState = Literal["pending", "succeeded", "failed"]


@dataclass(frozen=True)
class PaymentOrder:
    """What we ask the provider to collect."""

    out_trade_no: str  # our payment number, unique across providers
    amount_fen: int
    description: str  # shown to the payer; providers cut it to their limit
    channel: str  # wechat: "jsapi" | "h5"; alipay: "wap"; sandbox: "cashier"
    notify_url: str
    return_url: str  # where the payer's browser comes back to (H5/wap)
    expires_at: dt.datetime
    client_ip: str = "127.0.0.1"
    payer_id: str | None = None  # WeChat openid for JSAPI


@dataclass(frozen=True)
class PaymentStart:
    """What the client needs to pay: parameters for wx.requestPayment, or a page to open."""

    params: dict[str, Any] | None = None
    redirect_url: str | None = None


@dataclass(frozen=True)
class PaymentResult:
    """A payment's state as the provider reports it, from a verified notification or a query."""

    out_trade_no: str
    state: PaymentState
    amount_fen: int  # what the provider says was (or is to be) paid
    merchant_ref: str  # the provider-side merchant the money went to (mchid / app_id + seller_id)
    provider_trade_no: str = ""
    paid_at: dt.datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundOrder:
    out_trade_no: str
    out_refund_no: str  # our refund number, unique
    refund_fen: int
    total_fen: int
    reason: str
    notify_url: str
    requested_at: dt.datetime | None = None  # when we asked (the sandbox records it; real providers keep their own)


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    out_trade_no: str
    state: RefundState
    refund_fen: int
    provider_refund_no: str = ""
    finished_at: dt.datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatementLine:
    """One line of the provider's own record of a day (for reconciliation)."""

    kind: Literal["payment", "refund"]
    out_trade_no: str
    out_refund_no: str  # "" for payments
    amount_fen: int
    provider_no: str
    at: dt.datetime | None = None


@dataclass(frozen=True)
class NotifyAnswer:
    """How to answer the provider's callback, in the format it expects."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"


class Provider(Protocol):
    name: str  # "wechat" | "alipay" | "sandbox"
    merchant_ref: str  # what PaymentResult.merchant_ref must equal for this account

    def create(self, order: PaymentOrder) -> PaymentStart: ...

    def query(self, out_trade_no: str) -> PaymentResult: ...

    def close(self, out_trade_no: str) -> None:
        """Stop an unpaid order from being paid later (called when a hold expires)."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentResult | RefundResult:
        """Verify (signature; decrypt where the provider encrypts) and parse a callback.

        Raises BadSignature for anything not provably from the provider, ValueError for a
        verified body we cannot read.
        """
        ...

    def refund(self, order: RefundOrder) -> RefundResult: ...

    def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult: ...

    def statement(self, day: dt.date) -> list[StatementLine]:
        """The provider's record of payments and refunds on ``day`` (Asia/Shanghai)."""
        ...

    def answer(self, ok: bool) -> NotifyAnswer:
        """The reply to a callback: ``ok`` means processed (or already processed) — stop retrying."""
        ...
