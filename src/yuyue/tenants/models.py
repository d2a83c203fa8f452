"""Who sells: a merchant, its branches (门店), and its staff with their roles."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Merchant(models.Model):
    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    description = models.TextField(_("description"), blank=True)
    phone = models.CharField(_("service phone"), max_length=30, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Branch(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="branches")
    name = models.CharField(_("name"), max_length=100)
    city = models.CharField(_("city"), max_length=50, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        ordering = ["merchant_id", "id"]
        constraints = [models.UniqueConstraint(fields=["merchant", "name"], name="branch_unique_name")]

    def __str__(self) -> str:
        return f"{self.merchant.name} · {self.name}"


class Role(models.TextChoices):
    OWNER = "owner", _("owner")
    MANAGER = "manager", _("manager")
    FRONT_DESK = "staff", _("front desk")
    COACH = "coach", _("coach")
    DOCTOR = "doctor", _("doctor")
    DRIVER = "driver", _("driver")


class Staff(models.Model):
    """A Django user working for one merchant, optionally limited to some branches."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_roles")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="staff")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    branches = models.ManyToManyField(
        Branch, blank=True, related_name="staff", help_text=_("Empty means every branch.")
    )
    resource = models.ForeignKey(
        "catalog.Resource",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="staff",
        help_text=_("The coach, doctor or driver this account is."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        constraints = [models.UniqueConstraint(fields=["user", "merchant"], name="staff_one_role_per_merchant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant} ({self.get_role_display()})"

    @property
    def sees_personal_data(self) -> bool:
        """Owners and managers may see unmasked ID numbers and phones; others see them masked."""
        return self.role in {Role.OWNER, Role.MANAGER}
