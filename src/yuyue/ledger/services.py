"""The ledger: append booking events to a per-merchant hash chain, checkpoint each day, verify it all.

Entry ``n`` of a merchant's chain holds

- ``payload``: the event as canonical JSON (sorted keys, no whitespace, times in UTC),
- ``payload_hash = sha256(payload)``,
- ``prev_hash``: the ``entry_hash`` of entry ``n - 1`` (64 zeros for the first entry),
- ``entry_hash = sha256(prev_hash + ":" + payload_hash + ":" + str(n))``.

Appends happen in the transaction that records the event and lock the merchant's ``ChainHead``
row first, so concurrent bookings queue for the next number instead of forking the chain; the
unique (merchant, seq) index refuses a fork even if a lock were ever missed.

A checkpoint is the Merkle root of the entry hashes sealed on one (local) day. Published
elsewhere, it proves later that nobody rewrote that day, not even by recomputing every hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from yuyue.booking.models import BookingEvent
from yuyue.core import timeutil
from yuyue.ledger.models import GENESIS, ChainHead, Checkpoint, LedgerEntry
from yuyue.tenants.models import Merchant

EXPORT_FORMAT = "yuyue-ledger-checkpoint/1"
_EVENT_FIELDS = (
    "id",
    "booking__code",
    "booking__merchant_id",
    "action",
    "from_status",
    "to_status",
    "actor",
    "actor_user_id",
    "actor_staff_id",
    "reason",
    "data",
    "created_at",
)


# --- Hashing ------------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """One text for one value: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, payload_hash: str, seq: int) -> str:
    return sha256(f"{prev_hash}:{payload_hash}:{seq}")


def event_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The sealed content of a booking event, from a ``values(*_EVENT_FIELDS)`` row."""
    return {
        "event": row["id"],
        "booking": row["booking__code"],
        "merchant": row["booking__merchant_id"],
        "action": row["action"],
        "from": row["from_status"],
        "to": row["to_status"],
        "actor": row["actor"],
        "actor_user": row["actor_user_id"],
        "actor_staff": row["actor_staff_id"],
        "reason": row["reason"],
        # Through JSON once, as the database stores it (tuples become lists, keys strings).
        "data": json.loads(json.dumps(row["data"] or {})),
        "at": utc_text(row["created_at"]),
    }


def _row_of(event: BookingEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "booking__code": event.booking.code,
        "booking__merchant_id": event.booking.merchant_id,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor,
        "actor_user_id": event.actor_user_id,
        "actor_staff_id": event.actor_staff_id,
        "reason": event.reason,
        "data": event.data,
        "created_at": event.created_at,
    }


def merkle_root(leaves: Iterable[str]) -> str:
    """Merkle root of hex hashes (RFC 6962 style: 0x00 before leaves, 0x01 before nodes; odd ones move up)."""
    level = [hashlib.sha256(b"\x00" + bytes.fromhex(leaf)).digest() for leaf in leaves]
    if not level:
        return sha256(b"")
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


# --- Appending -------------------------------------------------------------------------------------


def _lock_head(merchant_id: int) -> ChainHead:
    """The merchant's chain head, locked until the caller's transaction ends (created on first use)."""
    head = next(iter(ChainHead.objects.select_for_update().filter(merchant_id=merchant_id)[:1]), None)
    if head is None:
        try:
            with transaction.atomic():
                ChainHead.objects.create(merchant_id=merchant_id)
        except IntegrityError:
            pass  # a concurrent first append made it; lock theirs
        head = ChainHead.objects.select_for_update().get(merchant_id=merchant_id)
    return head


def _append(head: ChainHead, event_id: int, payload: dict[str, Any], now: dt.datetime) -> LedgerEntry:
    text = canonical_json(payload)
    payload_hash = sha256(text)
    seq = head.seq + 1
    entry = LedgerEntry.objects.create(
        merchant_id=head.merchant_id,
        seq=seq,
        event_id=event_id,
        prev_hash=head.entry_hash,
        payload=text,
        payload_hash=payload_hash,
        entry_hash=entry_hash(head.entry_hash, payload_hash, seq),
        recorded_at=now,
    )
    head.seq, head.entry_hash = seq, entry.entry_hash
    ChainHead.objects.filter(pk=head.pk).update(seq=seq, entry_hash=entry.entry_hash)
    return entry


def append_event(event: BookingEvent) -> LedgerEntry:
    """Seal a booking event; must run inside the transaction that created it."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("ledger appends belong in the transaction that records the event")
    merchant_id = event.booking.merchant_id
    payload = event_payload(_row_of(event))
    now = timeutil.now()
    if connection.vendor == "postgresql":
        entry = _append_in_one_statement(merchant_id, event.pk, payload, now)
        if entry is not None:
            return entry
    return _append(_lock_head(merchant_id), event.pk, payload, now)


