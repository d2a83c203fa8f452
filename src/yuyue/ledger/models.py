"""The tamper-evident ledger: one hash chain of booking events per merchant, and daily checkpoints.

Rows here are only ever inserted (the chain head is the one row that is updated, under a lock).
Anyone who edits, deletes or inserts a row afterwards breaks a hash that ``yuyue ledger verify``
recomputes; a checkpoint published elsewhere also catches a rewrite of the whole chain.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil

GENESIS = "0" * 64


class ChainHead(models.Model):
    """The last entry of a merchant's chain; appends lock this row, so they form one line."""

    merchant = models.OneToOneField("tenants.Merchant", on_delete=models.PROTECT, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default=GENESIS)

    class Meta:
        verbose_name = _("ledger head")
        verbose_name_plural = _("ledger heads")


class LedgerEntry(models.Model):
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField()
    # The BookingEvent this entry seals (a plain id: the ledger outlives nothing it should not).
    event_id = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    payload = models.TextField()
    payload_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)
    # When the entry was sealed (wall clock, not the event's own time): daily checkpoints group by it.
    recorded_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["merchant", "seq"]
        indexes = [models.Index(fields=["merchant", "recorded_at"])]
        constraints = [models.UniqueConstraint(fields=["merchant", "seq"], name="ledger_entry_seq_once")]


class Checkpoint(models.Model):
    """A day's Merkle root over the entry hashes of that day (local date of the events)."""

    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.PROTECT, related_name="+")
    date = models.DateField(_("date"))
    first_seq = models.PositiveBigIntegerField(null=True)
    last_seq = models.PositiveBigIntegerField(null=True)
    entries = models.PositiveIntegerField(_("entries"), default=0)
    merkle_root = models.CharField(_("Merkle root"), max_length=64)
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("ledger checkpoint")
        verbose_name_plural = _("ledger checkpoints")
        ordering = ["-date"]
        constraints = [models.UniqueConstraint(fields=["merchant", "date"], name="ledger_checkpoint_once_a_day")]
