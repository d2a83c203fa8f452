"""Seal the booking events recorded before the ledger existed, oldest first, one chain per merchant."""

from django.db import migrations

FIELDS = (
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


def backfill(apps, schema_editor):
    from yuyue.core import timeutil
    from yuyue.ledger.services import canonical_json, entry_hash, event_payload, sha256

    BookingEvent = apps.get_model("booking", "BookingEvent")
    LedgerEntry = apps.get_model("ledger", "LedgerEntry")
    ChainHead = apps.get_model("ledger", "ChainHead")
    now = timeutil.now()
    heads: dict[int, object] = {}
    for row in BookingEvent.objects.order_by("id").values(*FIELDS).iterator(chunk_size=2000):
        merchant_id = row["booking__merchant_id"]
        head = heads.get(merchant_id)
        if head is None:
            head = heads[merchant_id] = ChainHead.objects.get_or_create(merchant_id=merchant_id)[0]
        text = canonical_json(event_payload(row))
        payload_hash = sha256(text)
        seq = head.seq + 1
        digest = entry_hash(head.entry_hash, payload_hash, seq)
        LedgerEntry.objects.create(
            merchant_id=merchant_id,
            seq=seq,
            event_id=row["id"],
            prev_hash=head.entry_hash,
            payload=text,
            payload_hash=payload_hash,
            entry_hash=digest,
            recorded_at=now,
        )
        head.seq, head.entry_hash = seq, digest
    for head in heads.values():
        head.save()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial"), ("booking", "0005_booking_paid_fen")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
