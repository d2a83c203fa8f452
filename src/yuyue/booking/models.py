"""Bookings and the rows that keep them honest.

The database, not Python, holds the line: ``Slot.reserved`` moves only by a conditional UPDATE,
``Claim`` rows give every per-person rule a unique key, and ``ResourceClaim`` keeps a coach,
doctor, vehicle or room in one place at a time (an exclusion constraint on PostgreSQL).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from yuyue.core import personal, timeutil
from yuyue.core.crypto import EncryptedTextField


class Status(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", _("awaiting approval")
    PENDING_PAYMENT = "pending_payment", _("awaiting payment")
    CONFIRMED = "confirmed", _("confirmed")
    CHECKED_IN = "checked_in", _("checked in")
    COMPLETED = "completed", _("completed")
    REJECTED = "rejected", _("rejected")
    CANCELLED = "cancelled", _("cancelled")
    EXPIRED = "expired", _("expired")
    NO_SHOW = "no_show", _("no-show")
    REFUNDED = "refunded", _("refunded")


class PaidBy(models.TextChoices):
    MONEY = "money", _("money")
    CREDIT = "credit", _("membership card")


# States in which a booking holds its seats and claims.
ACTIVE_STATUSES = frozenset(
    {
        Status.PENDING_APPROVAL,
        Status.PENDING_PAYMENT,
        Status.CONFIRMED,
        Status.CHECKED_IN,
        Status.COMPLETED,
        Status.NO_SHOW,
    }
)


class Booking(models.Model):
    code = models.CharField(_("booking code"), max_length=16, unique=True)
    user = models.ForeignKey("accounts.EndUser", on_delete=models.PROTECT, related_name="bookings")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.PROTECT, related_name="bookings")
    offering = models.ForeignKey("catalog.Offering", on_delete=models.PROTECT, related_name="bookings")
    slot = models.ForeignKey("scheduling.Slot", on_delete=models.PROTECT, related_name="bookings")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    party_size = models.PositiveIntegerField(_("party size"), default=1)
    seats = models.PositiveIntegerField(_("seats taken"), default=1)
    amount_fen = models.PositiveIntegerField(_("amount (fen)"), default=0)
    # What was paid online (0 while unpaid, for free bookings and for payment at the venue);
    # refunds are worked out from this, never from the price.
    paid_fen = models.PositiveIntegerField(_("paid online (fen)"), default=0)
    # Paid with money (online, at the venue, or free) or with classes of a membership card (次卡);
    # a card booking has amount 0 and its card, whose classes a cancellation in time gives back.
    paid_by = models.CharField(_("paid by"), max_length=10, choices=PaidBy.choices, default=PaidBy.MONEY)
    card = models.ForeignKey(
        "memberships.Card", on_delete=models.PROTECT, null=True, blank=True, related_name="bookings"
    )
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    reschedule_count = models.PositiveIntegerField(_("reschedules"), default=0)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Staff member who booked on the customer's behalf."),
    )
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(_("cancel reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timeutil.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "status", "created_at"]),
            models.Index(fields=["slot", "status"]),
            models.Index(fields=["user", "created_at"]),
            # The console lists a merchant's bookings newest first and pages through them.
            models.Index(fields=["merchant", "-id"], name="booking_merchant_newest"),
        ]

    # Set by the engine when an Idempotency-Key replay returned this existing booking.
    replayed: bool = False
    # Set by the engine on a booking it just made: its attendees, so the answer need not read them back.
    new_attendees: list[Attendee] | None = None

    def __str__(self) -> str:
        return self.code

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Attendee(models.Model):
    """A person on a booking, copied from 'my people' so later edits do not rewrite history."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="attendees")
    person = models.ForeignKey("accounts.Person", on_delete=models.SET_NULL, null=True, blank=True)
    name = models.CharField(_("name"), max_length=50)
    id_number = EncryptedTextField(_("resident ID number"), blank=True)
    id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    phone = EncryptedTextField(_("phone"), blank=True)
    phone_hash = models.CharField(max_length=64, blank=True, db_index=True)
    birth_date = models.DateField(null=True, blank=True)
    is_minor = models.BooleanField(default=False)
    guardian_name = models.CharField(max_length=50, blank=True)

    class Meta:
        verbose_name = _("attendee")
        verbose_name_plural = _("attendees")
        ordering = ["id"]

    def __str__(self) -> str:
        return personal.mask_name(self.name)

    @property
    def id_masked(self) -> str:
        return personal.mask_id(self.id_number)


