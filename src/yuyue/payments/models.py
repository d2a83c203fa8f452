"""Money in and out: payments of bookings, their refunds, every provider notification, and the
sandbox cashier's own ledger.

Amounts are integer fen. A payment's state changes only in ``payments/services.py``, under a row
lock on the Payment, so a notification delivered many times at once has one effect.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil


class PaymentState(models.TextChoices):
    PENDING = "pending", _("awaiting payment")
    PAID = "paid", _("paid")
    CLOSED = "closed", _("closed unpaid")
    FAILED = "failed", _("failed")
    PARTLY_REFUNDED = "partly_refunded", _("partly refunded")
    REFUNDED = "refunded", _("refunded")


# States in which money was received (and may be refunded).
MONEY_IN = frozenset({PaymentState.PAID, PaymentState.PARTLY_REFUNDED, PaymentState.REFUNDED})


class Payment(models.Model):
    """One attempt to collect a booking's amount through one provider and channel."""

    booking = models.ForeignKey("booking.Booking", on_delete=models.PROTECT, related_name="payments")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(_("provider"), max_length=20)
    channel = models.CharField(_("channel"), max_length=20)
    out_trade_no = models.CharField(_("payment number"), max_length=32, unique=True)
    amount_fen = models.PositiveIntegerField(_("amount (fen)"))
    # The provider account the money must reach (mchid, app id + seller id): a notification naming
    # another account is not ours to act on.
    merchant_ref = models.CharField(max_length=100)
    state = models.CharField(_("state"), max_length=20, choices=PaymentState.choices, default=PaymentState.PENDING)
    # "<booking>:<provider>:<channel>" while pending, NULL after: one open payment per booking, provider
    # and channel on every database (NULLs never collide; MariaDB has no partial indexes).
    open_key = models.CharField(max_length=80, unique=True, null=True, blank=True)
    # What the client needs to pay (wx.requestPayment parameters or a page), kept to answer a repeat.
    start = models.JSONField(default=dict, blank=True)
    provider_trade_no = models.CharField(_("provider's number"), max_length=64, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timeutil.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at"], name="payment_merchant_newest"),
            models.Index(fields=["booking", "state"], name="payment_booking_state"),
            models.Index(fields=["state", "paid_at"], name="payment_state_paid_at"),
        ]

    def __str__(self) -> str:
        return self.out_trade_no


class RefundState(models.TextChoices):
    PENDING = "pending", _("in progress")
    SUCCEEDED = "succeeded", _("refunded")
    FAILED = "failed", _("failed")


class Refund(models.Model):
    """Money owed back on a payment: made in the transaction that owes it, sent after commit."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    booking = models.ForeignKey("booking.Booking", on_delete=models.PROTECT, related_name="refunds")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.PROTECT, related_name="refunds")
    out_refund_no = models.CharField(_("refund number"), max_length=32, unique=True)
    refund_fen = models.PositiveIntegerField(_("refund (fen)"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=RefundState.choices, default=RefundState.PENDING)
    provider_refund_no = models.CharField(_("provider's number"), max_length=64, blank=True)
    # Set when the refund was first sent; later tries ask how it went instead of sending again.
    requested_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timeutil.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at"], name="refund_merchant_newest"),
            models.Index(fields=["state", "finished_at"], name="refund_state_finished"),
        ]
        constraints = [models.CheckConstraint(condition=Q(refund_fen__gt=0), name="refund_positive")]

    def __str__(self) -> str:
        return self.out_refund_no


class NoticeOutcome(models.TextChoices):
    APPLIED = "applied", _("applied")
    DUPLICATE = "duplicate", _("already applied")
    BAD_SIGNATURE = "bad_signature", _("bad signature")
    UNREADABLE = "unreadable", _("unreadable")
    AMOUNT_MISMATCH = "amount_mismatch", _("amount does not match")
    MERCHANT_MISMATCH = "merchant_mismatch", _("paid to another account")
    LATE_REFUNDED = "late_refunded", _("paid too late: refunded")
    UNKNOWN_TRADE = "unknown_trade", _("unknown payment")


class PaymentNotice(models.Model):
    """Every notification a provider sent us (and every query answer that changed something)."""

    provider = models.CharField(_("provider"), max_length=20)
    source = models.CharField(max_length=10, default="notify")  # notify | query
    merchant = models.ForeignKey(
        "tenants.Merchant", on_delete=models.CASCADE, null=True, blank=True, related_name="payment_notices"
    )
    payment = models.ForeignKey(Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="notices")
    out_trade_no = models.CharField(max_length=64, blank=True)
    out_refund_no = models.CharField(max_length=64, blank=True)
    amount_fen = models.BigIntegerField(null=True, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    verified = models.BooleanField(_("signature verified"), default=False)
    outcome = models.CharField(_("outcome"), max_length=20, choices=NoticeOutcome.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    flagged_for_merchant = models.BooleanField(_("needs attention"), default=False)
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("received at"), default=timeutil.now)

    class Meta:
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        ordering = ["-id"]
        indexes = [models.Index(fields=["merchant", "flagged_for_merchant", "-id"], name="notice_flagged")]

    def __str__(self) -> str:
        return f"{self.provider} {self.out_trade_no} {self.outcome}"


class SandboxTrade(models.Model):
    """What the sandbox "bank" recorded: its side of each trade, for query() and statement()."""

    kind = models.CharField(max_length=10)  # payment | refund
    out_trade_no = models.CharField(max_length=32)
    out_refund_no = models.CharField(max_length=32, default="", blank=True)
    amount_fen = models.PositiveIntegerField()
    state = models.CharField(max_length=10)  # payment: pending/paid/closed/failed; refund: succeeded
    provider_no = models.CharField(max_length=40)
    description = models.CharField(max_length=200, blank=True)
    merchant_ref = models.CharField(max_length=100)
    notify_url = models.CharField(max_length=300, blank=True)
    return_url = models.CharField(max_length=300, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    at = models.DateTimeField(null=True, blank=True)  # paid / refunded at
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("sandbox trade")
        verbose_name_plural = _("sandbox trades")
        constraints = [
            models.UniqueConstraint(fields=["out_trade_no", "out_refund_no"], name="sandbox_trade_once"),
        ]
        indexes = [models.Index(fields=["state", "at"], name="sandbox_trade_state_at")]
