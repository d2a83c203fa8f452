from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from yuyue.catalog.models import Resource
from yuyue.tenants.models import Branch, Merchant, Staff


def _merchant_being_edited(request: HttpRequest) -> str | None:
    """The merchant whose change page is open, for limiting an inline's choices to its own rows."""
    match = request.resolver_match
    return match.kwargs.get("object_id") if match else None


class StaffForm(forms.ModelForm):
    """Keeps a staff member's branches and resource within their own merchant."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        merchant_id = self.instance.merchant_id
        if merchant_id and "branches" in self.fields:
            self.fields["branches"].queryset = Branch.objects.filter(merchant_id=merchant_id)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        merchant = cleaned.get("merchant")
        merchant_id = merchant.pk if merchant else self.instance.merchant_id
        if merchant_id is None:
            return cleaned
        if any(branch.merchant_id != merchant_id for branch in cleaned.get("branches") or []):
            self.add_error("branches", _("Choose branches of this merchant."))
        resource = cleaned.get("resource")
        if resource is not None and resource.merchant_id != merchant_id:
            self.add_error("resource", _("Choose a resource of this merchant."))
        return cleaned


class BranchInline(admin.TabularInline):
    model = Branch
    extra = 0
    fields = ["name", "city", "address", "phone", "latitude", "longitude", "is_active"]
    show_change_link = True


class StaffInline(admin.TabularInline):
    model = Staff
    form = StaffForm
    extra = 0
    fields = ["user", "role", "branches", "resource", "is_active"]
    autocomplete_fields = ["user"]
    show_change_link = True

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "branches":
            kwargs["queryset"] = Branch.objects.filter(merchant_id=_merchant_being_edited(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "resource":
            kwargs["queryset"] = Resource.objects.filter(merchant_id=_merchant_being_edited(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "phone", "branch_count", "staff_count", "is_active", "created_at"]
    list_display_links = ["name"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "phone"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"
    fields = ["name", "slug", "description", "phone", "is_active", "created_at"]
    inlines = [BranchInline, StaffInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _branch_count=Count("branches", distinct=True),
                _staff_count=Count("staff", distinct=True),
            )
        )

    @admin.display(description=_("branches"), ordering="_branch_count")
    def branch_count(self, obj: Merchant) -> int:
        return obj._branch_count  # type: ignore[attr-defined]

    @admin.display(description=_("staff"), ordering="_staff_count")
    def staff_count(self, obj: Merchant) -> int:
        return obj._staff_count  # type: ignore[attr-defined]


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ["name", "merchant", "city", "address", "phone", "is_active"]
    list_filter = ["is_active", "city", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "city", "address", "phone", "merchant__name"]
    list_select_related = ["merchant"]
    autocomplete_fields = ["merchant"]


@admin.register(Staff)
class StaffAdmin(admin.ModelAdmin):
    form = StaffForm
    list_display = ["user", "merchant", "role", "resource", "is_active"]
    list_filter = ["role", "is_active", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email", "merchant__name"]
    list_select_related = ["user", "merchant", "resource"]
    autocomplete_fields = ["user", "merchant", "resource"]
    filter_horizontal = ["branches"]
