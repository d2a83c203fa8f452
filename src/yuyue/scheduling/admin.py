"""Schedules, closed days and slots.

``Slot.reserved`` belongs to the booking engine (a conditional UPDATE, invariant 1): it is shown,
never edited, and saving a slot here writes every column except it, so an admin save can never
put back a stale count. A slot that has bookings keeps its time, offering and resources.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.dates import WEEKDAYS, WEEKDAYS_ABBR
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from yuyue.core.admin import yuan
from yuyue.scheduling import services
from yuyue.scheduling.models import ClosedDate, Schedule, Slot, SlotStatus


class ScheduleForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        label=_("weekdays"),
        choices=sorted(WEEKDAYS.items()),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Ignored when the official working-day calendar is followed, but pick at least one."),
    )

    def clean_weekdays(self) -> list[int]:
        return sorted(set(self.cleaned_data["weekdays"]))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        offering = cleaned.get("offering")
        if offering is not None and any(r.merchant_id != offering.merchant_id for r in cleaned.get("resources") or []):
            self.add_error("resources", _("Choose resources of the offering's merchant."))
        return cleaned


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = [
        "__str__",
        "offering",
        "days",
        "start_time",
        "end_time",
        "slot_minutes",
        "capacity",
        "valid_from",
        "valid_until",
        "is_active",
    ]
    list_filter = [
        "is_active",
        "workdays_only",
        "offering__kind",
        ("offering__merchant", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["name", "offering__title", "offering__merchant__name"]
    list_select_related = ["offering"]
    date_hierarchy = "valid_from"
    autocomplete_fields = ["offering", "resources"]
    fieldsets = [
        (None, {"fields": ["offering", "name", "resources"]}),
        (_("When"), {"fields": ["weekdays", "workdays_only", "start_time", "end_time", "slot_minutes"]}),
        (_("Capacity and price"), {"fields": ["capacity", "price_fen"]}),
        (_("Validity"), {"fields": ["valid_from", "valid_until", "is_active"]}),
    ]

    @admin.display(description=_("weekdays"))
    def days(self, obj: Schedule) -> str:
        if obj.workdays_only:
            return str(_("working days"))
        return " ".join(str(WEEKDAYS_ABBR[d]) for d in obj.weekdays if d in WEEKDAYS_ABBR)


class ClosedDateForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        merchant = cleaned.get("merchant")
        if merchant is not None:
            branch, offering = cleaned.get("branch"), cleaned.get("offering")
            if branch is not None and branch.merchant_id != merchant.pk:
                self.add_error("branch", _("Choose a branch of this merchant."))
            if offering is not None and offering.merchant_id != merchant.pk:
                self.add_error("offering", _("Choose an offering of this merchant."))
        return cleaned


@admin.register(ClosedDate)
class ClosedDateAdmin(admin.ModelAdmin):
    form = ClosedDateForm
    list_display = ["date", "merchant", "branch", "offering", "reason"]
    list_filter = [("merchant", admin.RelatedOnlyFieldListFilter), "date"]
    search_fields = ["reason", "merchant__name", "branch__name", "offering__title"]
    list_select_related = ["merchant", "branch__merchant", "offering"]
    date_hierarchy = "date"
    autocomplete_fields = ["merchant", "branch", "offering"]


class SlotForm(forms.ModelForm):
    def clean_capacity(self) -> int:
        capacity = self.cleaned_data["capacity"]
        if self.instance.pk:
            # Lock the row for the rest of the save (the admin wraps it in a transaction), so no
            # booking can take a seat between this check and the UPDATE.
            reserved = Slot.objects.select_for_update().values_list("reserved", flat=True).get(pk=self.instance.pk)
            if capacity < reserved:
                raise forms.ValidationError(
                    _("%(reserved)d seats are already booked; the capacity cannot be lower."),
                    params={"reserved": reserved},
                )
        return capacity


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin):
    form = SlotForm
    list_display = [
        "start",
        "end",
        "offering",
        "capacity",
        "reserved",
        "remaining",
        "status",
        "is_holiday",
        "price",
    ]
    list_display_links = ["start"]
    list_filter = [
        "status",
        "is_holiday",
        "offering__kind",
        ("offering__merchant", admin.RelatedOnlyFieldListFilter),
        "start",
    ]
    search_fields = ["offering__title", "offering__merchant__name", "schedule__name"]
    list_select_related = ["offering"]
    date_hierarchy = "start"
    autocomplete_fields = ["offering", "schedule", "resources"]
    fields = [
        "offering",
        "schedule",
        "start",
        "end",
        "capacity",
        "reserved",
        "price_fen",
        "resources",
        "status",
        "is_holiday",
    ]
    actions = ["close_slots", "open_slots"]

    def get_readonly_fields(self, request: HttpRequest, obj: Slot | None = None) -> list[str]:
        fields = ["reserved"]
        if obj is not None and (obj.reserved or obj.bookings.exists() or obj.resource_claims.exists()):
            # Bookings and resource claims were made for this time with these resources.
            fields += ["offering", "schedule", "start", "end", "resources"]
        return fields

    def save_model(self, request: HttpRequest, obj: Slot, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        columns = {f.name for f in Slot._meta.concrete_fields if not f.primary_key}
        others = [name for name in form.changed_data if name in columns and name not in {"reserved", "capacity"}]
        if others:
            obj.save(update_fields=others)
        if "capacity" in form.changed_data:
            # The rule "never below what is booked" has one home: the scheduling service.
            services.change_capacity(slot_id=obj.pk, capacity=obj.capacity)

    @admin.display(description=_("remaining"))
    def remaining(self, obj: Slot) -> int:
        return obj.remaining

    @admin.display(description=_("price"), ordering="price_fen")
    def price(self, obj: Slot) -> str:
        return yuan(obj.effective_price_fen)

    @admin.action(description=_("Close the selected slots to new bookings"))
    def close_slots(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(status=SlotStatus.CLOSED)
        self.message_user(
            request,
            ngettext("%(count)d slot closed.", "%(count)d slots closed.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Open the selected slots for booking"))
    def open_slots(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(status=SlotStatus.OPEN)
        self.message_user(
            request,
            ngettext("%(count)d slot opened.", "%(count)d slots opened.", count) % {"count": count},
            messages.SUCCESS,
        )
