"""Membership cards (次卡): a booking paid with a class instead of money, and when the class comes back."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_merchant, make_offering, make_slot, make_user

from yuyue.accounts.models import PointsEntry
from yuyue.accounts.services import change_points
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, PaidBy, Status
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.memberships.models import Card, CreditEntry
from yuyue.memberships.services import ProductSpec, grant_card, save_product

pytestmark = pytest.mark.django_db


def refused(code: str):
    return pytest.raises(DomainError, match=f"^{code}:")


def course(merchant=None, **fields):
    """A priced yoga class (paid online by default: without a card the booking awaits payment)."""
    fields.setdefault("price_fen", 8000)
    return make_offering(kind="course", merchant=merchant or make_merchant(), **fields)


def card_for(user, offering, *, credits=10, valid_days=180, offerings=None, group="", at=None):
    product = save_product(
        merchant=offering.merchant,
        spec=ProductSpec(
            name=f"{credits}次卡",
            credits=credits,
            valid_days=valid_days,
            price_fen=100000,
            offerings=[offering] if offerings is None else offerings,
            offering_group=group,
        ),
    )
    return grant_card(product=product, user=user, by=None, at=at)


def left(card: Card) -> int:
    card.refresh_from_db()
    return card.credits_left


def test_a_granted_card_has_its_classes_and_an_entry_that_says_so():
    user, yoga = make_user(), course()
    card = card_for(user, yoga, credits=10, valid_days=30)
    assert (card.credits_total, card.credits_left) == (10, 10)
    assert card.expires_at - card.created_at == dt.timedelta(days=30)
    entry = CreditEntry.objects.get(card=card)
    assert (entry.delta, entry.credits_after, entry.booking) == (10, 10, None)


def test_booking_with_the_card_uses_one_class_instead_of_paying():
    user, yoga = make_user(), course()
    card = card_for(user, yoga)
    slot = make_slot(offering=yoga)
    booking = engine.book(user=user, slot_id=slot.pk, pay_with="credit", card_id=card.pk)
    assert (booking.status, booking.paid_by, booking.card_id) == (Status.CONFIRMED, PaidBy.CREDIT, card.pk)
    assert (booking.amount_fen, booking.paid_fen, booking.hold_expires_at) == (0, 0, None)
    assert left(card) == 9
    used = CreditEntry.objects.get(card=card, booking=booking)
    assert (used.delta, used.credits_after) == (-1, 9)
    slot.refresh_from_db()
    assert slot.reserved == 1


def test_without_a_card_id_the_card_expiring_first_is_used():
    user, yoga = make_user(), course()
    later = card_for(user, yoga, valid_days=300)
    sooner = card_for(user, yoga, valid_days=60)
    booking = engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit")
    assert booking.card_id == sooner.pk
    assert (left(sooner), left(later)) == (9, 10)


def test_paying_with_money_leaves_the_card_alone():
    user, yoga = make_user(), course()
    card = card_for(user, yoga)
    booking = engine.book(user=user, slot_id=make_slot(offering=yoga).pk)
    assert (booking.status, booking.paid_by, booking.amount_fen) == (Status.PENDING_PAYMENT, PaidBy.MONEY, 8000)
    assert left(card) == 10


def test_a_card_covers_only_its_offerings_or_its_group():
    user, yoga = make_user(), course(limit_group="瑜伽")
    pilates = course(merchant=yoga.merchant, limit_group="普拉提")
    only_yoga = card_for(user, yoga)
    with refused("invalid") as refusal:
        engine.book(user=user, slot_id=make_slot(offering=pilates).pk, pay_with="credit", card_id=only_yoga.pk)
    assert "card_id" in refusal.value.fields
    group_card = card_for(user, yoga, offerings=[], group="普拉提")
    booking = engine.book(user=user, slot_id=make_slot(offering=pilates).pk, pay_with="credit")
    assert booking.card_id == group_card.pk
    everything = card_for(make_user(), yoga, offerings=[])  # neither offerings nor group: every offering
    assert engine.book(user=everything.user, slot_id=make_slot(offering=pilates).pk, pay_with="credit").card_id == (
        everything.pk
    )


def test_another_merchants_card_or_someone_elses_card_is_refused():
    user, yoga = make_user(), course()
    elsewhere = card_for(user, course())
    with refused("invalid"):
        engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=elsewhere.pk)
    theirs = card_for(make_user(), yoga)
    with refused("invalid"):
        engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=theirs.pk)
    assert left(theirs) == 10 and not Booking.objects.exists()


def test_an_expired_card_or_one_that_expires_before_the_class_is_refused():
    user, yoga = make_user(), course()
    old = card_for(user, yoga, valid_days=30, at=timeutil.now() - dt.timedelta(days=31))
    with refused("payment_required"):  # no usable card at all
        engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit")
    with refused("invalid") as refusal:
        engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=old.pk)
    assert set(refusal.value.fields) == {"card_id"}
    short = card_for(user, yoga, valid_days=1)  # runs out tomorrow morning, before a class in three days
    in_three_days = timeutil.now() + dt.timedelta(days=3)
    with refused("invalid"):
        engine.book(
            user=user, slot_id=make_slot(offering=yoga, start=in_three_days).pk, card_id=short.pk, pay_with="credit"
        )
    assert left(short) == 10 and left(old) == 10


def test_a_card_without_classes_left_is_refused_and_nothing_is_booked():
    user, yoga = make_user(), course()
    card = card_for(user, yoga, credits=1)
    engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=card.pk)
    slot = make_slot(offering=yoga, start=timeutil.now() + dt.timedelta(days=2))
    with refused("payment_required"):
        engine.book(user=user, slot_id=slot.pk, pay_with="credit", card_id=card.pk)
    slot.refresh_from_db()
    assert (slot.reserved, left(card)) == (0, 0)
    assert Booking.objects.filter(slot=slot).count() == 0


def test_a_free_class_needs_no_card():
    user, yoga = make_user(), course(price_fen=0)
    card = card_for(user, yoga)
    with refused("invalid") as refusal:
        engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=card.pk)
    assert "pay_with" in refusal.value.fields
    with refused("invalid"):
        engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="coupon")
    assert left(card) == 10


def test_a_full_class_takes_no_class_from_the_card():
    user, yoga = make_user(), course()
    card = card_for(user, yoga)
    slot = make_slot(offering=yoga, capacity=1)
    engine.book(user=make_user(), slot_id=slot.pk)
    with refused("slot_full"):
        engine.book(user=user, slot_id=slot.pk, pay_with="credit", card_id=card.pk)
    assert left(card) == 10 and not CreditEntry.objects.filter(card=card, delta__lt=0).exists()


def test_the_same_idempotency_key_takes_one_class_once():
    user, yoga = make_user(), course()
    card = card_for(user, yoga)
    slot = make_slot(offering=yoga)
    first = engine.book(user=user, slot_id=slot.pk, pay_with="credit", card_id=card.pk, idempotency_key="k-1")
    again = engine.book(user=user, slot_id=slot.pk, pay_with="credit", card_id=card.pk, idempotency_key="k-1")
    assert again.pk == first.pk and again.replayed
    assert left(card) == 9
    with refused("invalid"):  # the same key paying with money is another request
        engine.book(user=user, slot_id=slot.pk, idempotency_key="k-1")


# --- Cancelling ------------------------------------------------------------------------------------


def card_booking(**card_options):
    user, yoga = make_user(), course()
    card = card_for(user, yoga, **card_options)
    booking = engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=card.pk)
    return user, card, booking


def test_cancelling_in_time_gives_the_class_back():
    user, card, booking = card_booking()
    early = booking.slot.start - dt.timedelta(hours=7)  # course: free cancellation until 6 h before
    preview = engine.cancel_preview(booking=booking, now=early)
    assert preview.credit_back and preview.refund_fen == 0 and "次卡" in preview.reason
    engine.cancel(booking=booking, by=user, now=early)
    assert left(card) == 10
    back = CreditEntry.objects.filter(card=card).first()
    assert (back.delta, back.credits_after, back.booking_id) == (1, 10, booking.pk)


def test_a_late_cancel_keeps_the_class_used_and_still_costs_points():
    user, card, booking = card_booking()
    change_points(user=user, merchant=booking.merchant, delta=30, reason="完成课程")
    late = booking.slot.start - dt.timedelta(hours=2)
    preview = engine.cancel_preview(booking=booking, now=late)
    assert not preview.credit_back and preview.points_penalty == 10
    engine.cancel(booking=booking, by=user, now=late)
    assert left(card) == 9
    assert PointsEntry.objects.filter(user=user, booking=booking).get().delta == -10


def test_staff_cancelling_late_gives_the_class_back(django_user_model):
    user, card, booking = card_booking()
    desk = django_user_model.objects.create_user("desk")
    engine.cancel(booking=booking, by=desk, reason="教练请假", now=booking.slot.start - dt.timedelta(hours=1))
    assert left(card) == 10
    assert not PointsEntry.objects.filter(user=user).exists()


def test_closing_the_slot_gives_every_class_back():
    _user, card, booking = card_booking()
    closure = engine.cancel_for_closure(slot_id=booking.slot_id, by=None, reason="台风停课")
    assert [b.pk for b in closure.cancelled] == [booking.pk]
    assert left(card) == 10
    assert "台风停课" in CreditEntry.objects.filter(card=card).first().reason


def test_a_rejected_booking_gets_its_class_back(django_user_model):
    user, yoga = make_user(), course(policy_overrides={"requires_approval": True})
    card = card_for(user, yoga)
    booking = engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=card.pk)
    assert booking.status == Status.PENDING_APPROVAL and left(card) == 9
    engine.reject(booking=booking, staff=django_user_model.objects.create_user("owner"), reason="满员")
    assert left(card) == 10


def test_an_approved_card_booking_is_confirmed_without_payment(django_user_model):
    user, yoga = make_user(), course(policy_overrides={"requires_approval": True})
    card = card_for(user, yoga)
    booking = engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=card.pk)
    booking = engine.approve(booking=booking, staff=django_user_model.objects.create_user("owner"))
    assert booking.status == Status.CONFIRMED and left(card) == 9


def test_a_class_comes_back_once_even_if_returned_twice():
    from yuyue.memberships.services import return_credits

    user, card, booking = card_booking()
    engine.cancel(booking=booking, by=user, now=booking.slot.start - dt.timedelta(hours=7))
    assert return_credits(booking=booking, reason="again", now=timeutil.now()) == 0
    assert left(card) == 10


def test_moving_a_card_booking_past_the_cards_expiry_is_refused():
    user, yoga = make_user(), course()
    card = card_for(user, yoga, valid_days=3)
    booking = engine.book(user=user, slot_id=make_slot(offering=yoga).pk, pay_with="credit", card_id=card.pk)
    after_expiry = make_slot(offering=yoga, start=timeutil.now() + dt.timedelta(days=5))
    with refused("invalid"):
        engine.reschedule(booking=booking, slot_id=after_expiry.pk, by=user)
    within = make_slot(offering=yoga, start=timeutil.now() + dt.timedelta(days=2))
    assert engine.reschedule(booking=booking, slot_id=within.pk, by=user).slot_id == within.pk
    assert left(card) == 9


def test_a_card_product_is_checked_field_by_field():
    merchant = make_merchant()
    with refused("invalid") as refusal:
        save_product(
            merchant=merchant,
            spec=ProductSpec(
                name="", credits=0, valid_days=0, price_fen=-1, offerings=[course()], offering_group="x" * 51
            ),
        )
    assert set(refusal.value.fields) == {"name", "credits", "valid_days", "price_fen", "offerings", "offering_group"}
