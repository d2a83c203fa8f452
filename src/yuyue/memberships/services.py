"""Membership cards (次卡): card products, granting cards, and the classes bookings take and give back.

The booking engine calls ``card_for_booking`` before its transaction (a clear refusal, no lock),
then ``take_credits`` inside it, right after the seat: one conditional UPDATE
(``credits_left >= n``, active, not expired at the class's start), so parallel bookings can never
take more classes than the card has. ``return_credits`` gives back exactly what a booking took,
once. Every move is a ``CreditEntry`` with its reason, written in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from yuyue.accounts.models import EndUser, PointsEntry
from yuyue.accounts.services import change_points
from yuyue.booking.models import Booking
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.memberships.models import Card, CardProduct, CardStatus, CreditEntry
from yuyue.tenants.models import Merchant

MAX_CREDITS = 1000
MAX_VALID_DAYS = 3660


# --------------------------------------------------------------------------------------------
# Card products
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductSpec:
    name: str
    credits: int | None
    valid_days: int | None
    price_fen: int | None = 0
    offerings: Sequence[Offering] = field(default_factory=list)
    offering_group: str = ""
    is_active: bool = True


def save_product(*, merchant: Merchant, spec: ProductSpec, product: CardProduct | None = None) -> CardProduct:
    """Create or edit a card product of ``merchant``; every problem is reported next to its field."""
    errors: dict[str, Any] = {}
    name = (spec.name or "").strip()
    if not 1 <= len(name) <= 60:
        errors["name"] = _("Please enter a name (up to 60 characters).")
    if spec.credits is None or not 1 <= spec.credits <= MAX_CREDITS:
        errors["credits"] = _("Between 1 and %(max)d classes.") % {"max": MAX_CREDITS}
    if spec.valid_days is None or not 1 <= spec.valid_days <= MAX_VALID_DAYS:
        errors["valid_days"] = _("Between 1 and %(max)d days.") % {"max": MAX_VALID_DAYS}
    if spec.price_fen is None or spec.price_fen < 0:
        errors["price_fen"] = _("The price cannot be negative.")
    if any(o.merchant_id != merchant.pk for o in spec.offerings):
        errors["offerings"] = _("Please choose offerings of your own.")
    group = (spec.offering_group or "").strip()
    if len(group) > 50:
        errors["offering_group"] = _("At most %(n)d characters.") % {"n": 50}
    if product is not None and product.merchant_id != merchant.pk:
        raise DomainError("not_found")
    if errors:
        raise DomainError("invalid", fields=errors)
    with transaction.atomic():
        product = product or CardProduct(merchant=merchant)
        product.name = name
        product.credits = spec.credits or 0
        product.valid_days = spec.valid_days or 0
        product.price_fen = spec.price_fen or 0
        product.offering_group = group
        product.is_active = spec.is_active
        product.save()
        product.offerings.set(spec.offerings)
    return product


def products_covering(offering: Offering) -> QuerySet[CardProduct]:
    """The merchant's card products valid for ``offering``: chosen by name, by its limit group, or
    (a product that names neither) every offering of the merchant."""
    own = CardProduct.objects.filter(merchant_id=offering.merchant_id)
    by_group = Q(offering_group=offering.limit_group) if offering.limit_group else Q(pk__in=[])
    return own.filter(Q(offerings=offering) | by_group | (Q(offerings__isnull=True) & Q(offering_group=""))).distinct()


# --------------------------------------------------------------------------------------------
# Cards
# --------------------------------------------------------------------------------------------


def grant_card(
    *, product: CardProduct, user: EndUser, by: User | None, price_fen: int | None = None, at: dt.datetime | None = None
) -> Card:
    """Give a customer a card of ``product`` (发卡: sold at the desk), valid from now for its days."""
    at = at or timeutil.now()
    if not product.is_active:
        raise DomainError("not_allowed", _("This card is no longer on sale."))
    price = product.price_fen if price_fen is None else price_fen
    if price < 0:
        raise DomainError("invalid", fields={"price_fen": _("The price cannot be negative.")})
    with transaction.atomic():
        card = Card.objects.create(
            product=product,
            merchant_id=product.merchant_id,
            user=user,
            credits_total=product.credits,
            credits_left=product.credits,
            expires_at=at + dt.timedelta(days=product.valid_days),
            price_fen=price,
            granted_by=by,
            created_at=at,
        )
        CreditEntry.objects.create(
            card=card,
            delta=product.credits,
            credits_after=product.credits,
            reason=str(_("Card issued")),
            created_by=by,
            created_at=at,
        )
    return card


def usable_cards(*, user: EndUser, offering: Offering, starts_at: dt.datetime) -> list[Card]:
    """The user's cards that can pay for a class of ``offering`` starting at ``starts_at``,
    the one expiring first first (use up what runs out soonest)."""
    return list(
        Card.objects.filter(
            user=user,
            merchant_id=offering.merchant_id,
            status=CardStatus.ACTIVE,
            credits_left__gt=0,
            expires_at__gt=starts_at,
            product__in=products_covering(offering),
        )
        .select_related("product")
        .order_by("expires_at", "id")
    )


def card_for_booking(
    *, user: EndUser, offering: Offering, starts_at: dt.datetime, credits: int, card_id: int | None
) -> Card:
    """The card a booking will be paid with, or a refusal that says why (checked without locks;
    ``take_credits`` is what decides under concurrency)."""
    if card_id is None:
        cards = usable_cards(user=user, offering=offering, starts_at=starts_at)
        if not cards:
            raise DomainError(
                "payment_required",
                _("You have no membership card with classes left for this time."),
                fields={"card_id": _("No usable card.")},
            )
        return cards[0]
    card = Card.objects.select_related("product").filter(pk=card_id, user=user).first()
    if card is None:
        raise DomainError("invalid", fields={"card_id": _("This card does not exist.")})
    if card.merchant_id != offering.merchant_id or not products_covering(offering).filter(pk=card.product_id).exists():
        raise DomainError("invalid", fields={"card_id": _("This card is not valid for this class.")})
    if card.status != CardStatus.ACTIVE:
        raise DomainError("invalid", fields={"card_id": _("This card is no longer valid.")})
    if card.expires_at <= starts_at:
        raise DomainError("invalid", fields={"card_id": _("This card expires before the class.")})
    if card.credits_left < credits:
        raise DomainError(
            "payment_required", _("This card has no classes left."), fields={"card_id": _("No classes left.")}
        )
    return card


def take_credits(
    *, card: Card, booking: Booking, credits: int, starts_at: dt.datetime, now: dt.datetime, by: User | None = None
) -> CreditEntry:
    """Take ``credits`` classes off the card for ``booking``, in the caller's (booking) transaction.

    One conditional UPDATE: zero rows means the card ran out (or expired, or was voided) meanwhile.
    """
    taken = Card.objects.filter(
        pk=card.pk, status=CardStatus.ACTIVE, credits_left__gte=credits, expires_at__gt=starts_at
    ).update(credits_left=F("credits_left") - credits)
    if not taken:
        raise DomainError(
            "payment_required", _("This card has no classes left."), fields={"card_id": _("No classes left.")}
        )
    left = Card.objects.values_list("credits_left", flat=True).get(pk=card.pk)
    return CreditEntry.objects.create(
        card=card,
        delta=-credits,
        credits_after=left,
        booking=booking,
        reason=str(_("Used for a booking")),
        created_by=by,
        created_at=now,
    )


def return_credits(*, booking: Booking, reason: str, now: dt.datetime, by: User | None = None) -> int:
    """Give back what ``booking`` took from its card (once: what it took net of what came back).

    Called in the transaction that cancels the booking; returns the number of classes given back.
    """
    if booking.card_id is None:
        return 0
    # The card's row lock first: two returns for one booking would take turns and the second see the first.
    list(Card.objects.select_for_update().filter(pk=booking.card_id).values_list("pk"))
    taken = -(CreditEntry.objects.filter(booking=booking).aggregate(net=Sum("delta"))["net"] or 0)
    if taken <= 0:
        return 0
    Card.objects.filter(pk=booking.card_id).update(credits_left=F("credits_left") + taken)
    left = Card.objects.values_list("credits_left", flat=True).get(pk=booking.card_id)
    CreditEntry.objects.create(
        card_id=booking.card_id,
        delta=taken,
        credits_after=left,
        booking=booking,
        reason=str(_("Returned: %(reason)s") % {"reason": reason})[:200],
        created_by=by,
        created_at=now,
    )
    return taken


# --------------------------------------------------------------------------------------------
# Points adjusted by staff
# --------------------------------------------------------------------------------------------

MAX_POINTS_ADJUSTMENT = 100_000


def adjust_points(*, merchant: Merchant, user: EndUser, delta: int | None, reason: str, by: User | None) -> PointsEntry:
    """Staff add or take points by hand, with a reason (a deduction is capped at the balance)."""
    reason = (reason or "").strip()
    errors: dict[str, Any] = {}
    if delta is None or delta == 0 or abs(delta) > MAX_POINTS_ADJUSTMENT:
        errors["delta"] = _("A whole number other than 0, at most %(max)d either way.") % {"max": MAX_POINTS_ADJUSTMENT}
    if not reason:
        errors["reason"] = _("Please give a reason.")
    if errors or delta is None:
        raise DomainError("invalid", fields=errors)
    who = by.get_username() if by is not None else ""
    text = str(_("Adjusted by %(who)s: %(reason)s") % {"who": who, "reason": reason}) if who else reason
    return change_points(user=user, merchant=merchant, delta=delta, reason=text[:200])
