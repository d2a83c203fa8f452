"""Points and membership cards of the signed-in user (/api/v1/me/points, /api/v1/me/cards)."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from yuyue.accounts.models import EndUser
from yuyue.catalog.api import MerchantRef
from yuyue.core import timeutil
from yuyue.core.apischema import AUTH_ERRORS, DbId, Offset, error_responses, user_auth
from yuyue.memberships import selectors

router = Router(tags=["points and cards"], auth=user_auth)


class PointsBalanceOut(Schema):
    merchant: MerchantRef
    balance: int


class PointsEntryOut(Schema):
    id: int
    merchant: MerchantRef | None
    delta: int = Field(..., description="points added (positive) or taken (negative)")
    balance_after: int = Field(..., description="the balance at that merchant after this change")
    reason: str
    booking_code: str | None
    created_at: dt.datetime


class MyPointsOut(Schema):
    total: int = Field(..., description="the sum over all merchants; points are earned and spent per merchant")
    balances: list[PointsBalanceOut]
    entries: list[PointsEntryOut]
    count: int = Field(..., description="entries in all (of the chosen merchant)")


class PointsFilters(Schema):
    merchant: DbId | None = Field(None, description="only this merchant's entries")
    limit: int = Field(50, ge=1, le=100)
    offset: Offset = 0


class CardEntryOut(Schema):
    delta: int = Field(..., description="classes added (positive) or used (negative)")
    credits_after: int
    reason: str
    booking_code: str | None
    created_at: dt.datetime


class MembershipCardOut(Schema):
    id: int
    name: str
    merchant: MerchantRef
    credits_total: int
    credits_left: int
    expires_at: dt.datetime
    status: str = Field(..., description="active or void")
    usable: bool = Field(..., description="active, with classes left and not expired")
    entries: list[CardEntryOut]


class MyCardsOut(Schema):
    items: list[MembershipCardOut]


def _merchant(merchant: object) -> dict | None:
    return {"id": merchant.pk, "name": merchant.name} if merchant is not None else None  # type: ignore[attr-defined]


def _user(request: HttpRequest) -> EndUser:
    return request.auth  # type: ignore[attr-defined,no-any-return]


@router.get("/me/points", response={200: MyPointsOut, **error_responses(*AUTH_ERRORS)}, summary="My points")
def my_points(request: HttpRequest, filters: Query[PointsFilters]) -> dict:
    user = _user(request)
    zone = timeutil.local_zone()
    history = selectors.points_history(user)
    if filters.merchant is not None:
        history = history.filter(merchant_id=filters.merchant)
    page = history[filters.offset : filters.offset + filters.limit]
    return {
        "total": user.points_balance,
        "balances": [
            {"merchant": _merchant(b.merchant), "balance": b.balance} for b in selectors.points_balances(user)
        ],
        "entries": [
            {
                "id": e.pk,
                "merchant": _merchant(e.merchant),
                "delta": e.delta,
                "balance_after": e.balance_after,
                "reason": e.reason,
                "booking_code": e.booking.code if e.booking else None,
                "created_at": e.created_at.astimezone(zone),
            }
            for e in page
        ],
        "count": history.count(),
    }


@router.get(
    "/me/cards", response={200: MyCardsOut, **error_responses(*AUTH_ERRORS)}, summary="My membership cards (次卡)"
)
def my_cards(request: HttpRequest) -> dict:
    zone = timeutil.local_zone()
    items = []
    for card in selectors.cards(_user(request))[:100]:
        items.append(
            {
                "id": card.pk,
                "name": card.product.name,
                "merchant": _merchant(card.merchant),
                "credits_total": card.credits_total,
                "credits_left": card.credits_left,
                "expires_at": card.expires_at.astimezone(zone),
                "status": card.status,
                "usable": card.is_usable(),
                "entries": [
                    {
                        "delta": e.delta,
                        "credits_after": e.credits_after,
                        "reason": e.reason,
                        "booking_code": e.booking.code if e.booking else None,
                        "created_at": e.created_at.astimezone(zone),
                    }
                    for e in selectors.card_history(card, limit=50)
                ],
            }
        )
    return {"items": items}