# The append of ``_lock_head`` + ``_append`` as one PostgreSQL statement, the hash computed by
# the database as ``entry_hash`` does: the chain head stays locked from this one round trip to
# the commit, where three round trips (lock, insert, update) would hold it three times longer.
# ``FOR UPDATE`` waits for a concurrent append and then reads its result (READ COMMITTED), and
# the UPDATE of the same row goes on from that version; (merchant, seq) stays unique regardless.
_APPEND_SQL = """WITH head AS (
    SELECT merchant_id, seq + 1 AS seq, entry_hash AS prev_hash
    FROM ledger_chainhead WHERE merchant_id = %(merchant)s FOR UPDATE
), entry AS (
    SELECT merchant_id, seq, prev_hash,
        encode(sha256(convert_to(prev_hash || ':' || %(payload_hash)s || ':' || seq::text, 'UTF8')), 'hex')
        AS entry_hash
    FROM head
), moved AS (
    UPDATE ledger_chainhead SET seq = entry.seq, entry_hash = entry.entry_hash
    FROM entry WHERE ledger_chainhead.merchant_id = entry.merchant_id
)
INSERT INTO ledger_ledgerentry
    (merchant_id, seq, event_id, prev_hash, payload, payload_hash, entry_hash, recorded_at)
SELECT merchant_id, seq, %(event)s, prev_hash, %(payload)s, %(payload_hash)s, entry_hash, %(now)s FROM entry
RETURNING id, seq, prev_hash, entry_hash
"""


def _append_in_one_statement(
    merchant_id: int, event_id: int, payload: dict[str, Any], now: dt.datetime
) -> LedgerEntry | None:
    """PostgreSQL: lock the head, insert the entry, move the head, in one statement.

    None if the merchant has no chain head yet (its first append goes the long way)."""
    text = canonical_json(payload)
    payload_hash = sha256(text)
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            _APPEND_SQL,
            {"merchant": merchant_id, "event": event_id, "payload": text, "payload_hash": payload_hash, "now": now},
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pk, seq, prev_hash, hashed = row
    if hashed != entry_hash(prev_hash, payload_hash, seq):  # the database and Python must agree
        raise RuntimeError(f"ledger entry #{seq} of merchant {merchant_id}: the database hashed it differently")
    return LedgerEntry(
        id=pk,
        merchant_id=merchant_id,
        seq=seq,
        event_id=event_id,
        prev_hash=prev_hash,
        payload=text,
        payload_hash=payload_hash,
        entry_hash=hashed,
        recorded_at=now,
    )


def rebuild(*, merchant: Merchant | None = None, batch: int = 1000) -> int:
    """Seal booking events that have no entry yet (those from before the ledger), oldest first."""
    merchants = [merchant] if merchant is not None else list(Merchant.objects.order_by("pk"))
    added = 0
    for m in merchants:
        while True:
            with transaction.atomic():
                head = _lock_head(m.pk)  # the lock keeps live appends out while we fill in
                rows = list(
                    BookingEvent.objects.filter(booking__merchant_id=m.pk)
                    .exclude(id__in=LedgerEntry.objects.filter(merchant_id=m.pk).values("event_id"))
                    .order_by("id")
                    .values(*_EVENT_FIELDS)[:batch]
                )
                now = timeutil.now()
                for row in rows:
                    _append(head, row["id"], event_payload(row), now)
            added += len(rows)
            if len(rows) < batch:
                break
    return added


