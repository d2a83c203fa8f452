"""Payments: collecting a booking's amount, believing only verified provider answers, refunding.

The rules, in one place:

- ``start_payment`` opens (or reuses) one pending Payment per booking, provider and channel and
  asks the provider for what the client needs. A double click gets the same payment.
- ``receive_notification`` verifies a callback through the provider's own ``parse_notification``
  and applies it with ``apply_payment_result`` / ``apply_refund_result``: one transaction, the
  Payment (or Refund) row locked, so the same notification delivered twenty times at once has one
  effect. A wrong amount or a wrong receiving account never confirms anything; it is flagged for
  the merchant. Every notification is recorded as a ``PaymentNotice``.
- A payment that arrives for a booking that is no longer waiting (its hold expired, it was
  cancelled, another payment came first) confirms it again if the seats can be taken back
  (``engine.revive_expired``), else it is refunded in full, automatically.
- Refunds are owed by the engine (signal ``refund_owed``, sent inside the cancellation's
  transaction); a ``Refund`` row and an outbox row are written in that same transaction, and the
  outbox worker sends the refund after commit, asking again with backoff until the provider says
  it succeeded or failed. A booking whose refunds have all arrived becomes ``refunded``.
- Before an unpaid hold expires, the provider is asked: a payment whose notification was lost is
  found and confirms the booking; otherwise the provider order is closed, then the hold expires.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Status
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.notify import outbox
from yuyue.payments.models import (
    MONEY_IN,
    NoticeOutcome,
    Payment,
    PaymentNotice,
    PaymentState,
    Refund,
    RefundState,
)
from yuyue.payments.providers import registry
from yuyue.payments.providers.base import (
    BadSignature,
    NotifyAnswer,
    PaymentOrder,
    PaymentResult,
    PaymentStart,
    Provider,
    ProviderError,
    RefundOrder,
    RefundResult,
)

log = logging.getLogger("yuyue.payments")

REFUND_KIND = "payments.refund"
# A refund is asked about with the outbox's backoff (30 s, doubling, capped at 6 h) this many times.
REFUND_MAX_ATTEMPTS = 20
# When the provider cannot be asked about a pending payment, the hold is kept this much longer
# before it expires anyway (a payment arriving later is then confirmed again or refunded).
UNREACHABLE_GRACE = dt.timedelta(minutes=30)
# Headers worth keeping with a notice (the rest may carry nothing useful, or too much).
KEPT_HEADERS = ("content-type", "user-agent", "wechatpay-serial", "wechatpay-timestamp", "wechatpay-nonce")


def _new_number(prefix: str, now: dt.datetime) -> str:
    """Our payment/refund number: readable date, unguessable tail, ≤ 32 characters (WeChat's limit)."""
    return f"{prefix}{timeutil.local_date(now):%Y%m%d}{secrets.token_hex(8).upper()}"


def site_url(base_url: str | None = None) -> str:
    """Where providers and browsers reach this server: YUYUE_PUBLIC_URL, else the request's own address."""
    configured = getattr(settings, "PUBLIC_URL", "")
    return (configured or base_url or "http://127.0.0.1:8000").rstrip("/")


def notify_url(provider_name: str, base_url: str | None = None) -> str:
    return site_url(base_url) + reverse("api-1:payment_notify", kwargs={"provider": provider_name})


def _provider(name: str) -> Provider:
    provider = registry.get(name)
    if provider is None:
        raise DomainError("invalid", fields={"provider": _("This payment method is not available here.")})
    return provider


# --------------------------------------------------------------------------------------------
# Paying
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    payment: Payment
    start: PaymentStart


def start_payment(
    *,
    booking: Booking,
    provider_name: str,
    channel: str = "",
    client_ip: str = "127.0.0.1",
    payer_id: str | None = None,
    base_url: str | None = None,
    now: dt.datetime | None = None,
) -> Started:
    """Open the payment of a booking awaiting payment (or return the one already open)."""
    now = now or timeutil.now()
    provider = _provider(provider_name)
    channels = registry.CHANNELS.get(provider_name, ())
    channel = channel or (channels[0] if channels else "")
    if channel not in channels:
        raise DomainError(
            "invalid",
            fields={"channel": _("Choose one of: %(channels)s.") % {"channels": ", ".join(channels)}},
        )
    if provider_name == "wechat" and channel == "jsapi" and not payer_id:
        raise DomainError("invalid", fields={"channel": _("Paying inside WeChat needs a WeChat sign-in.")})
    booking = Booking.objects.select_related("offering", "merchant").get(pk=booking.pk)
    if booking.status == Status.PENDING_PAYMENT and booking.hold_expires_at and booking.hold_expires_at <= now:
        raise DomainError("too_late", _("The time to pay for this booking has run out; please book again."))
    if booking.status != Status.PENDING_PAYMENT:
        raise DomainError(
            "invalid",
            _("This booking is not awaiting payment (it is %(status)s).") % {"status": booking.get_status_display()},
        )
    key = f"{booking.pk}:{provider_name}:{channel}"
    payment = Payment.objects.filter(open_key=key).first()
    if payment is None:
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    booking=booking,
                    merchant_id=booking.merchant_id,
                    provider=provider_name,
                    channel=channel,
                    out_trade_no=_new_number("P", now),
                    amount_fen=booking.amount_fen,
                    merchant_ref=provider.merchant_ref,
                    open_key=key,
                    created_at=now,
                )
        except IntegrityError:  # a double click a moment ago opened it
            payment = Payment.objects.get(open_key=key)
    if payment.start:
        return Started(payment, PaymentStart(**payment.start))
    # Outside any transaction: the provider may take a moment. Two clicks racing both ask with the
    # same out_trade_no and amount, which providers answer alike (it is one order to them).
    assert booking.hold_expires_at is not None
    order = PaymentOrder(
        out_trade_no=payment.out_trade_no,
        amount_fen=payment.amount_fen,
        description=f"{booking.merchant.name} {booking.offering.title}"[:120],
        channel=channel,
        notify_url=notify_url(provider_name, base_url),
        return_url=site_url(base_url) + reverse("h5:booking", args=[booking.code]),
        expires_at=booking.hold_expires_at,
        client_ip=client_ip or "127.0.0.1",
        payer_id=payer_id,
    )
    try:
        start = provider.create(order)
    except ValueError as exc:  # the adapter refused the order before sending it
        raise DomainError("invalid", fields={"channel": str(exc)[:200]}) from None
    except ProviderError as exc:
        log.warning("payment %s: %s could not open the order: %s", payment.out_trade_no, provider_name, exc)
        raise DomainError("unavailable") from None
    saved = {"params": start.params, "redirect_url": start.redirect_url}
    Payment.objects.filter(pk=payment.pk).update(start=saved, updated_at=now)
    payment.start = saved
    return Started(payment, start)


