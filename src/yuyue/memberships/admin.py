"""Operators' view of membership cards; cards and their entries change only through the services."""

from __future__ import annotations

from django.contrib import admin

from yuyue.core.admin import ReadOnlyAdminMixin
from yuyue.memberships.models import Card, CardProduct, CreditEntry


@admin.register(CardProduct)
class CardProductAdmin(admin.ModelAdmin):
    list_display = ["name", "merchant", "credits", "valid_days", "price_fen", "offering_group", "is_active"]
    list_filter = ["is_active", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "offering_group"]
    filter_horizontal = ["offerings"]
    list_select_related = ["merchant"]


@admin.register(Card)
class CardAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Granted in the console (发卡); classes move only with a CreditEntry (memberships.services)."""

    list_display = ["pk", "product", "merchant", "user", "credits_left", "credits_total", "expires_at", "status"]
    list_filter = ["status", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["product__name", "user__nickname"]
    list_select_related = ["product", "merchant", "user"]


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "card", "delta", "credits_after", "reason", "booking"]
    search_fields = ["reason", "booking__code"]
    list_select_related = ["card", "card__product", "booking"]
    date_hierarchy = "created_at"
