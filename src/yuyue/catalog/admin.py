from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from yuyue.catalog.models import Offering, Resource
from yuyue.core.admin import PrettyJSONField, pretty_json, yuan


class ResourceForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        merchant, branch = cleaned.get("merchant"), cleaned.get("branch")
        if merchant is not None and branch is not None and branch.merchant_id != merchant.pk:
            self.add_error("branch", _("Choose a branch of this merchant."))
        return cleaned


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    form = ResourceForm
    list_display = ["name", "type", "title", "merchant", "branch", "seats", "plate", "rating", "is_active"]
    list_filter = ["type", "is_active", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "title", "plate", "merchant__name", "branch__name"]
    list_select_related = ["merchant", "branch__merchant"]
    autocomplete_fields = ["merchant", "branch"]
    fields = ["merchant", "branch", "type", "name", "title", "bio", "seats", "plate", "rating", "is_active"]
    readonly_fields = ["rating"]  # the average of reviews, not typed in


class OfferingForm(forms.ModelForm):
    """Form fields and policy overrides are JSON, checked by ``Offering.clean()`` field by field."""

    form_fields = PrettyJSONField(
        label=_("form fields"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 90, "style": "font-family: monospace"}),
        help_text=_(
            'A list of questions, e.g. [{"key": "pickup", "label": "上车地点", "type": "text", "required": true}]. '
            "Empty: the kind's default form."
        ),
    )
    policy_overrides = PrettyJSONField(
        label=_("policy"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 90, "style": "font-family: monospace"}),
        help_text=_(
            'Only what differs from the kind\'s defaults, e.g. {"cancel_deadline_hours": 24, "max_party_size": 4}.'
        ),
    )

    def clean_form_fields(self) -> list:
        value = self.cleaned_data.get("form_fields")
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            raise ValidationError(_("Enter a JSON list of questions."))
        return value

    def clean_policy_overrides(self) -> dict:
        value = self.cleaned_data.get("policy_overrides")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_("Enter a JSON object of policy settings."))
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind:
            # The model's own check, run once per JSON field so that its message lands beside that field.
            for name in ("form_fields", "policy_overrides"):
                if name not in cleaned:
                    continue
                try:
                    Offering(kind=kind, **{name: cleaned[name]}).clean()
                except ValidationError as exc:
                    self.add_error(name, exc)
        merchant = cleaned.get("merchant")
        if merchant is not None:
            branch = cleaned.get("branch")
            if branch is not None and branch.merchant_id != merchant.pk:
                self.add_error("branch", _("Choose a branch of this merchant."))
            if any(r.merchant_id != merchant.pk for r in cleaned.get("resources") or []):
                self.add_error("resources", _("Choose resources of this merchant."))
        return cleaned

    def _post_clean(self) -> None:
        # Offering.clean() merges the policy with the kind's defaults, so without a valid kind there is
        # nothing to check; the kind field already carries its error.
        if self.has_error("kind"):
            return
        super()._post_clean()


@admin.register(Offering)
class OfferingAdmin(admin.ModelAdmin):
    form = OfferingForm
    list_display = ["title", "kind", "merchant", "branch", "price", "limit_group", "rating", "is_active", "created_at"]
    list_filter = ["kind", "is_active", ("merchant", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["title", "description", "limit_group", "merchant__name", "branch__name"]
    list_select_related = ["merchant", "branch__merchant"]
    date_hierarchy = "created_at"
    autocomplete_fields = ["merchant", "branch", "resources"]
    readonly_fields = ["rating", "created_at", "effective_form", "effective_policy"]
    fieldsets = [
        (None, {"fields": ["merchant", "branch", "kind", "title", "description", "price_fen", "limit_group"]}),
        (_("Resources"), {"fields": ["resources"]}),
        (_("Booking form"), {"fields": ["form_fields", "effective_form"]}),
        (_("Policy"), {"fields": ["policy_overrides", "effective_policy"]}),
        (None, {"fields": ["rating", "is_active", "created_at"]}),
    ]

    @admin.display(description=_("price"), ordering="price_fen")
    def price(self, obj: Offering) -> str:
        return yuan(obj.price_fen)

    @admin.display(description=_("form in use"))
    def effective_form(self, obj: Offering) -> str:
        if not obj.pk:
            return "-"
        try:
            fields = [f.model_dump(exclude_defaults=True) for f in obj.form]
        except Exception:
            return _("invalid")
        return format_html('<pre style="margin: 0">{}</pre>', pretty_json(fields))

    @admin.display(description=_("policy in force (kind defaults with the overrides)"))
    def effective_policy(self, obj: Offering) -> str:
        if not obj.pk:
            return "-"
        try:
            policy = obj.policy.model_dump(mode="json")
        except Exception:
            return _("invalid")
        return format_html('<pre style="margin: 0">{}</pre>', pretty_json(policy))
