"""What customers and staff read about points and cards: balances per merchant, histories, cards."""

from __future__ import annotations

from django.db.models import QuerySet

from yuyue.accounts.models import EndUser, PointsBalance, PointsEntry
from yuyue.memberships.models import Card, CardProduct, CreditEntry
from yuyue.tenants.models import Merchant


def points_balances(user: EndUser) -> QuerySet[PointsBalance]:
    """The account's balance at every merchant where its points ever moved."""
    return PointsBalance.objects.filter(user=user).select_related("merchant").order_by("merchant__name", "merchant_id")


def points_history(user: EndUser, merchant: Merchant | None = None) -> QuerySet[PointsEntry]:
    """Points entries, newest first; one merchant's only when given."""
    entries = PointsEntry.objects.filter(user=user).select_related("merchant", "booking")
    return entries.filter(merchant=merchant) if merchant is not None else entries


def cards(user: EndUser, merchant: Merchant | None = None) -> QuerySet[Card]:
    """The account's cards, newest first (one merchant's only when given), with their product."""
    found = Card.objects.filter(user=user).select_related("product", "merchant")
    return found.filter(merchant=merchant) if merchant is not None else found


def card_history(card: Card, limit: int = 100) -> list[CreditEntry]:
    return list(CreditEntry.objects.filter(card=card).select_related("booking", "created_by")[:limit])


def products(merchant: Merchant) -> QuerySet[CardProduct]:
    return CardProduct.objects.filter(merchant=merchant).prefetch_related("offerings").order_by("-is_active", "id")
