"""Answers from the FAQ and from the signed-in user's own data, the actions they offer, and that a
user never sees or touches another user's bookings or notifications."""

from __future__ import annotations

import datetime as dt

import pytest

from yuyue.assistant import services
from yuyue.assistant.models import FaqEntry
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Status, WaitlistEntry
from yuyue.core.errors import DomainError
from yuyue.notify import outbox
from yuyue.notify.events import EVENT_KIND

pytestmark = pytest.mark.django_db


def test_anonymous_questions_get_the_faq_answer(studio):
    reply = services.ask(question="怎么预约", user=None)
    assert reply.intent == "how_to_book"
    assert "预约" in reply.answer and not reply.actions and not reply.handoff
    assert reply.conversation_id is None  # nothing stored for a plain anonymous question


def test_english_questions_are_answered_in_english(studio):
    reply = services.ask(question="How do I book?", user=None)
    assert reply.language == "en"
    assert "Choose a kind" in reply.answer


def test_personal_intents_ask_anonymous_visitors_to_sign_in(studio):
    reply = services.ask(question="我约了哪些", user=None)
    assert reply.intent == "my_bookings"
    assert "登录" in reply.answer
    assert studio.booking_a.code not in reply.answer


def test_my_bookings_lists_only_my_own(studio):
    reply = services.ask(question="我约了哪些", user=studio.customer_a)
    assert studio.booking_a.code in reply.answer and "流瑜伽" in reply.answer
    assert studio.booking_b.code not in reply.answer
    assert [a["booking"] for a in reply.actions] == [studio.booking_a.code]


def test_reschedule_offers_free_slots_the_engine_accepts(studio):
    reply = services.ask(question="改时间", user=studio.customer_a)
    assert reply.intent == "reschedule"
    offered = {a["slot_id"] for a in reply.actions}
    assert offered == {studio.evening.pk, studio.next_day.pk}  # not the full one, not the current one
    assert all(a["type"] == "reschedule" and a["booking"] == studio.booking_a.code for a in reply.actions)
    assert all(a["label"].startswith("改到") for a in reply.actions)


def test_a_reschedule_action_moves_the_booking(studio):
    action = next(a for a in services.ask(question="改时间", user=studio.customer_a).actions)
    result = services.perform(user=studio.customer_a, action=action)
    studio.booking_a.refresh_from_db()
    assert studio.booking_a.slot_id == action["slot_id"]
    assert result.booking_code == studio.booking_a.code


def test_actions_on_another_users_booking_are_not_found(studio):
    for action in (
        {"type": "reschedule", "booking": studio.booking_b.code, "slot_id": studio.evening.pk},
        {"type": "cancel", "booking": studio.booking_b.code},
    ):
        with pytest.raises(DomainError) as refused:
            services.perform(user=studio.customer_a, action=action)
        assert refused.value.code == "not_found"
    studio.booking_b.refresh_from_db()
    assert studio.booking_b.slot_id == studio.slot.pk and studio.booking_b.status == Status.CONFIRMED


def test_cancel_shows_the_preview_and_the_action_cancels(studio):
    reply = services.ask(question="帮我取消预约", user=studio.customer_a)
    assert reply.intent == "cancel"
    assert "退款" in reply.answer
    (action,) = reply.actions
    assert action == {
        "type": "cancel",
        "booking": studio.booking_a.code,
        "refund_fen": 0,
        "points_penalty": 0,
        "label": "取消这个预约",
    }
    services.perform(user=studio.customer_a, action=action)
    assert Booking.objects.get(pk=studio.booking_a.pk).status == Status.CANCELLED
    assert Booking.objects.get(pk=studio.booking_b.pk).status == Status.CONFIRMED


def test_notification_missing_reports_delivery_and_resends_my_own_only(studio):
    outbox.deliver_all_due()  # the confirmations fan out to the inbox and a text message
    reply = services.ask(question="没收到通知", user=studio.customer_a)
    assert reply.intent == "notification_missing"
    assert studio.booking_a.code in reply.answer and "短信" in reply.answer
    (action,) = reply.actions
    event = outbox.OutboxItem.objects.get(pk=action["notification"])
    assert event.kind == EVENT_KIND and event.payload["user_id"] == studio.customer_a.pk
    sms = outbox.OutboxItem.objects.get(key=f"{event.dedupe_id}:sms")
    assert sms.status == "delivered"

    services.perform(user=studio.customer_a, action=action)
    sms.refresh_from_db()
    assert sms.status == "pending" and sms.attempts == 0  # queued to go out again
    assert outbox.deliver_all_due() >= 1

    b_event = outbox.OutboxItem.objects.filter(kind=EVENT_KIND, payload__user_id=studio.customer_b.pk).first()
    with pytest.raises(DomainError) as refused:
        services.perform(user=studio.customer_a, action={"type": "resend_notification", "notification": b_event.pk})
    assert refused.value.code == "not_found"


def test_voucher_links_my_booking(studio):
    reply = services.ask(question="二维码在哪", user=studio.customer_a)
    assert reply.intent == "voucher"
    (action,) = reply.actions
    assert action["booking"] == studio.booking_a.code
    assert action["voucher_url"].endswith(f"/bookings/{studio.booking_a.code}/voucher.svg")