class Actor(models.TextChoices):
    USER = "user", _("customer")
    STAFF = "staff", _("staff")
    SYSTEM = "system", _("system")


class BookingEvent(models.Model):
    """Every transition of a booking: who, when, from what to what, and why."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=30)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=10, choices=Actor.choices)
    actor_user = models.ForeignKey("accounts.EndUser", on_delete=models.SET_NULL, null=True, blank=True)
    actor_staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("booking event")
        verbose_name_plural = _("booking events")
        ordering = ["id"]


class Claim(models.Model):
    """A unique key an active booking holds, e.g. "this ID on this slot" or "this ID's 1st visit today".

    The unique index makes the database refuse a second holder, however the requests race.
    Claims are deleted when the booking stops being active.
    """

    key = models.CharField(max_length=190, unique=True)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="claims")

    class Meta:
        verbose_name = _("claim")
        verbose_name_plural = _("claims")


class ResourceClaim(models.Model):
    """A resource is busy for a slot's time while that slot has bookings.

    On PostgreSQL an exclusion constraint (see migration) refuses two overlapping claims of one
    resource for different slots; elsewhere the engine locks the resource row before checking.
    """

    resource = models.ForeignKey("catalog.Resource", on_delete=models.CASCADE, related_name="claims")
    slot = models.ForeignKey("scheduling.Slot", on_delete=models.CASCADE, related_name="resource_claims")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "slot"], name="resource_claim_once_per_slot"),
            models.CheckConstraint(condition=Q(starts_at__lt=models.F("ends_at")), name="resource_claim_positive"),
        ]
        indexes = [models.Index(fields=["resource", "starts_at"])]


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", _("waiting")
    PROMOTED = "promoted", _("booked")
    SKIPPED = "skipped", _("could not be booked")
    CANCELLED = "cancelled", _("cancelled")


class WaitlistEntry(models.Model):
    slot = models.ForeignKey("scheduling.Slot", on_delete=models.CASCADE, related_name="waitlist")
    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE, related_name="waitlist_entries")
    person_ids = models.JSONField(default=list, blank=True)
    party_size = models.PositiveIntegerField(default=1)
    answers = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING)
    # "<slot>:<user>" while waiting, NULL after: one waiting entry per user and slot on every database
    # (NULLs never collide in a unique index; MariaDB has no partial indexes).
    active_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    booking = models.ForeignKey(Booking, on_delete=models.SET_NULL, null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist")
        ordering = ["id"]
        indexes = [models.Index(fields=["slot", "status", "id"])]


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key: the same key and body again returns the same booking."""

    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE)
    key = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")]


class Review(models.Model):
    booking = models.OneToOneField(Booking, on_delete=models.CASCADE, related_name="review")
    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE)
    offering = models.ForeignKey("catalog.Offering", on_delete=models.CASCADE, related_name="reviews")
    resource = models.ForeignKey(
        "catalog.Resource", on_delete=models.SET_NULL, null=True, blank=True, related_name="reviews"
    )
    rating = models.PositiveSmallIntegerField(_("rating"))
    text = models.TextField(_("text"), blank=True)
    is_hidden = models.BooleanField(_("hidden"), default=False)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="review_rating_1_to_5")]


class AttendanceCheck(models.Model):
    """A slot's minimum attendance was checked (once: the unique slot makes a second check fail)."""

    slot = models.OneToOneField("scheduling.Slot", on_delete=models.CASCADE, related_name="attendance_check")
    checked_at = models.DateTimeField(default=timeutil.now)
    seats_booked = models.PositiveIntegerField()
    minimum = models.PositiveIntegerField()
    cancelled = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("attendance check")
        verbose_name_plural = _("attendance checks")
