"""Data the insights keep of their own (statistics are computed from bookings in the database)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil


class RecommenderSnapshot(models.Model):
    """One trained recommender model (``insights/recommend.py``), stored whole as JSON.

    Serving reads the newest row once per process and keeps it in memory until a newer one
    appears, so a request costs one indexed lookup of the newest id, not a load of the model.
    Training writes a new row and drops old ones: a request never sees a half-written model.
    """

    trained_at = models.DateTimeField(_("trained at"), default=timeutil.now)
    bookings = models.PositiveIntegerField(_("bookings learned from"), default=0)
    users = models.PositiveIntegerField(_("customers learned from"), default=0)
    offerings = models.PositiveIntegerField(_("offerings"), default=0)
    data = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("recommender model")
        verbose_name_plural = _("recommender models")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.trained_at:%Y-%m-%d %H:%M}"
