"""Membership cards (次卡): a merchant's card products, the cards customers hold, and every credit moved.

A card's ``credits_left`` moves only by conditional UPDATEs in ``memberships.services`` (taking a
credit needs ``credits_left >= n`` and an unexpired, active card), in the same transaction as the
``CreditEntry`` that records why; a CHECK constraint keeps it between 0 and ``credits_total``.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil


class CardProduct(models.Model):
    """What a merchant sells: e.g. "10次卡", ten classes within 180 days, for some of its offerings."""

    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="card_products")
    name = models.CharField(_("name"), max_length=60)
    credits = models.PositiveIntegerField(_("classes"))
    valid_days = models.PositiveIntegerField(_("valid for (days)"))
    price_fen = models.PositiveIntegerField(_("price (fen)"), default=0)
    offerings = models.ManyToManyField(
        "catalog.Offering", blank=True, related_name="card_products", verbose_name=_("offerings covered")
    )
    offering_group = models.CharField(
        _("offering group covered"),
        max_length=50,
        blank=True,
        help_text=_("Also covers every offering whose limit group is this."),
    )
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("card product")
        verbose_name_plural = _("card products")
        ordering = ["merchant_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gte=1), name="card_product_has_credits"),
            models.CheckConstraint(condition=Q(valid_days__gte=1), name="card_product_has_validity"),
        ]

    def __str__(self) -> str:
        return self.name


class CardStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    VOID = "void", _("void")


class Card(models.Model):
    """One customer's card: how many classes it had, how many are left, until when."""

    product = models.ForeignKey(CardProduct, on_delete=models.PROTECT, related_name="cards")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="cards")
    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE, related_name="cards")
    credits_total = models.PositiveIntegerField(_("classes"))
    credits_left = models.IntegerField(_("classes left"))
    expires_at = models.DateTimeField(_("expires at"))
    status = models.CharField(_("status"), max_length=10, choices=CardStatus.choices, default=CardStatus.ACTIVE)
    price_fen = models.PositiveIntegerField(_("price (fen)"), default=0)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("membership card")
        verbose_name_plural = _("membership cards")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "merchant", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(credits_left__gte=0) & Q(credits_left__lte=F("credits_total")),
                name="card_credits_within_total",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product.name} #{self.pk}"

    def is_usable(self, at: dt.datetime | None = None) -> bool:
        """Active, with classes left, and not expired at ``at`` (a class's start; default: now)."""
        return self.status == CardStatus.ACTIVE and self.credits_left > 0 and self.expires_at > (at or timeutil.now())

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timeutil.now()


class CreditEntry(models.Model):
    """One change of a card's classes with its reason: granted, used by a booking, given back."""

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="entries")
    delta = models.IntegerField(_("change"))
    credits_after = models.IntegerField(_("classes left after"))
    booking = models.ForeignKey(
        "booking.Booking", on_delete=models.SET_NULL, null=True, blank=True, related_name="credit_entries"
    )
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("card entry")
        verbose_name_plural = _("card entries")
        ordering = ["-id"]
