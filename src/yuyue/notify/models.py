"""Notification data: the in-app inbox, people's channel choices, WeChat consents, merchants'
message templates and reminder times. The outbox itself lives in ``outbox.py``."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil
from yuyue.notify.outbox import OutboxItem, OutboxStatus

__all__ = [
    "Channel",
    "InboxMessage",
    "MessageTemplate",
    "NotificationPreference",
    "OfferingReminders",
    "OutboxItem",
    "OutboxStatus",
    "SubscribeConsent",
]


class Channel(models.TextChoices):
    INBOX = "inbox", _("in-app inbox")
    SMS = "sms", _("text message")
    EMAIL = "email", _("email")
    WECHAT = "wechat", _("WeChat message")


class InboxMessage(models.Model):
    """A message in the H5 app's inbox. ``key`` makes a redelivered event write it once."""

    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE, related_name="inbox")
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.SET_NULL, null=True, blank=True)
    booking = models.ForeignKey("booking.Booking", on_delete=models.SET_NULL, null=True, blank=True)
    event = models.CharField(max_length=40)
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("message"))
    key = models.CharField(max_length=190, unique=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("inbox message")
        verbose_name_plural = _("inbox messages")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"]), models.Index(fields=["user", "-created_at"])]


class NotificationPreference(models.Model):
    """Which channels a person wants. Without a row: inbox, SMS and WeChat (where consented)."""

    user = models.OneToOneField("accounts.EndUser", on_delete=models.CASCADE, related_name="notification_preference")
    inbox = models.BooleanField(_("in-app inbox"), default=True)
    sms = models.BooleanField(_("text message"), default=True)
    email = models.BooleanField(_("email"), default=False)
    wechat = models.BooleanField(_("WeChat message"), default=True)
    email_address = models.EmailField(_("email address"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")


class SubscribeConsent(models.Model):
    """One tap on "allow" in the mini-program (wx.requestSubscribeMessage) allows one message.

    A send consumes one unused row for the user and template, in a conditional UPDATE.
    """

    user = models.ForeignKey("accounts.EndUser", on_delete=models.CASCADE, related_name="subscribe_consents")
    template_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timeutil.now)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.CharField(max_length=40, blank=True, help_text="dedupe id of the message that used it")

    class Meta:
        verbose_name = _("subscription consent")
        verbose_name_plural = _("subscription consents")
        indexes = [models.Index(fields=["user", "template_id", "used_at"])]


class MessageTemplate(models.Model):
    """A merchant's wording of one event (Chinese defaults live in ``templates.py``)."""

    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="message_templates")
    event = models.CharField(_("event"), max_length=40)
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("message"))
    sms_template_code = models.CharField(_("SMS template code"), max_length=40, blank=True)
    wechat_template_id = models.CharField(_("WeChat template id"), max_length=64, blank=True)
    # WeChat template field → placeholder, e.g. {"thing1": "offering", "time2": "time"}; empty: the default.
    wechat_fields = models.JSONField(_("WeChat fields"), default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        constraints = [models.UniqueConstraint(fields=["merchant", "event"], name="message_template_once")]


class OfferingReminders(models.Model):
    """Reminder lead times of an offering in hours before the start (default 24 and 2)."""

    offering = models.OneToOneField("catalog.Offering", on_delete=models.CASCADE, related_name="reminders")
    hours = models.JSONField(_("hours before the start"), default=list, blank=True)

    class Meta:
        verbose_name = _("reminder times")
        verbose_name_plural = _("reminder times")
