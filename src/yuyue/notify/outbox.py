"""The outbox: every message to the outside world is a row written in the caller's transaction.

A change and the rows announcing it commit (or roll back) together, so nothing is sent for a
change that did not happen and nothing is lost for one that did. Workers then deliver the rows
at least once:

- ``enqueue(kind, payload, merchant_id=…, due_at=…, key=…)`` inside the caller's transaction;
  a ``key`` is unique, so enqueuing the same thing twice is a no-op that returns the first row.
  ``enqueue_many(rows)`` writes several ``row(…)`` at once in one statement (the hot path of a
  booking: its confirmation and reminders), skipping those whose key is taken.
- ``@handler(kind)`` registers ``fn(item) -> None``; it raises on failure (``Permanent`` to give
  up at once, ``Defer`` to try again later without counting an attempt).
- ``deliver_due()`` claims due rows (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL and
  MariaDB, a conditional UPDATE on SQLite), calls the handler outside any transaction, and marks
  the row delivered, or schedules a retry with exponential backoff and jitter; after the last
  try the row is ``dead`` (visible in the console, re-sendable with ``redeliver``).
- A claim is a lease: a row a dead worker left in ``sending`` is due again when the lease ends.

Consumers get ``item.dedupe_id`` (stable across retries) to drop the duplicates at-least-once
delivery can produce.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil

log = logging.getLogger("yuyue.outbox")


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed, will retry")
    DEAD = "dead", _("gave up")
    SKIPPED = "skipped", _("not needed")


# Rows a worker may pick up (when next_attempt_at has come: for "sending", that is the lease end).
DUE_STATUSES = (OutboxStatus.PENDING, OutboxStatus.FAILED, OutboxStatus.SENDING)


def _dedupe_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class OutboxItem(models.Model):
    kind = models.CharField(_("kind"), max_length=60)
    merchant = models.ForeignKey(
        "tenants.Merchant", on_delete=models.CASCADE, null=True, blank=True, related_name="outbox_items"
    )
    payload = models.JSONField(_("payload"), default=dict)
    # Given to consumers (e.g. as the webhook id) so they can drop repeated deliveries.
    dedupe_id = models.CharField(max_length=40, unique=True, default=_dedupe_id, editable=False)
    # Producer's idempotency key: enqueuing with the same key again is a no-op (NULLs never collide).
    key = models.CharField(max_length=190, unique=True, null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveIntegerField(default=0, help_text="0: the setting NOTIFY_OUTBOX_MAX_ATTEMPTS")
    # When the row is due: the first try, the next retry, or (while sending) the end of the lease.
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timeutil.now)
    claim_token = models.CharField(max_length=32, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timeutil.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("outbox item")
        verbose_name_plural = _("outbox")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["merchant", "kind", "-id"], name="outbox_merchant_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class Permanent(Exception):
    """Raised by a handler when retrying cannot help (no address, refused for good): dead at once."""


class Defer(Exception):
    """Raised by a handler to try later (quiet hours) without counting an attempt."""

    def __init__(self, until: dt.datetime, reason: str = "") -> None:
        super().__init__(reason or f"deferred until {until.isoformat()}")
        self.until = until


class Skip(Exception):
    """Raised by a handler when the message is no longer wanted (a reminder of a cancelled booking)."""


@dataclass(frozen=True)
class _Handler:
    fn: Callable[[OutboxItem], None]
    max_attempts: int | None


_HANDLERS: dict[str, _Handler] = {}
# The time a delivery runs "at" (tests and catch-up runs pass ``now``); handlers read it with ``now()``.
_NOW: ContextVar[dt.datetime | None] = ContextVar("outbox_now", default=None)


def now() -> dt.datetime:
    return _NOW.get() or timeutil.now()


def handler(
    kind: str, *, max_attempts: int | None = None
) -> Callable[[Callable[[OutboxItem], None]], Callable[[OutboxItem], None]]:
    """Register ``fn(item) -> None`` as the deliverer of ``kind``; it raises when delivery failed."""

    def register(fn: Callable[[OutboxItem], None]) -> Callable[[OutboxItem], None]:
        _HANDLERS[kind] = _Handler(fn, max_attempts)
        return fn

    return register


def enqueue(
    kind: str,
    payload: dict[str, Any],
    *,
    merchant_id: int | None,
    due_at: dt.datetime | None = None,
    key: str | None = None,
    max_attempts: int | None = None,
) -> OutboxItem:
    """Write one row to deliver. Call it inside the transaction of the change it announces."""
    item = row(kind, payload, merchant_id=merchant_id, due_at=due_at, key=key, max_attempts=max_attempts)
    if item.key is None:
        item.save()
        return item
    try:
        with transaction.atomic():  # a savepoint: a duplicate key must not spoil the caller's transaction
            item.save()
    except IntegrityError:
        existing = OutboxItem.objects.filter(key=item.key).first()
        if existing is None:  # not a key clash after all
            raise
        return existing
    return item


def row(
    kind: str,
    payload: dict[str, Any],
    *,
    merchant_id: int | None,
    due_at: dt.datetime | None = None,
    key: str | None = None,
    max_attempts: int | None = None,
) -> OutboxItem:
    """An unsaved row for ``enqueue_many`` (same arguments as ``enqueue``)."""
    return OutboxItem(
        kind=kind,
        merchant_id=merchant_id,
        payload=payload,
        key=key[:190] if key else None,
        next_attempt_at=due_at or timeutil.now(),
        max_attempts=max_attempts or 0,
    )


def enqueue_many(items: list[OutboxItem]) -> None:
    """Write several rows (made by ``row``) in ONE statement, inside the caller's transaction.

    A row whose ``key`` is already taken is skipped, as ``enqueue`` would: the insert ignores
    conflicts (``ON CONFLICT DO NOTHING`` / ``INSERT IGNORE`` / ``INSERT OR IGNORE``), so it needs
    no savepoint and a duplicate cannot spoil the caller's transaction. Unlike ``enqueue`` it does
    not hand back the rows (their ids are not read back): for producers that only write.
    """
    if not items:
        return
    OutboxItem.objects.bulk_create(items, ignore_conflicts=True)


# --- delivery ----------------------------------------------------------------------------------


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def backoff(attempts: int) -> dt.timedelta:
    """Exponential backoff with full jitter in its upper half: base·2^(n-1), capped."""
    base = _setting("NOTIFY_OUTBOX_BACKOFF_SECONDS", 30)
    cap = _setting("NOTIFY_OUTBOX_BACKOFF_MAX_SECONDS", 6 * 3600)
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=random.uniform(delay / 2, delay))


def lease() -> dt.timedelta:
    return dt.timedelta(seconds=_setting("NOTIFY_OUTBOX_LEASE_SECONDS", 300))


def _due(now: dt.datetime) -> models.QuerySet[OutboxItem]:
    return OutboxItem.objects.filter(status__in=DUE_STATUSES, next_attempt_at__lte=now)


def claim(limit: int = 100, now: dt.datetime | None = None) -> list[OutboxItem]:
    """Take up to ``limit`` due rows for this worker: status sending, a lease, one attempt counted."""
    now = now or timeutil.now()
    token = uuid.uuid4().hex
    changes = {
        "status": OutboxStatus.SENDING,
        "claim_token": token,
        "next_attempt_at": now + lease(),
        "attempts": F("attempts") + 1,
        "updated_at": now,
    }
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # Other workers skip the rows we lock instead of waiting for them.
            ids = list(
                _due(now)
                .select_for_update(skip_locked=True)
                .order_by("next_attempt_at", "id")
                .values_list("id", flat=True)[:limit]
            )
            if not ids:
                return []
            OutboxItem.objects.filter(id__in=ids).update(**changes)
        else:
            # SQLite: writers are serialised, so one conditional UPDATE claims atomically.
            due_ids = _due(now).order_by("next_attempt_at", "id").values("id")[:limit]
            OutboxItem.objects.filter(id__in=list(due_ids.values_list("id", flat=True))).filter(
                status__in=DUE_STATUSES, next_attempt_at__lte=now
            ).update(**changes)
    return list(OutboxItem.objects.filter(claim_token=token).order_by("next_attempt_at", "id"))


def _finish(item: OutboxItem, **changes: Any) -> bool:
    """Record the outcome, unless the lease ran out and another worker claimed the row meanwhile."""
    changes.setdefault("claim_token", "")
    changes["updated_at"] = timeutil.now()
    done = OutboxItem.objects.filter(pk=item.pk, claim_token=item.claim_token).update(**changes)
    for name, value in changes.items():
        setattr(item, name, value)
    return bool(done)


def deliver(item: OutboxItem, now: dt.datetime | None = None) -> str:
    """Run the handler of one claimed row and record what happened; returns the new status."""
    registered = _HANDLERS.get(item.kind)
    limit = item.max_attempts or (registered.max_attempts if registered else None)
    limit = limit or int(_setting("NOTIFY_OUTBOX_MAX_ATTEMPTS", 8))
    if registered is None:
        _finish(item, status=OutboxStatus.DEAD, last_error=f"no handler for {item.kind!r}")
        return OutboxStatus.DEAD
    token = _NOW.set(now)
    try:
        registered.fn(item)
    except Defer as exc:
        _finish(
            item,
            status=OutboxStatus.PENDING,
            next_attempt_at=exc.until,
            attempts=F("attempts") - 1,
            last_error=str(exc),
        )
        return OutboxStatus.PENDING
    except Skip as exc:
        _finish(item, status=OutboxStatus.SKIPPED, last_error=str(exc)[:2000])
        return OutboxStatus.SKIPPED
    except Exception as exc:  # any failure of the outside world is retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if isinstance(exc, Permanent) or item.attempts >= limit:
            log.error("outbox %s #%s gave up after %d attempts: %s", item.kind, item.pk, item.attempts, error)
            _finish(item, status=OutboxStatus.DEAD, last_error=error)
            return OutboxStatus.DEAD
        retry_at = (now or timeutil.now()) + backoff(item.attempts)
        log.warning(
            "outbox %s #%s failed (attempt %d), retry at %s: %s", item.kind, item.pk, item.attempts, retry_at, error
        )
        _finish(item, status=OutboxStatus.FAILED, next_attempt_at=retry_at, last_error=error)
        return OutboxStatus.FAILED
    finally:
        _NOW.reset(token)
    _finish(item, status=OutboxStatus.DELIVERED, delivered_at=timeutil.now(), last_error="")
    return OutboxStatus.DELIVERED


def deliver_due(limit: int = 100, now: dt.datetime | None = None) -> int:
    """Claim and deliver due rows (one batch); returns how many were delivered."""
    delivered = 0
    for item in claim(limit=limit, now=now):
        if deliver(item, now=now) == OutboxStatus.DELIVERED:
            delivered += 1
    return delivered


def redeliver(item_id: int, *, merchant_id: int | None = None) -> bool:
    """Send a row again now (a dead or delivered one, from the console): a fresh set of attempts."""
    rows = OutboxItem.objects.filter(pk=item_id).exclude(status=OutboxStatus.SENDING)
    if merchant_id is not None:
        rows = rows.filter(merchant_id=merchant_id)
    return bool(
        rows.update(
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=timeutil.now(),
            last_error="",
            updated_at=timeutil.now(),
        )
    )


def stats(merchant_id: int | None = None) -> dict[str, int]:
    """Rows per status (for the console and health checks)."""
    rows = OutboxItem.objects.all() if merchant_id is None else OutboxItem.objects.filter(merchant_id=merchant_id)
    counts = dict(rows.values_list("status").annotate(n=models.Count("id")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in OutboxStatus.values}


def deliver_all_due(batch: int = 100, max_batches: int = 50, now: dt.datetime | None = None) -> int:
    """Drain: batches until nothing is due (bounded, so a periodic run always ends)."""
    total = 0
    for _batch in range(max_batches):
        items = claim(limit=batch, now=now)
        for item in items:
            if deliver(item, now=now) == OutboxStatus.DELIVERED:
                total += 1
        if not items:  # rows delivered here may enqueue more (an event fans out): claim until none is due
            break
    return total
