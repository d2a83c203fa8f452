"""The people who book: end-user accounts, their family members and contacts, points and bans."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import personal, timeutil
from yuyue.core.crypto import EncryptedTextField


class EndUser(models.Model):
    """An account signed in by phone code or a mini-program; not a Django (staff) user."""

    phone = EncryptedTextField(_("phone"), blank=True)
    phone_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    nickname = models.CharField(_("nickname"), max_length=50, blank=True)
    wechat_openid = models.CharField(max_length=64, unique=True, null=True, blank=True)
    alipay_user_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    # The sum over all merchants (points are kept per merchant in PointsBalance); shown as a total.
    points_balance = models.IntegerField(_("points"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("end user")
        verbose_name_plural = _("end users")

    def __str__(self) -> str:
        return self.nickname or self.phone_masked or f"#{self.pk}"

    @property
    def phone_masked(self) -> str:
        return personal.mask_phone(self.phone)


class Relation(models.TextChoices):
    SELF = "self", _("myself")
    CHILD = "child", _("child")
    PARENT = "parent", _("parent")
    SPOUSE = "spouse", _("spouse")
    OTHER = "other", _("other")


class Person(models.Model):
    """Someone an account books for (常用联系人 / 就诊人 / 游客): the user, a child, a parent."""

    owner = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="people")
    name = models.CharField(_("name"), max_length=50)
    relation = models.CharField(_("relation"), max_length=10, choices=Relation.choices, default=Relation.SELF)
    id_number = EncryptedTextField(_("resident ID number"), blank=True)
    id_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    phone = EncryptedTextField(_("phone"), blank=True)
    phone_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    guardian = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="wards",
        help_text=_("An adult in the same account who accompanies a child."),
    )
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("people")
        ordering = ["id"]

    def __str__(self) -> str:
        return personal.mask_name(self.name)

    def age_on(self, day: dt.date) -> int | None:
        return personal.age_on(self.birth_date, day)

    def is_minor_on(self, day: dt.date, minor_age: int = 14) -> bool:
        age = self.age_on(day)
        return age is not None and age < minor_age

    @property
    def id_masked(self) -> str:
        return personal.mask_id(self.id_number)

    @property
    def phone_masked(self) -> str:
        return personal.mask_phone(self.phone)

    @property
    def identity_key(self) -> str:
        """What makes two bookings 'the same person': the resident ID if known, else this entry."""
        return f"id:{self.id_hash}" if self.id_hash else f"person:{self.pk}"


class PointsBalance(models.Model):
    """An account's points at one merchant: a studio's points mean nothing at a museum.

    ``balance`` moves only by UPDATEs in ``accounts.services.change_points`` (a deduction is a
    conditional UPDATE, so concurrent deductions cannot take it below zero), in the transaction that
    writes the matching ``PointsEntry``; it always equals the sum of that merchant's entries.
    """

    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="points_balances")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="+")
    balance = models.IntegerField(_("points"), default=0)
    updated_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("points balance")
        verbose_name_plural = _("points balances")
        ordering = ["user_id", "merchant_id"]
        constraints = [models.UniqueConstraint(fields=["user", "merchant"], name="points_balance_once_per_merchant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant_id}: {self.balance}"


class PointsEntry(models.Model):
    """One change of an account's points at a merchant with its reason; the balance is their running sum.

    Entries without a merchant are history from before balances were kept per merchant.
    """

    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="points_entries")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, null=True, blank=True)
    booking = models.ForeignKey("booking.Booking", on_delete=models.SET_NULL, null=True, blank=True)
    delta = models.IntegerField(_("change"))
    balance_after = models.IntegerField(_("balance after"))
    reason = models.CharField(_("reason"), max_length=200)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "merchant", "-id"], name="points_entry_history")]


class Ban(models.Model):
    """An account may not book at a merchant until a date (e.g. after repeated no-shows)."""

    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="bans")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="bans")
    starts_at = models.DateTimeField(default=timeutil.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("ban")
        verbose_name_plural = _("bans")
        indexes = [models.Index(fields=["user", "merchant", "ends_at"])]


class ApiToken(models.Model):
    """A bearer token; only its hash is stored, so a database leak does not leak sessions."""

    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens")
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    created_at = models.DateTimeField(default=timeutil.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | models.Q(staff_user__isnull=False),
                name="token_has_owner",
            )
        ]


class LoginCode(models.Model):
    """The SMS sign-in code of one phone: only a keyed hash is kept, with expiry and attempts.

    One row per phone (by its blind index): requesting a new code replaces the old one, and the
    resend cooldown is a conditional UPDATE on ``sent_at``, so it holds across server processes.
    """

    phone_hash = models.CharField(max_length=64, unique=True)
    code_hash = models.CharField(max_length=64)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in code")
        verbose_name_plural = _("sign-in codes")


class RateCounter(models.Model):
    """One fixed window of a rate limit, when no Redis is configured (see ``core/ratelimit.py``).

    ``key`` names the limit, the subject and the window's start; ``hits`` only grows by a
    conditional UPDATE, so concurrent requests in several processes cannot exceed the limit.
    """

    key = models.CharField(max_length=190, unique=True)
    hits = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)
