"""The H5 chat page and the console's 客服 inbox and FAQ editor."""

from __future__ import annotations

import pytest
from assistant_world import sign_in_client
from factories import console_client, make_merchant

from yuyue.assistant.models import Conversation, ConversationStatus, FaqEntry, Message, Sender
from yuyue.booking.models import Booking

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_chat_page_opens_for_visitors_and_is_linked_from_every_page(client, studio):
    page = client.get("/chat/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="chat-log"' in text and "我约了哪些" in text  # a quick-question chip
    assert 'href="/chat/"' in client.get("/").content.decode()


def test_asking_on_the_page_shows_my_bookings_with_buttons(client, studio):
    sign_in_client(client, studio.customer_a)
    fragment = client.post("/chat/ask/", {"question": "我约了哪些"}, **HTMX).content.decode()
    assert studio.booking_a.code in fragment and studio.booking_b.code not in fragment
    fragment = client.post("/chat/ask/", {"question": "改时间"}, **HTMX).content.decode()
    assert 'data-action="reschedule"' in fragment and "改到" in fragment
    assert client.get("/chat/").content.decode().count('data-testid="chat-message"') == 4


def test_a_reschedule_button_confirms_first_then_moves(client, studio):
    sign_in_client(client, studio.customer_a)
    data = {"type": "reschedule", "booking": studio.booking_a.code, "slot_id": studio.evening.pk, "label": "改到"}
    confirm = client.post("/chat/action/", data, **HTMX)
    assert confirm.status_code == 200 and 'name="confirm"' in confirm.content.decode()
    assert Booking.objects.get(pk=studio.booking_a.pk).slot_id == studio.slot.pk  # nothing yet
    done = client.post("/chat/action/", {**data, "confirm": "1"}, **HTMX)
    assert done.status_code == 200 and "已改好" in done.content.decode()
    assert Booking.objects.get(pk=studio.booking_a.pk).slot_id == studio.evening.pk


def test_a_button_with_another_users_booking_is_refused(client, studio):
    sign_in_client(client, studio.customer_a)
    data = {"type": "cancel", "booking": studio.booking_b.code, "confirm": "1"}
    assert client.post("/chat/action/", data, **HTMX).status_code == 404
    assert Booking.objects.get(pk=studio.booking_b.pk).status == "confirmed"


def test_actions_need_a_signed_in_user(client, studio):
    response = client.post("/chat/action/", {"type": "cancel", "booking": studio.booking_a.code, "confirm": "1"})
    assert response.status_code == 302 and "/signin/" in response["Location"]


def test_an_empty_question_is_refused_on_the_page(client, studio):
    response = client.post("/chat/ask/", {"question": ""}, **HTMX)
    assert response.status_code == 422 and "请输入" in response.content.decode()


def test_hand_off_reaches_the_console_and_the_staff_reply_reaches_the_chat(client, studio):
    sign_in_client(client, studio.customer_a)
    client.post("/chat/ask/", {"question": "我要投诉，转人工"}, **HTMX)
    conversation = Conversation.objects.get(user=studio.customer_a)
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.merchant == studio.merchant  # the merchant of their booking

    desk = console_client(studio.merchant, "staff")
    inbox = desk.get("/console/service/").content.decode()
    assert f"/console/service/{conversation.pk}/" in inbox and "我要投诉，转人工" in inbox
    detail = desk.get(f"/console/service/{conversation.pk}/").content.decode()
    assert "我要投诉，转人工" in detail
    desk.post(f"/console/service/{conversation.pk}/reply/", {"text": "您好，我是前台小王"})
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.ANSWERED

    last = Message.objects.filter(conversation=conversation, sender=Sender.ASSISTANT).latest("id").pk
    fresh = client.get(f"/chat/messages/?after={last}", **HTMX).content.decode()
    assert "您好，我是前台小王" in fresh
    assert "您好，我是前台小王" in client.get("/chat/").content.decode()

    desk.post(f"/console/service/{conversation.pk}/close/")
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.CLOSED


def test_a_visitors_hand_off_keeps_its_conversation_in_the_session(client, studio):
    client.post("/chat/ask/", {"question": "转人工"}, **HTMX)
    conversation = Conversation.objects.get(user=None)
    assert client.session["assistant_conversation"] == conversation.pk
    assert "转人工" in client.get("/chat/").content.decode()


def test_another_merchants_staff_do_not_see_the_ticket(client, studio):
    sign_in_client(client, studio.customer_a)
    client.post("/chat/ask/", {"question": "转人工"}, **HTMX)
    conversation = Conversation.objects.get(user=studio.customer_a)
    other = console_client(make_merchant(), "owner")
    assert f"/console/service/{conversation.pk}/" not in other.get("/console/service/").content.decode()
    assert other.get(f"/console/service/{conversation.pk}/").status_code == 404
    assert other.post(f"/console/service/{conversation.pk}/reply/", {"text": "x"}).status_code == 404


def test_editing_the_faq_in_the_console_changes_the_answer(client, studio):
    owner = console_client(studio.merchant, "owner")
    listing = owner.get("/console/faq/").content.decode()
    assert "怎么开发票？" in listing  # a platform default
    default = FaqEntry.objects.get(merchant=None, intent="invoice", language="zh", kind="")
    form = owner.get(f"/console/faq/new/?from={default.pk}").content.decode()
    assert "抬头和税号" in form
    response = owner.post(
        "/console/faq/new/",
        {
            "intent": "invoice",
            "language": "zh",
            "kind": "",
            "question": "发票",
            "answer": "前台开票",
            "order": "0",
            "active": "1",
        },
    )
    assert response.status_code == 302
    body = client.post(
        "/api/v1/assistant/ask",
        {"question": "开发票", "merchant_id": studio.merchant.pk},
        content_type="application/json",
    ).json()
    assert body["answer"] == "前台开票"
    mine = FaqEntry.objects.get(merchant=studio.merchant)
    assert (
        owner.post(
            f"/console/faq/{mine.pk}/",
            {"intent": "nope", "language": "zh", "question": "q", "answer": "a", "order": "0"},
        ).status_code
        == 422
    )
    assert owner.get(f"/console/faq/{default.pk}/").status_code == 404  # defaults are not edited in place


def test_front_desk_cannot_edit_the_faq(studio):
    desk = console_client(studio.merchant, "staff")
    assert desk.get("/console/faq/").status_code == 403
    assert desk.get("/console/service/").status_code == 200
