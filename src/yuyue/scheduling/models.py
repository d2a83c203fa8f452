"""When things happen: weekly rules (Schedule) materialised into bookable Slots."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Schedule(models.Model):
    """A weekly rule: on these weekdays, from start to end (cut into slots), this capacity."""

    offering = models.ForeignKey("catalog.Offering", on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(_("name"), max_length=100, blank=True)
    weekdays = models.JSONField(_("weekdays"), default=list, help_text=_("0 = Monday … 6 = Sunday"))
    workdays_only = models.BooleanField(
        _("follow the official working-day calendar"),
        default=False,
        help_text=_("Closed on statutory holidays, open on make-up working days (调休), ignoring weekdays."),
    )
    start_time = models.TimeField(_("start"))
    end_time = models.TimeField(_("end"))
    slot_minutes = models.PositiveIntegerField(
        _("slot length (minutes)"), null=True, blank=True, help_text=_("Empty: one slot from start to end.")
    )
    capacity = models.PositiveIntegerField(_("capacity"))
    price_fen = models.PositiveIntegerField(_("price (fen)"), null=True, blank=True)
    resources = models.ManyToManyField("catalog.Resource", blank=True, related_name="schedules")
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        constraints = [
            models.CheckConstraint(condition=Q(start_time__lt=F("end_time")), name="schedule_start_before_end")
        ]

    def __str__(self) -> str:
        return self.name or f"{self.offering} {self.start_time:%H:%M}-{self.end_time:%H:%M}"


class ClosedDate(models.Model):
    """A day without slots: for a whole merchant, one branch, or one offering."""

    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="closed_dates")
    branch = models.ForeignKey("tenants.Branch", on_delete=models.CASCADE, null=True, blank=True)
    offering = models.ForeignKey("catalog.Offering", on_delete=models.CASCADE, null=True, blank=True)
    date = models.DateField(_("date"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("closed date")
        verbose_name_plural = _("closed dates")
        indexes = [models.Index(fields=["merchant", "date"])]


class SlotStatus(models.TextChoices):
    OPEN = "open", _("open")
    CLOSED = "closed", _("closed")


class Slot(models.Model):
    """A bookable time with a capacity. ``reserved`` only ever changes by conditional UPDATE."""

    offering = models.ForeignKey("catalog.Offering", on_delete=models.CASCADE, related_name="slots")
    schedule = models.ForeignKey(Schedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="slots")
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    capacity = models.PositiveIntegerField(_("capacity"))
    reserved = models.PositiveIntegerField(_("reserved"), default=0)
    price_fen = models.PositiveIntegerField(_("price (fen)"), null=True, blank=True)
    resources = models.ManyToManyField("catalog.Resource", blank=True, related_name="slots")
    status = models.CharField(_("status"), max_length=10, choices=SlotStatus.choices, default=SlotStatus.OPEN)
    is_holiday = models.BooleanField(_("statutory holiday"), default=False)

    class Meta:
        verbose_name = _("slot")
        verbose_name_plural = _("slots")
        ordering = ["start", "id"]
        indexes = [models.Index(fields=["offering", "start"])]
        constraints = [
            # Invariant 1, written into the table itself: whatever the code does, never oversold.
            models.CheckConstraint(condition=Q(reserved__lte=F("capacity")), name="slot_not_oversold"),
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="slot_start_before_end"),
            models.UniqueConstraint(fields=["schedule", "start"], name="slot_once_per_schedule_start"),
        ]

    def __str__(self) -> str:
        from yuyue.core.timeutil import local_zone

        return f"{self.offering} {self.start.astimezone(local_zone()):%Y-%m-%d %H:%M}"

    @property
    def remaining(self) -> int:
        return max(self.capacity - self.reserved, 0)

    @property
    def effective_price_fen(self) -> int:
        return self.price_fen if self.price_fen is not None else self.offering.price_fen