# --------------------------------------------------------------------------------------------
# Notifications and query answers
# --------------------------------------------------------------------------------------------


def receive_notification(
    *, provider_name: str, headers: Mapping[str, str], body: bytes, now: dt.datetime | None = None
) -> NotifyAnswer:
    """A provider's callback: verify, apply once, answer in the provider's format.

    Runs no outbound call: a refund it causes is queued in the outbox, so the answer is fast.
    """
    now = now or timeutil.now()
    provider = registry.get(provider_name)
    if provider is None:
        log.warning("notification for %s, which is not configured here", provider_name)
        return NotifyAnswer(status=404, body=b"unknown provider")
    notice = PaymentNotice(
        provider=provider_name,
        body_sha256=hashlib.sha256(body).hexdigest(),
        headers={k.lower(): str(v)[:200] for k, v in headers.items() if k.lower() in KEPT_HEADERS},
        created_at=now,
    )
    try:
        result = provider.parse_notification(headers, body)
    except BadSignature as exc:
        log.warning("%s notification with a bad signature (%s): ignored", provider_name, exc)
        notice.outcome, notice.detail = NoticeOutcome.BAD_SIGNATURE, str(exc)[:300]
        notice.save()
        return provider.answer(False)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s notification verified but unreadable: %s", provider_name, exc)
        notice.verified, notice.outcome, notice.detail = True, NoticeOutcome.UNREADABLE, str(exc)[:300]
        notice.save()
        return provider.answer(False)
    notice.verified = True
    if isinstance(result, RefundResult):
        apply_refund_result(provider_name=provider_name, result=result, now=now, notice=notice)
    else:
        apply_payment_result(provider_name=provider_name, result=result, now=now, notice=notice)
    # Every verified notification is answered "ok", mismatches included: retries would bring the
    # same wrong amount again and again. The mismatch is flagged for the merchant instead.
    return provider.answer(True)