# --- Checkpoints ---------------------------------------------------------------------------------


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timeutil.local_datetime(day, dt.time(0, 0))
    return start, timeutil.local_datetime(day + dt.timedelta(days=1), dt.time(0, 0))


def _day_hashes(merchant_id: int, day: dt.date) -> list[tuple[int, str]]:
    start, end = _day_bounds(day)
    return list(
        LedgerEntry.objects.filter(merchant_id=merchant_id, recorded_at__gte=start, recorded_at__lt=end)
        .order_by("seq")
        .values_list("seq", "entry_hash")
    )


def make_checkpoints(*, day: dt.date | None = None, merchant: Merchant | None = None) -> list[Checkpoint]:
    """Checkpoint ``day`` (default: yesterday, a day that is over) for every merchant with a chain.

    A day already checkpointed is left alone, so running this twice changes nothing.
    """
    day = day or timeutil.today() - dt.timedelta(days=1)
    if day >= timeutil.today():
        # Entries sealed later that day would no longer match the root.
        raise ValueError(f"{day} is not over yet; checkpoints are made for days that are over")
    heads = ChainHead.objects.order_by("pk")
    if merchant is not None:
        heads = heads.filter(merchant=merchant)
    made: list[Checkpoint] = []
    for merchant_id in heads.values_list("merchant_id", flat=True):
        if Checkpoint.objects.filter(merchant_id=merchant_id, date=day).exists():
            continue
        hashes = _day_hashes(merchant_id, day)
        try:
            with transaction.atomic():
                made.append(
                    Checkpoint.objects.create(
                        merchant_id=merchant_id,
                        date=day,
                        first_seq=hashes[0][0] if hashes else None,
                        last_seq=hashes[-1][0] if hashes else None,
                        entries=len(hashes),
                        merkle_root=merkle_root(h for _seq, h in hashes),
                        head_hash=hashes[-1][1] if hashes else GENESIS,
                    )
                )
        except IntegrityError:
            continue  # a concurrent run made it
    return made


def checkpoint_periodic() -> int:
    """The periodic job: yesterday's checkpoints, once."""
    return len(make_checkpoints())


def export_checkpoint(checkpoint: Checkpoint) -> dict[str, Any]:
    """What a merchant publishes elsewhere; anyone can later compare it with ``yuyue ledger verify``."""
    merchant = Merchant.objects.get(pk=checkpoint.merchant_id)
    return {
        "format": EXPORT_FORMAT,
        "merchant": {"id": merchant.pk, "slug": merchant.slug, "name": merchant.name},
        "date": checkpoint.date.isoformat(),
        "time_zone": str(timeutil.local_zone()),
        "entries": checkpoint.entries,
        "first_seq": checkpoint.first_seq,
        "last_seq": checkpoint.last_seq,
        "merkle_root": checkpoint.merkle_root,
        "head_hash": checkpoint.head_hash,
        "created_at": utc_text(checkpoint.created_at),
        "algorithm": {
            "payload_hash": "sha256(canonical JSON: sorted keys, no whitespace, UTC times)",
            "entry_hash": "sha256(prev_hash + ':' + payload_hash + ':' + seq)",
            "merkle_root": "RFC 6962 style over the day's entry hashes in seq order: "
            "leaf sha256(0x00 || hash), node sha256(0x01 || left || right), an odd last node moves up",
        },
    }


# --- Verifying ---------------------------------------------------------------------------------------


