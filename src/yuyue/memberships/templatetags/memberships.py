"""Template tags for points and cards: the customer page's panel in the console."""

from __future__ import annotations

from typing import Any

from django import template

from yuyue.accounts.models import EndUser, PointsBalance
from yuyue.memberships import selectors

register = template.Library()


@register.inclusion_tag("memberships/console/customer_panel.html", takes_context=True)
def customer_memberships(context: dict[str, Any], customer: EndUser) -> dict[str, Any]:
    """The customer's points and cards at the desk's merchant, with 发卡 and adjust-points forms."""
    request = context["request"]
    desk = request.desk
    balance = PointsBalance.objects.filter(user=customer, merchant=desk.merchant).values_list("balance", flat=True)
    cards = list(selectors.cards(customer, desk.merchant)[:50])
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "customer": customer,
        "points": balance.first() or 0,
        "points_history": list(selectors.points_history(customer, desk.merchant)[:50]),
        "cards": [(card, selectors.card_history(card, limit=20)) for card in cards],
        "products": list(selectors.products(desk.merchant).filter(is_active=True)),
        "can_change": desk.can("memberships.change"),
    }


@register.simple_tag
def points_at(customer: EndUser, merchant: Any) -> int:
    """The customer's points balance at one merchant."""
    found = PointsBalance.objects.filter(user=customer, merchant=merchant).values_list("balance", flat=True).first()
    return found or 0