def apply_payment_result(
    *,
    provider_name: str,
    result: PaymentResult,
    source: str = "notify",
    now: dt.datetime | None = None,
    notice: PaymentNotice | None = None,
) -> str:
    """What a verified payment state means for our Payment and its booking; returns the outcome."""
    now = now or timeutil.now()

    def work() -> str:
        with transaction.atomic():
            record = notice or PaymentNotice(provider=provider_name, source=source, verified=True, created_at=now)
            record.source = source
            record.out_trade_no, record.amount_fen = result.out_trade_no[:64], result.amount_fen
            payment = (
                Payment.objects.select_for_update()
                .filter(out_trade_no=result.out_trade_no, provider=provider_name)
                .first()
            )
            if payment is None:
                log.warning("%s reports %s for unknown payment %s", provider_name, result.state, result.out_trade_no)
                return _noted(record, NoticeOutcome.UNKNOWN_TRADE, flagged=result.state == "paid")
            record.payment, record.merchant_id = payment, payment.merchant_id
            if result.state != "paid":
                if payment.state == PaymentState.PENDING and result.state in {"closed", "failed"}:
                    Payment.objects.filter(pk=payment.pk).update(state=result.state, open_key=None, updated_at=now)
                    return _noted(record, NoticeOutcome.APPLIED, save=source == "notify")
                return _noted(record, NoticeOutcome.DUPLICATE, save=source == "notify")
            if payment.state in MONEY_IN:
                return _noted(record, NoticeOutcome.DUPLICATE, save=source == "notify")
            if result.amount_fen != payment.amount_fen:
                log.error(
                    "payment %s: paid %s fen, expected %s", payment.out_trade_no, result.amount_fen, payment.amount_fen
                )
                detail = _("Paid %(paid)s fen, the booking costs %(due)s fen.") % {
                    "paid": result.amount_fen,
                    "due": payment.amount_fen,
                }
                return _noted(record, NoticeOutcome.AMOUNT_MISMATCH, flagged=True, detail=str(detail))
            if result.merchant_ref != payment.merchant_ref:
                log.error(
                    "payment %s: paid to %r, expected %r",
                    payment.out_trade_no,
                    result.merchant_ref,
                    payment.merchant_ref,
                )
                detail = _("Paid to account %(ref)s, not ours.") % {"ref": result.merchant_ref[:60]}
                return _noted(record, NoticeOutcome.MERCHANT_MISMATCH, flagged=True, detail=str(detail))
            Payment.objects.filter(pk=payment.pk).update(
                state=PaymentState.PAID,
                open_key=None,
                provider_trade_no=result.provider_trade_no[:64],
                paid_at=result.paid_at or now,
                updated_at=now,
            )
            payment.refresh_from_db()
            outcome, detail = _settle_booking(payment, now)
            return _noted(record, outcome, flagged=outcome == NoticeOutcome.LATE_REFUNDED, detail=detail, save=True)

    return engine.with_retries(work)


def _noted(notice: PaymentNotice, outcome: str, *, flagged: bool = False, detail: str = "", save: bool = True) -> str:
    notice.outcome, notice.flagged_for_merchant = outcome, flagged
    notice.detail = (detail or notice.detail)[:300]
    if save:
        notice.pk = None  # a retried transaction writes it afresh
        notice.save()
    return outcome


def _settle_booking(payment: Payment, now: dt.datetime) -> tuple[str, str]:
    """The money is in: confirm the booking, confirm it again after expiry, or give the money back."""
    booking = Booking.objects.select_for_update().get(pk=payment.booking_id)
    if booking.status == Status.PENDING_PAYMENT:
        engine.confirm(booking=booking, now=now, reason=str(_("paid (%(provider)s)") % {"provider": payment.provider}))
        return NoticeOutcome.APPLIED, ""
    if booking.status == Status.EXPIRED:
        try:
            with transaction.atomic():
                engine.revive_expired(booking=booking, now=now, reason=str(_("paid after the hold had expired")))
            return NoticeOutcome.APPLIED, str(_("Paid after the hold expired; the places were still free."))
        except DomainError as exc:
            reason = str(_("Paid after the hold expired and the places were gone (%(why)s).") % {"why": exc.message})
    elif booking.status == Status.CONFIRMED or booking.paid_fen:
        reason = str(_("Paid twice: the booking was already paid."))
    else:
        reason = str(_("Paid after the booking was %(status)s.") % {"status": booking.get_status_display()})
    _queue_refund(payment=payment, booking=booking, refund_fen=payment.amount_fen, reason=reason, now=now)
    return NoticeOutcome.LATE_REFUNDED, reason


