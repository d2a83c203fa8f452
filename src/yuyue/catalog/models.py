"""What is sold: offerings (a class, a ticket, a registration, a car) and the resources behind them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from pydantic import ValidationError as PydanticError

from yuyue.catalog.kinds import KIND_CHOICES, KINDS
from yuyue.catalog.policy import FormField, Policy


class ResourceType(models.TextChoices):
    COACH = "coach", _("coach")
    DOCTOR = "doctor", _("doctor")
    VEHICLE = "vehicle", _("vehicle")
    DRIVER = "driver", _("driver")
    ROOM = "room", _("room")


class Resource(models.Model):
    """Someone or something that can be in only one place at a time."""

    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="resources")
    branch = models.ForeignKey(
        "tenants.Branch", on_delete=models.SET_NULL, null=True, blank=True, related_name="resources"
    )
    type = models.CharField(_("type"), max_length=10, choices=ResourceType.choices)
    name = models.CharField(_("name"), max_length=60)
    title = models.CharField(_("title"), max_length=60, blank=True, help_text=_("e.g. 主任医师, 高级教练"))
    bio = models.TextField(_("introduction"), blank=True)
    seats = models.PositiveIntegerField(_("seats"), null=True, blank=True, help_text=_("vehicles and rooms"))
    plate = models.CharField(_("plate number"), max_length=20, blank=True)
    rating = models.DecimalField(_("rating"), max_digits=3, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("resource")
        verbose_name_plural = _("resources")
        ordering = ["merchant_id", "type", "id"]

    def __str__(self) -> str:
        return f"{self.name}（{self.get_type_display()}）"


class Offering(models.Model):
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.CASCADE, related_name="offerings")
    branch = models.ForeignKey(
        "tenants.Branch", on_delete=models.PROTECT, null=True, blank=True, related_name="offerings"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=KIND_CHOICES)
    title = models.CharField(_("title"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    price_fen = models.PositiveIntegerField(_("price (fen)"), default=0)
    limit_group = models.CharField(
        _("limit group"),
        max_length=50,
        blank=True,
        help_text=_("Offerings sharing a group share per-person limits, e.g. a clinic department."),
    )
    form_fields = models.JSONField(_("form fields"), default=list, blank=True)
    policy_overrides = models.JSONField(_("policy"), default=dict, blank=True)
    resources = models.ManyToManyField(Resource, blank=True, related_name="offerings")
    rating = models.DecimalField(_("rating"), max_digits=3, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("offering")
        verbose_name_plural = _("offerings")
        ordering = ["merchant_id", "id"]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError({"kind": _("Unknown kind.")})
        try:
            self.__dict__.pop("policy", None)
            self.__dict__.pop("form", None)
            self.policy, self.form  # noqa: B018 (validates both)
        except PydanticError as exc:
            raise ValidationError(str(exc)) from exc

    @cached_property
    def policy(self) -> Policy:
        """The kind's defaults with this offering's overrides."""
        return KINDS[self.kind].policy.merged(self.policy_overrides)

    @cached_property
    def form(self) -> list[FormField]:
        """The booking form: this offering's own fields, else the kind's."""
        if self.form_fields:
            return [FormField.model_validate(f) for f in self.form_fields]
        return list(KINDS[self.kind].form)

    @property
    def requires_real_name(self) -> bool:
        return self.policy.real_name
