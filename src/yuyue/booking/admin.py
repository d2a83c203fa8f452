"""Bookings and the rows that keep them honest, for looking at.

Everything here changes only through the booking engine (``booking/services.py``): a booking's
status, slot, seats and claims move together with ``Slot.reserved``, the outbox and the ledger in
one transaction (invariants 1, 2 and 4). The admin therefore shows bookings, attendees, events,
claims, waitlist entries and idempotency keys without add, change or delete; only a review's
visibility can be switched here. Phones and ID numbers are masked everywhere (invariant 6).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from yuyue.booking.models import (
    Attendee,
    Booking,
    BookingEvent,
    Claim,
    IdempotencyKey,
    ResourceClaim,
    Review,
    WaitlistEntry,
)
from yuyue.core import personal
from yuyue.core.admin import BlindIndexSearchMixin, ReadOnlyAdminMixin, masked_answers, pretty_json, yuan


def _answers_block(answers: dict[str, Any], offering: Any) -> str:
    try:
        form = offering.form
    except Exception:  # an offering whose stored form no longer validates still shows its answers
        form = []
    return format_html('<pre style="margin: 0">{}</pre>', pretty_json(masked_answers(answers, form)))


class MaskedAttendeeMixin:
    @admin.display(description=_("resident ID number"))
    def id_masked(self, obj: Attendee) -> str:
        return obj.id_masked

    @admin.display(description=_("phone"))
    def phone_masked(self, obj: Attendee) -> str:
        return personal.mask_phone(obj.phone)


class AttendeeInline(MaskedAttendeeMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = Attendee
    extra = 0
    fields = ["name", "id_masked", "phone_masked", "is_minor", "guardian_name", "person"]
    readonly_fields = fields


class BookingEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = BookingEvent
    extra = 0
    fields = ["created_at", "action", "from_status", "to_status", "actor", "actor_user", "actor_staff", "reason"]
    readonly_fields = fields
    ordering = ["id"]


def _short_hashes(key: str) -> str:
    """A claim key with its blind-index hashes cut short: readable, and enough to tell them apart."""
    return _HASH.sub(lambda m: m.group(0)[:8] + "…", key)


_HASH = re.compile(r"[0-9a-f]{64}")


class ClaimInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Claim
    extra = 0
    fields = ["claim_key"]
    readonly_fields = fields

    @admin.display(description=_("key"))
    def claim_key(self, obj: Claim) -> str:
        return _short_hashes(obj.key)


@admin.register(Booking)
class BookingAdmin(BlindIndexSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    phone_hash_fields = ("user__phone_hash", "attendees__phone_hash")
    id_hash_fields = ("attendees__id_hash",)

    list_display = [
        "code",
        "status",
        "offering",
        "slot_start",
        "user",
        "party_size",
        "seats",
        "amount",
        "merchant",
        "created_at",
    ]
    list_filter = [
        "status",
        "offering__kind",
        ("merchant", admin.RelatedOnlyFieldListFilter),
        "created_at",
        "slot__start",
    ]
    search_fields = ["=code", "offering__title", "user__nickname", "attendees__name"]
    search_help_text = _("Booking code, offering, nickname, attendee name, full mobile number or resident ID number.")
    list_select_related = ["offering", "slot", "user", "merchant"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "slot", "booked_by"]
    fieldsets = [
        (None, {"fields": ["code", "status", "merchant", "offering", "slot", "user", "booked_by"]}),
        (_("Party and money"), {"fields": ["party_size", "seats", "amount", "reschedule_count", "masked_answers"]}),
        (
            _("Times"),
            {
                "fields": [
                    "created_at",
                    "updated_at",
                    "hold_expires_at",
                    "checked_in_at",
                    "cancelled_at",
                    "cancel_reason",
                ]
            },
        ),
    ]
    readonly_fields = ["amount", "masked_answers", "updated_at"]
    inlines = [AttendeeInline, BookingEventInline, ClaimInline]

    @admin.display(description=_("start"), ordering="slot__start")
    def slot_start(self, obj: Booking) -> Any:
        return obj.slot.start

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount(self, obj: Booking) -> str:
        return yuan(obj.amount_fen)

    @admin.display(description=_("answers"))
    def masked_answers(self, obj: Booking) -> str:
        return _answers_block(obj.answers, obj.offering)


@admin.register(Attendee)
class AttendeeAdmin(MaskedAttendeeMixin, BlindIndexSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    phone_hash_fields = ("phone_hash",)
    id_hash_fields = ("id_hash",)

    list_display = ["name", "booking", "id_masked", "phone_masked", "is_minor", "guardian_name", "booking_status"]
    list_filter = ["is_minor", "booking__status", "booking__offering__kind"]
    search_fields = ["name", "=booking__code"]
    search_help_text = _("Name, booking code, full mobile number or full resident ID number.")
    list_select_related = ["booking"]
    raw_id_fields = ["booking", "person"]
    fields = ["booking", "person", "name", "id_masked", "phone_masked", "is_minor", "guardian_name"]

    @admin.display(description=_("status"), ordering="booking__status")
    def booking_status(self, obj: Attendee) -> str:
        return obj.booking.get_status_display()


@admin.register(BookingEvent)
class BookingEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "booking", "action", "from_status", "to_status", "actor", "actor_user", "actor_staff"]
    list_filter = ["action", "to_status", "actor", "created_at"]
    search_fields = ["=booking__code", "reason"]
    list_select_related = ["booking", "actor_user", "actor_staff"]
    date_hierarchy = "created_at"
    raw_id_fields = ["booking", "actor_user", "actor_staff"]
    fields = [
        "booking",
        "action",
        "from_status",
        "to_status",
        "actor",
        "actor_user",
        "actor_staff",
        "reason",
        "event_data",
        "created_at",
    ]

    @admin.display(description=_("data"))
    def event_data(self, obj: BookingEvent) -> str:
        return format_html('<pre style="margin: 0">{}</pre>', pretty_json(obj.data))


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["claim_key", "booking", "booking_status"]
    list_filter = ["booking__status"]
    search_fields = ["key", "=booking__code"]
    list_select_related = ["booking"]
    raw_id_fields = ["booking"]
    fields = ["claim_key", "booking"]

    @admin.display(description=_("key"), ordering="key")
    def claim_key(self, obj: Claim) -> str:
        return _short_hashes(obj.key)

    @admin.display(description=_("status"), ordering="booking__status")
    def booking_status(self, obj: Claim) -> str:
        return obj.booking.get_status_display()


@admin.register(ResourceClaim)
class ResourceClaimAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["resource", "slot", "starts_at", "ends_at"]
    list_filter = ["resource__type", ("resource__merchant", admin.RelatedOnlyFieldListFilter), "starts_at"]
    search_fields = ["resource__name", "slot__offering__title"]
    list_select_related = ["resource", "slot__offering"]
    date_hierarchy = "starts_at"
    raw_id_fields = ["resource", "slot"]
    fields = ["resource", "slot", "starts_at", "ends_at"]


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "slot", "user", "party_size", "status", "booking", "note"]
    list_filter = ["status", "slot__offering__kind", "created_at"]
    search_fields = ["user__nickname", "slot__offering__title", "=booking__code", "note"]
    list_select_related = ["slot__offering", "user", "booking"]
    date_hierarchy = "created_at"
    raw_id_fields = ["slot", "user", "booking"]
    fields = ["slot", "user", "person_ids", "party_size", "masked_answers", "status", "booking", "note", "created_at"]

    @admin.display(description=_("answers"))
    def masked_answers(self, obj: WaitlistEntry) -> str:
        return _answers_block(obj.answers, obj.slot.offering)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "user", "booking", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["=key", "=booking__code"]
    list_select_related = ["user", "booking"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "booking"]
    fields = ["user", "key", "request_hash", "booking", "created_at"]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    """Reviews are written by customers; the admin moderates them (hide or show), nothing more."""

    list_display = ["created_at", "offering", "resource", "rating", "short_text", "user", "booking", "is_hidden"]
    list_filter = ["is_hidden", "rating", "offering__kind", "created_at"]
    search_fields = ["text", "=booking__code", "offering__title", "resource__name", "user__nickname"]
    list_select_related = ["offering", "resource", "user", "booking"]
    date_hierarchy = "created_at"
    raw_id_fields = ["booking", "user"]
    fields = ["booking", "user", "offering", "resource", "rating", "text", "is_hidden", "created_at"]
    readonly_fields = ["booking", "user", "offering", "resource", "rating", "text", "created_at"]
    actions = ["hide", "show"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("text"))
    def short_text(self, obj: Review) -> str:
        return obj.text if len(obj.text) <= 40 else obj.text[:40] + "…"

    @admin.action(description=_("Hide the selected reviews"))
    def hide(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(is_hidden=True)
        self.message_user(
            request,
            ngettext("%(count)d review hidden.", "%(count)d reviews hidden.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Show the selected reviews"))
    def show(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(is_hidden=False)
        self.message_user(
            request,
            ngettext("%(count)d review shown.", "%(count)d reviews shown.", count) % {"count": count},
            messages.SUCCESS,
        )