def apply_refund_result(
    *,
    provider_name: str,
    result: RefundResult,
    source: str = "notify",
    now: dt.datetime | None = None,
    notice: PaymentNotice | None = None,
) -> str:
    """A refund's state as the provider reports it: record it; a booking fully refunded becomes ``refunded``."""
    now = now or timeutil.now()

    def work() -> str:
        with transaction.atomic():
            record = notice or PaymentNotice(provider=provider_name, source=source, verified=True, created_at=now)
            record.source = source
            record.out_trade_no, record.out_refund_no = result.out_trade_no[:64], result.out_refund_no[:64]
            record.amount_fen = result.refund_fen
            refund = (
                Refund.objects.select_for_update()
                .select_related("payment")
                .filter(out_refund_no=result.out_refund_no, payment__provider=provider_name)
                .first()
            )
            if refund is None:
                return _noted(record, NoticeOutcome.UNKNOWN_TRADE, flagged=result.state == "succeeded")
            record.payment, record.merchant_id = refund.payment, refund.merchant_id
            if refund.state != RefundState.PENDING or result.state == "pending":
                return _noted(record, NoticeOutcome.DUPLICATE, save=source == "notify")
            if result.state == "failed":
                Refund.objects.filter(pk=refund.pk).update(
                    state=RefundState.FAILED, last_error=str(result.raw)[:2000] or "failed", finished_at=now
                )
                return _noted(record, NoticeOutcome.APPLIED, flagged=True, detail=str(_("The refund failed.")))
            Refund.objects.filter(pk=refund.pk).update(
                state=RefundState.SUCCEEDED,
                provider_refund_no=result.provider_refund_no[:64],
                finished_at=result.finished_at or now,
                last_error="",
            )
            _refresh_payment_state(refund.payment_id, now)
            _finish_booking_refund(refund.booking_id, now)
            return _noted(record, NoticeOutcome.APPLIED, save=source == "notify")

    return engine.with_retries(work)


def _refresh_payment_state(payment_id: int, now: dt.datetime) -> None:
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    back = payment.refunds.filter(state=RefundState.SUCCEEDED).aggregate(n=Sum("refund_fen"))["n"] or 0
    state = PaymentState.REFUNDED if back >= payment.amount_fen else PaymentState.PARTLY_REFUNDED
    Payment.objects.filter(pk=payment_id).update(state=state, updated_at=now)


def _finish_booking_refund(booking_id: int, now: dt.datetime) -> None:
    """Cancelled or expired, and every refund of it arrived: the booking is ``refunded``."""
    booking = Booking.objects.get(pk=booking_id)
    if booking.status not in {Status.CANCELLED, Status.EXPIRED}:
        return  # e.g. a second payment of a confirmed booking was refunded: the booking stays as it is
    refunds = Refund.objects.filter(booking_id=booking_id)
    if refunds.exclude(state=RefundState.SUCCEEDED).exists():
        return
    total = refunds.aggregate(n=Sum("refund_fen"))["n"] or 0
    with contextlib.suppress(DomainError):  # changed meanwhile
        engine.mark_refunded(booking=booking, refund_fen=total, now=now)


# --------------------------------------------------------------------------------------------
# Refunds
# --------------------------------------------------------------------------------------------


def _queue_refund(*, payment: Payment, booking: Booking, refund_fen: int, reason: str, now: dt.datetime) -> Refund:
    """A Refund row and its outbox row, in the caller's transaction: sent once that commits."""
    refund = Refund.objects.create(
        payment=payment,
        booking=booking,
        merchant_id=payment.merchant_id,
        out_refund_no=_new_number("R", now),
        refund_fen=refund_fen,
        reason=reason[:200],
        created_at=now,
    )
    outbox.enqueue(
        REFUND_KIND,
        {"refund_id": refund.pk},
        merchant_id=payment.merchant_id,
        key=f"refund:{refund.pk}",
        max_attempts=REFUND_MAX_ATTEMPTS,
    )
    return refund