@dataclass
class Problem:
    merchant: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"entry #{self.seq}" if self.seq is not None else "chain"
        return f"{self.merchant}: {where}: {self.message}"


@dataclass
class Report:
    merchants: int = 0
    entries: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(*, merchant: Merchant | None = None) -> Report:
    """Recompute every chain and checkpoint; report the first bad entry of each merchant.

    Messages are in English, like the rest of the ``yuyue`` command's output (for operators).

    Detects edited entries (payload, hashes), deleted or inserted entries (sequence gaps, broken
    links, a head that does not match), booking events edited, deleted or inserted behind the
    engine's back, and days whose entries no longer give the checkpointed Merkle root.
    """
    report = Report()
    merchants = [merchant] if merchant is not None else list(Merchant.objects.order_by("pk"))
    for m in merchants:
        report.merchants += 1
        problem = _verify_chain(m, report)
        if problem is None:
            problem = _verify_checkpoints(m, report)
        if problem is not None:
            report.problems.append(problem)
    return report


def _entries(merchant_id: int) -> Iterator[LedgerEntry]:
    return LedgerEntry.objects.filter(merchant_id=merchant_id).order_by("seq").iterator(chunk_size=2000)


def _verify_chain(m: Merchant, report: Report) -> Problem | None:
    events = {row["id"]: row for row in BookingEvent.objects.filter(booking__merchant_id=m.pk).values(*_EVENT_FIELDS)}
    prev, expected, seen = GENESIS, 1, set()
    for entry in _entries(m.pk):
        report.entries += 1

        def bad(message: str, entry: LedgerEntry = entry) -> Problem:
            return Problem(m.slug, entry.seq, message)

        if entry.seq != expected:
            return bad(f"expected entry #{expected} here: entries are missing")
        if entry.prev_hash != prev:
            return bad("its previous hash does not match the entry before it")
        if sha256(entry.payload) != entry.payload_hash:
            return bad("its payload was changed (payload hash does not match)")
        if entry_hash(entry.prev_hash, entry.payload_hash, entry.seq) != entry.entry_hash:
            return bad("its entry hash does not match its contents")
        row = events.get(entry.event_id)
        if row is None:
            return bad(f"its booking event {entry.event_id} was deleted")
        if canonical_json(event_payload(row)) != entry.payload:
            return bad(f"booking event {entry.event_id} was changed after it was sealed")
        seen.add(entry.event_id)
        prev, expected = entry.entry_hash, expected + 1
    head = ChainHead.objects.filter(merchant_id=m.pk).first()
    last = expected - 1
    if head is not None and (head.seq != last or head.entry_hash != prev):
        return Problem(
            m.slug,
            last or None,
            f"the chain ends at entry #{last} but its head says #{head.seq} or differs",
        )
    unsealed = sorted(set(events) - seen)
    if unsealed:
        return Problem(m.slug, None, f"booking event {unsealed[0]} is not in the ledger")
    return None


def _verify_checkpoints(m: Merchant, report: Report) -> Problem | None:
    for cp in Checkpoint.objects.filter(merchant_id=m.pk).order_by("date"):
        report.checkpoints += 1
        hashes = _day_hashes(m.pk, cp.date)
        root = merkle_root(h for _seq, h in hashes)
        if root != cp.merkle_root or len(hashes) != cp.entries:
            seq = hashes[0][0] if hashes else cp.first_seq
            return Problem(
                m.slug,
                seq,
                f"the entries of {cp.date} no longer give the checkpointed Merkle root",
            )
    return None


def on_booking_event(event: BookingEvent, *, seal: bool = True) -> None:
    """The engine's one hook (``booking.services._record``): queue the event's webhooks, then seal it.

    Sealing comes last because it locks the merchant's chain head until the commit; with
    ``seal=False`` the engine calls ``append_event`` itself later in the transaction.
    """
    from yuyue.webhooks.services import queue_event  # webhooks build on the outbox, not the other way round

    queue_event(event)
    if seal:
        append_event(event)
