"""A merchant's CRM webhook endpoints and the log of every delivery attempt."""

from __future__ import annotations

import base64
import os

from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


class WebhookEndpoint(models.Model):
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=100, blank=True)
    # Event types this endpoint wants (see EVENT_TYPES); empty: every type.
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    secret = models.CharField(_("signing secret"), max_length=100, default=new_secret)
    is_active = models.BooleanField(_("active"), default=True)
    consecutive_failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    # Set when deliveries kept failing and the endpoint was switched off; shown to the merchant.
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("why it was disabled"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timeutil.now)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookAttempt(models.Model):
    """One HTTP request to an endpoint: the outbox row it delivered, and what came back."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    outbox_item = models.ForeignKey("notify.OutboxItem", on_delete=models.CASCADE, related_name="+")
    webhook_id = models.CharField(max_length=40)
    event_type = models.CharField(max_length=40)
    at = models.DateTimeField(default=timeutil.now)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["endpoint", "-id"])]