def on_refund_owed(
    sender: Any, *, booking: Booking, refund_fen: int, reason: str = "", now: dt.datetime | None = None, **kw: Any
) -> list[Refund]:
    """The engine cancelled a booking that owes ``refund_fen`` back (inside its transaction).

    The amount is taken from the booking's payments, oldest first, never more than each has left.
    A booking confirmed without an online payment (by staff, in older data) has nothing to send.
    """
    now = now or timeutil.now()
    left = refund_fen
    made: list[Refund] = []
    for payment in Payment.objects.filter(booking_id=booking.pk, state__in=MONEY_IN).order_by("paid_at", "pk"):
        owed_already = payment.refunds.exclude(state=RefundState.FAILED).aggregate(n=Sum("refund_fen"))["n"] or 0
        share = min(left, payment.amount_fen - owed_already)
        if share <= 0:
            continue
        text = reason or str(_("Booking %(code)s cancelled") % {"code": booking.code})
        made.append(_queue_refund(payment=payment, booking=booking, refund_fen=share, reason=text, now=now))
        left -= share
        if not left:
            break
    if left:
        log.warning("booking %s owes %s fen back without an online payment to refund", booking.code, left)
    return made


class RefundPending(Exception):
    """The provider has not finished the refund yet: the outbox asks again later."""


@outbox.handler(REFUND_KIND, max_attempts=REFUND_MAX_ATTEMPTS)
def _deliver_refund(item: outbox.OutboxItem) -> None:
    send_refund(int(item.payload["refund_id"]), now=outbox.now())


def send_refund(refund_id: int, *, now: dt.datetime | None = None) -> Refund:
    """Send a pending refund to its provider (first time) or ask how it went (later times).

    Raises ProviderError when the provider cannot be reached and RefundPending while it is still
    working on it, so the outbox tries again with backoff.
    """
    now = now or timeutil.now()
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.state != RefundState.PENDING:
        return refund
    payment = refund.payment
    Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") + 1)
    provider = registry.get(payment.provider)
    if provider is None:
        Refund.objects.filter(pk=refund.pk).update(last_error=f"{payment.provider} is not configured")
        raise ProviderError(f"{payment.provider} is not configured")
    order = RefundOrder(
        out_trade_no=payment.out_trade_no,
        out_refund_no=refund.out_refund_no,
        refund_fen=refund.refund_fen,
        total_fen=payment.amount_fen,
        reason=refund.reason or str(_("Booking cancelled")),
        notify_url=notify_url(payment.provider),
        requested_at=now,
    )
    try:
        if refund.requested_at is None:
            # Noted before asking: after a crash mid-call the next try asks instead of sending blind.
            Refund.objects.filter(pk=refund.pk).update(requested_at=now)
            result = provider.refund(order)
        else:
            try:
                result = provider.query_refund(refund.out_refund_no, payment.out_trade_no)
            except ProviderError:
                result = provider.refund(order)  # never arrived: the same refund number again is safe
    except ProviderError as exc:
        Refund.objects.filter(pk=refund.pk).update(last_error=str(exc)[:2000])
        raise
    apply_refund_result(provider_name=payment.provider, result=result, source="query", now=now)
    refund.refresh_from_db()
    if refund.state == RefundState.PENDING:
        raise RefundPending(f"refund {refund.out_refund_no} is still being processed")
    return refund


# --------------------------------------------------------------------------------------------
# Holds
# --------------------------------------------------------------------------------------------


def _pending_payments() -> Any:
    return Payment.objects.filter(state=PaymentState.PENDING)


def _close_or_confirm(payment: Payment, provider: Provider, now: dt.datetime) -> bool:
    """Ask the provider about an open payment: paid → applied; otherwise closed there, then here.

    False when the provider cannot tell (unreachable, or closing failed without it being paid).
    """
    result: PaymentResult | None
    try:
        result = provider.query(payment.out_trade_no)
        if result.state != "paid":
            provider.close(payment.out_trade_no)
    except ProviderError as exc:
        try:  # perhaps paid a moment ago (closing a paid order fails): ask once more
            result = provider.query(payment.out_trade_no)
        except ProviderError:
            if payment.start:  # opened at the provider: we cannot tell what became of it
                log.warning("payment %s: cannot settle with %s: %s", payment.out_trade_no, payment.provider, exc)
                return False
            result = None  # its creation failed: it was never opened there
        if result is not None and result.state != "paid":
            return False
    if result is not None and result.state == "paid":
        apply_payment_result(provider_name=payment.provider, result=result, source="query", now=now)
        return True
    Payment.objects.filter(pk=payment.pk, state=PaymentState.PENDING).update(
        state=PaymentState.CLOSED, open_key=None, updated_at=now
    )
    return True


