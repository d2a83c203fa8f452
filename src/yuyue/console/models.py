"""What the console itself keeps: the audit log, staff notes on customers, sign-in throttles, TOTP."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil
from yuyue.core.crypto import EncryptedTextField


class AuditEntry(models.Model):
    """One staff action that changed data: who, for which merchant, what, on which object, from where."""

    merchant = models.ForeignKey(
        "tenants.Merchant", on_delete=models.CASCADE, null=True, blank=True, related_name="audit_entries"
    )
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(_("action"), max_length=60)
    object_type = models.CharField(_("object type"), max_length=60, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    at = models.DateTimeField(_("time"), default=timeutil.now)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["merchant", "at"]),
            models.Index(fields=["merchant", "staff_user", "at"]),
            models.Index(fields=["merchant", "action", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"


class CustomerNote(models.Model):
    """A staff member's note about a customer, visible to that merchant's staff only."""

    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="customer_notes")
    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE, related_name="staff_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    text = models.TextField(_("note"))
    created_at = models.DateTimeField(_("created at"), default=timeutil.now)

    class Meta:
        verbose_name = _("customer note")
        verbose_name_plural = _("customer notes")
        ordering = ["-id"]
        indexes = [models.Index(fields=["merchant", "user"])]


class SignInThrottle(models.Model):
    """Failed sign-ins counted per key ("user:<name>" or "ip:<address>") in the database.

    Every attempt takes one unit with a conditional UPDATE before the password is checked and
    gives it back only on success, so concurrent wrong guesses (from any number of processes)
    can never exceed the limit.
    """

    key = models.CharField(max_length=190, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField(default=timeutil.now)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in throttle")
        verbose_name_plural = _("sign-in throttles")
        indexes = [models.Index(fields=["window_start"])]  # for pruning old rows


class TotpDevice(models.Model):
    """A staff user's authenticator app (TOTP). Required at sign-in once confirmed."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_totp")
    secret = EncryptedTextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last time step accepted: a code is good once, so an overheard code cannot be replayed.
    last_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("authenticator")
        verbose_name_plural = _("authenticators")
