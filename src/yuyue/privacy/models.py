"""Personal-data lifecycle (PIPL): separate consents, staff decryptions of ID numbers, anonymisations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil


class ConsentKind(models.TextChoices):
    ID_NUMBER = "id_number", _("resident ID number")
    MINOR = "minor", _("data of a child under 14")


class Consent(models.Model):
    """A separate consent (PIPL art. 29/31) to process sensitive data of one person.

    ``text_version`` names the exact text the user agreed to (``privacy.consent.TEXTS``); rows are
    kept after a withdrawal or an account deletion as the record that consent existed and when.
    """

    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE, related_name="consents")
    person = models.ForeignKey(
        "accounts.Person", on_delete=models.SET_NULL, null=True, blank=True, related_name="consents"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ConsentKind.choices)
    text_version = models.CharField(_("text version"), max_length=40)
    given_at = models.DateTimeField(_("given at"), default=timeutil.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "given_at"])]


class RevealPurpose(models.TextChoices):
    CHECK_IDENTITY = "check_identity", _("checking identity at the entrance")
    AUTHORITY = "authority", _("a request of the authorities")
    CUSTOMER = "customer", _("the customer's own request")
    OTHER = "other", _("other")


class IdReveal(models.Model):
    """One decryption of a resident ID number shown to staff: who, for which merchant, whose, why, from where.

    Rows are written in the request that shows the number (an export writes one row per export with
    the number of IDs in it); nothing in the console updates or deletes them.
    """

    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="+")
    staff_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    booking = models.ForeignKey("booking.Booking", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    attendee = models.ForeignKey("booking.Attendee", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # What was shown: "attendee" (one attendee's ID), "answer" (an ID typed into the booking form) or
    # "export" (a spreadsheet with full IDs; ``count`` of them).
    what = models.CharField(_("what"), max_length=20)
    count = models.PositiveIntegerField(_("ID numbers"), default=1)
    purpose = models.CharField(_("purpose"), max_length=20, choices=RevealPurpose.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    at = models.DateTimeField(_("time"), default=timeutil.now)

    class Meta:
        verbose_name = _("ID number decryption")
        verbose_name_plural = _("ID number decryptions")
        ordering = ["-id"]
        indexes = [models.Index(fields=["merchant", "at"])]


class Anonymisation(models.Model):
    """A booking whose personal data was wiped (after the retention period, or with its account)."""

    booking = models.OneToOneField("booking.Booking", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20)  # "retention" | "account_deleted"
    at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("anonymised booking")
        verbose_name_plural = _("anonymised bookings")