def resolve_overdue_hold(booking: Booking, *, now: dt.datetime | None = None) -> str:
    """Ask the provider before an unpaid hold expires; returns the booking's status afterwards.

    Paid (the notification was lost) → confirmed. Otherwise the provider order is closed so it can
    no longer be paid, then the hold expires. A provider that cannot be asked keeps the hold for
    UNREACHABLE_GRACE longer.
    """
    now = now or timeutil.now()
    unresolved = False
    for payment in _pending_payments().filter(booking_id=booking.pk):
        provider = registry.get(payment.provider)
        if provider is None or not _close_or_confirm(payment, provider, now):
            unresolved = True
    booking.refresh_from_db()
    if booking.status != Status.PENDING_PAYMENT:
        return booking.status
    assert booking.hold_expires_at is not None
    if unresolved and now < booking.hold_expires_at + UNREACHABLE_GRACE:
        return booking.status
    with contextlib.suppress(DomainError):  # paid or cancelled a moment ago
        engine.expire_hold(booking=booking, now=now)
    return Booking.objects.values_list("status", flat=True).get(pk=booking.pk)


def release_expired_holds(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """The periodic job: every overdue hold is resolved (provider asked first); returns how many expired."""
    now = now or timeutil.now()
    expired = 0
    overdue = Booking.objects.filter(status=Status.PENDING_PAYMENT, hold_expires_at__lte=now).order_by(
        "hold_expires_at", "pk"
    )[:limit]
    for booking in overdue:
        if resolve_overdue_hold(booking, now=now) == Status.EXPIRED:
            expired += 1
    close_stale_payments(now=now)
    return expired


def expire_slot_holds(slot_ids: Iterable[int], *, now: dt.datetime | None = None) -> int:
    """Lazy expiry when slots are read: one indexed query when nothing is overdue.

    Holds with a payment under way are left to the periodic job, which asks the provider first
    (a page read makes no outbound call).
    """
    now = now or timeutil.now()
    overdue = list(
        Booking.objects.filter(
            slot_id__in=list(slot_ids), status=Status.PENDING_PAYMENT, hold_expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    if not overdue:
        return 0
    paying = set(_pending_payments().filter(booking_id__in=overdue).values_list("booking_id", flat=True))
    expired = 0
    for booking in Booking.objects.filter(pk__in=[pk for pk in overdue if pk not in paying]):
        try:
            engine.expire_hold(booking=booking, now=now)
            expired += 1
        except DomainError:
            continue  # paid or cancelled a moment ago
    return expired


def close_stale_payments(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Pending payments of bookings that stopped waiting (cancelled, paid another way): close them
    at the provider so they cannot be paid later (a payment that still arrives is refunded)."""
    now = now or timeutil.now()
    closed = 0
    for payment in _pending_payments().exclude(booking__status=Status.PENDING_PAYMENT).order_by("pk")[:limit]:
        provider = registry.get(payment.provider)
        if provider is not None and _close_or_confirm(payment, provider, now):
            closed += 1
    return closed


# --------------------------------------------------------------------------------------------
# Reconciliation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    kind: str  # missing_locally | missing_at_provider | amount_differs | state_differs
    provider: str
    record: str  # payment / refund
    number: str  # out_trade_no or out_refund_no
    ours: str
    theirs: str


@dataclass
class Reconciliation:
    day: dt.date
    providers: list[str]
    checked: int = 0
    matched: int = 0
    local_fen: int = 0
    provider_fen: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def reconcile(*, day: dt.date, provider_name: str | None = None) -> Reconciliation:
    """Our payments and refunds of ``day`` (local time) against the provider's statement of it."""
    names = [provider_name] if provider_name else registry.available()
    report = Reconciliation(day=day, providers=names)
    start = timeutil.local_datetime(day, dt.time.min)
    end = start + dt.timedelta(days=1)
    for name in names:
        provider = _provider(name)
        try:
            lines = provider.statement(day)
        except ProviderError as exc:
            raise DomainError("unavailable", str(exc)) from None
        payments = {
            p.out_trade_no: p
            for p in Payment.objects.filter(provider=name, state__in=MONEY_IN, paid_at__gte=start, paid_at__lt=end)
        }
        refunds = {
            r.out_refund_no: r
            for r in Refund.objects.filter(
                payment__provider=name, state=RefundState.SUCCEEDED, finished_at__gte=start, finished_at__lt=end
            ).select_related("payment")
        }
        seen_payments: set[str] = set()
        seen_refunds: set[str] = set()
        for line in lines:
            report.checked += 1
            report.provider_fen += line.amount_fen if line.kind == "payment" else -line.amount_fen
            if line.kind == "payment":
                seen_payments.add(line.out_trade_no)
                paid = (
                    payments.get(line.out_trade_no)
                    or Payment.objects.filter(provider=name, out_trade_no=line.out_trade_no).first()
                )
                number, record = line.out_trade_no, "payment"
                ours: Payment | Refund | None = paid
                state_ok = paid is not None and paid.state in MONEY_IN
                amount = paid.amount_fen if paid is not None else None
            else:
                seen_refunds.add(line.out_refund_no)
                back = (
                    refunds.get(line.out_refund_no)
                    or Refund.objects.filter(payment__provider=name, out_refund_no=line.out_refund_no).first()
                )
                number, record = line.out_refund_no, "refund"
                ours = back
                state_ok = back is not None and back.state == RefundState.SUCCEEDED
                amount = back.refund_fen if back is not None else None
            theirs = f"{line.amount_fen} fen"
            if ours is None:
                report.mismatches.append(Mismatch("missing_locally", name, record, number, "-", theirs))
            elif not state_ok:
                report.mismatches.append(Mismatch("state_differs", name, record, number, ours.state, "paid/refunded"))
            elif amount != line.amount_fen:
                report.mismatches.append(Mismatch("amount_differs", name, record, number, f"{amount} fen", theirs))
            else:
                report.matched += 1
        for number, payment in payments.items():
            report.local_fen += payment.amount_fen
            if number not in seen_payments:
                report.mismatches.append(
                    Mismatch("missing_at_provider", name, "payment", number, f"{payment.amount_fen} fen", "-")
                )
        for number, refund in refunds.items():
            report.local_fen -= refund.refund_fen
            if number not in seen_refunds:
                report.mismatches.append(
                    Mismatch("missing_at_provider", name, "refund", number, f"{refund.refund_fen} fen", "-")
                )
    return report


# --------------------------------------------------------------------------------------------
# The console
# --------------------------------------------------------------------------------------------


def mark_notice_handled(*, notice: PaymentNotice, staff: User, now: dt.datetime | None = None) -> bool:
    """Staff looked into a flagged notification; False if it was already marked."""
    return bool(
        PaymentNotice.objects.filter(pk=notice.pk, flagged_for_merchant=True, handled_at__isnull=True).update(
            handled_at=now or timeutil.now(), handled_by=staff
        )
    )


# --------------------------------------------------------------------------------------------
# Demo history
# --------------------------------------------------------------------------------------------


def record_sandbox_payment(*, booking: Booking, now: dt.datetime) -> Payment:
    """A payment made in the sandbox cashier at ``now`` (demo history): opened, paid at the sandbox
    bank, and applied through the same path as a real answer."""
    from yuyue.payments.providers.sandbox import SandboxProvider

    sandbox = SandboxProvider()
    payment = Payment.objects.create(
        booking=booking,
        merchant_id=booking.merchant_id,
        provider=sandbox.name,
        channel="cashier",
        out_trade_no=_new_number("P", now),
        amount_fen=booking.amount_fen,
        merchant_ref=sandbox.merchant_ref,
        open_key=f"{booking.pk}:{sandbox.name}:cashier",
        created_at=now,
    )
    sandbox.create(
        PaymentOrder(
            out_trade_no=payment.out_trade_no,
            amount_fen=payment.amount_fen,
            description=f"{booking.merchant.name} {booking.offering.title}"[:120],
            channel="cashier",
            notify_url="",
            return_url="",
            expires_at=booking.hold_expires_at or now + dt.timedelta(minutes=booking.offering.policy.hold_minutes),
        )
    )
    result = sandbox.pay(payment.out_trade_no, at=now)
    apply_payment_result(provider_name=sandbox.name, result=result, source="query", now=now)
    payment.refresh_from_db()
    return payment
