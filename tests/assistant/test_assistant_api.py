"""POST /api/v1/assistant/ask, /assistant/actions and GET /assistant/conversation: the shape
API.md promises, anonymous and signed-in answers, clean errors, isolation between users."""

from __future__ import annotations

import pytest
from assistant_world import api_act, api_ask

from yuyue.assistant.models import Conversation, ConversationStatus
from yuyue.booking.models import Booking

pytestmark = pytest.mark.django_db


def test_the_answer_has_the_documented_shape(client, studio):
    response = api_ask(client, "怎么预约")
    assert response.status_code == 200
    body = response.json()
    assert {"intent", "answer", "confidence", "actions", "handoff"} <= set(body)
    assert body["intent"] == "how_to_book" and body["handoff"] is False
    assert 0 < body["confidence"] <= 1 and body["actions"] == []


def test_a_token_adds_the_users_own_bookings(client, studio):
    anonymous = api_ask(client, "我约了哪些").json()
    mine = api_ask(client, "我约了哪些", studio.token_a).json()
    assert studio.booking_a.code not in anonymous["answer"]
    assert studio.booking_a.code in mine["answer"] and studio.booking_b.code not in mine["answer"]


def test_a_reschedule_action_through_the_api(client, studio):
    actions = api_ask(client, "我想改时间", studio.token_a).json()["actions"]
    target = next(a for a in actions if a["slot_id"] == studio.next_day.pk)
    response = api_act(client, studio.token_a, type="reschedule", booking=target["booking"], slot_id=target["slot_id"])
    assert response.status_code == 200, response.json()
    assert response.json()["booking"]["slot"]["id"] == studio.next_day.pk
    # The same move, crafted with B's booking code, by A: B's booking stays where it is.
    crafted = api_act(
        client, studio.token_a, type="reschedule", booking=studio.booking_b.code, slot_id=studio.evening.pk
    )
    assert crafted.status_code == 404 and crafted.json()["error"]["code"] == "not_found"
    assert Booking.objects.get(pk=studio.booking_b.pk).slot_id == studio.slot.pk


def test_a_cancel_action_of_another_users_booking_is_not_found(client, studio):
    response = api_act(client, studio.token_a, type="cancel", booking=studio.booking_b.code)
    assert response.status_code == 404
    assert Booking.objects.get(pk=studio.booking_b.pk).status == "confirmed"


def test_actions_need_a_token(client, studio):
    response = client.post(
        "/api/v1/assistant/actions",
        {"type": "cancel", "booking": studio.booking_a.code},
        content_type="application/json",
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "好" * 501}, "question"),
        ({"question": "a\x00b"}, "question"),
        ({}, "question"),
        ({"question": "hi", "merchant_id": 0}, "merchant_id"),
        ({"question": "hi", "merchant_id": 999999}, "merchant_id"),
    ],
)
def test_bad_input_is_a_clean_invalid(client, studio, body, field):
    response = client.post("/api/v1/assistant/ask", body, content_type="application/json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]


def test_a_bad_token_is_unauthorized_not_anonymous(client, studio):
    response = api_ask(client, "我约了哪些", "not-a-token")
    assert response.status_code == 401


def test_bad_actions_are_invalid(client, studio):
    assert api_act(client, studio.token_a, type="explode").status_code == 422
    assert api_act(client, studio.token_a, type="reschedule", booking=studio.booking_a.code).status_code == 422


def test_asking_is_rate_limited(client, studio, settings):
    settings.RATE_ASSISTANT_ASK = "3/60"
    codes = [api_ask(client, "你好", studio.token_a).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_asking_for_a_person_hands_off_and_staff_replies_arrive(client, studio):
    from django.contrib.auth.models import User

    from yuyue.assistant import services

    body = api_ask(client, "转人工", studio.token_a, merchant_id=studio.merchant.pk).json()
    assert body["intent"] == "human_agent" and body["handoff"] is True
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert conversation.status == ConversationStatus.OPEN and conversation.merchant == studio.merchant
    services.staff_reply(conversation=conversation, staff_user=User.objects.create(username="desk"), text="您好，请讲")
    mine = client.get("/api/v1/assistant/conversation", HTTP_AUTHORIZATION=f"Bearer {studio.token_a}").json()
    assert mine["messages"][-1] == {**mine["messages"][-1], "sender": "staff", "text": "您好，请讲"}
    theirs = client.get("/api/v1/assistant/conversation", HTTP_AUTHORIZATION=f"Bearer {studio.token_b}").json()
    assert theirs["messages"] == []


def test_english_answers_and_a_merchant_context(client, studio):
    body = api_ask(client, "what is the cancellation policy", merchant_id=studio.merchant.pk).json()
    assert body["intent"] == "cancel_policy" and body["language"] == "en"
    assert "deadline" in body["answer"]