def test_waitlist_shows_my_position(studio):
    engine.join_waitlist(user=studio.customer_a, slot_id=studio.full.pk)
    reply = services.ask(question="我候补排第几", user=studio.customer_a)
    assert reply.intent == "waitlist"
    assert "第 1 位" in reply.answer
    assert "第" not in services.ask(question="我候补排第几", user=studio.customer_b).answer.split("\n")[0]
    assert WaitlistEntry.objects.filter(user=studio.customer_b).count() == 0


def test_points_show_my_balance(studio):
    from yuyue.accounts import services as accounts

    accounts.change_points(user=studio.customer_a, delta=30, reason="新会员", merchant=studio.merchant)
    reply = services.ask(question="我有多少积分", user=studio.customer_a)
    assert reply.intent == "points"
    assert "30" in reply.answer and "一念瑜伽" in reply.answer
    assert "30" not in services.ask(question="我有多少积分", user=studio.customer_b).answer


def test_a_merchants_own_faq_answer_replaces_the_default(studio):
    question = "怎么开发票"
    assert "抬头和税号" in services.ask(question=question, user=None, merchant=studio.merchant).answer
    services.save_faq(
        merchant=studio.merchant,
        entry=None,
        intent="invoice",
        language="zh",
        kind="",
        question="发票",
        answer="发票请到前台领取，电话 {phone}。",
        active=True,
    )
    answer = services.ask(question=question, user=None, merchant=studio.merchant).answer
    assert answer == "发票请到前台领取，电话 021-55550000。"
    # Other merchants keep the default.
    assert "抬头和税号" in services.ask(question=question, user=None).answer


def test_kind_specific_defaults(studio):
    from factories import make_merchant, make_offering

    clinic = make_merchant(name="安和门诊")
    make_offering(kind="clinic", merchant=clinic)
    assert "挂号须实名" in services.ask(question="孩子没有身份证怎么挂号", user=None, merchant=clinic).answer
    assert FaqEntry.objects.filter(merchant=None, kind="clinic").exists()


def test_reschedule_too_late_says_so_and_offers_nothing(studio):
    from factories import make_slot, make_user

    from yuyue.core import timeutil

    soon = make_slot(offering=studio.yoga, start=timeutil.now() + dt.timedelta(hours=3))  # deadline: 6 h before
    late_comer = make_user()
    engine.book(user=late_comer, slot_id=soon.pk)
    reply = services.ask(question="改时间", user=late_comer)
    assert "太晚" in reply.answer
    assert [a["type"] for a in reply.actions] == ["link"]


def test_the_shipped_defaults_answer_when_the_faq_rows_are_gone(studio):
    FaqEntry.objects.filter(merchant=None).delete()
    assert "抬头和税号" in services.ask(question="怎么开发票", user=None, merchant=studio.merchant).answer
    assert "tax number" in services.ask(question="how do I get an invoice", user=None).answer


def test_an_unsure_answer_hands_off_to_staff(studio):
    reply = services.ask(question="qwzx", user=studio.customer_a)
    assert reply.handoff and reply.confidence < services.HANDOFF_BELOW
    assert "passed your question to our staff" in reply.answer  # "qwzx" is Latin: answered in English


def test_naming_a_booking_picks_it_instead_of_the_next_one(studio):
    from assistant_world import at
    from factories import make_offering, make_slot

    pilates = make_offering(kind="course", merchant=studio.merchant, title="普拉提（静安店）")
    first = make_slot(offering=pilates, start=at(4, 9))
    make_slot(offering=pilates, start=at(4, 18))
    later = engine.book(user=studio.customer_a, slot_id=first.pk)
    by_title = services.ask(question="普拉提那个改时间", user=studio.customer_a)
    assert {a["booking"] for a in by_title.actions} == {later.code}
    by_code = services.ask(question=f"帮我取消预约 {later.code.lower()}", user=studio.customer_a)
    assert by_code.intent == "cancel"
    assert by_code.actions[0]["booking"] == later.code
    assert services.ask(question="改时间", user=studio.customer_a).actions[0]["booking"] == studio.booking_a.code


def test_the_same_time_on_another_slot_is_not_offered(studio):
    from factories import make_slot

    twin = make_slot(offering=studio.yoga, start=studio.slot.start, capacity=5)  # e.g. a second room
    offered = {a["slot_id"] for a in services.ask(question="改时间", user=studio.customer_a).actions}
    assert twin.pk not in offered and offered


def test_a_quiet_automatic_chat_ends_but_a_hand_off_stays_open(studio):
    from yuyue.core import timeutil

    now = timeutil.now()
    first = services.ask(question="怎么预约", user=studio.customer_a, now=now)
    same = services.ask(question="几点开门", user=studio.customer_a, now=now + dt.timedelta(hours=1))
    later = services.ask(question="怎么预约", user=studio.customer_a, now=now + dt.timedelta(hours=8))
    assert first.conversation_id == same.conversation_id != later.conversation_id
    ticket = services.ask(question="转人工", user=studio.customer_a, now=now + dt.timedelta(hours=9))
    again = services.ask(question="还在吗", user=studio.customer_a, now=now + dt.timedelta(days=2))
    assert ticket.conversation_id == later.conversation_id == again.conversation_id  # waiting for staff
