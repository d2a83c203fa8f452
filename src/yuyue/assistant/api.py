"""Assistant endpoints: ask a question (anonymous or signed in), carry out an offered action, read
the conversation (staff replies to a hand-off arrive there)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema

from yuyue.accounts.models import EndUser
from yuyue.assistant import services
from yuyue.booking.api import BookingOut, booking_out
from yuyue.booking.models import Booking
from yuyue.core import ratelimit, timeutil
from yuyue.core.apischema import AUTH_ERRORS, DbId, Text, client_ip, error_responses, user_auth
from yuyue.core.errors import DomainError

router = Router(tags=["assistant"])


class AskIn(Schema):
    question: Text = Field(..., max_length=services.MAX_QUESTION_CHARS)
    merchant_id: DbId | None = None


class AskOut(Schema):
    intent: str = Field(..., description="one of the 16 intents, e.g. reschedule, my_bookings, human_agent")
    answer: str
    confidence: float = Field(..., description="calibrated probability of the intent, 0..1")
    actions: list[dict[str, Any]] = Field(
        ...,
        description='e.g. {"type": "reschedule", "booking", "slot_id", "label"}, {"type": "cancel", "booking", '
        '"label"}, {"type": "resend_notification", "notification", "label"}, {"type": "link", "url", "label"}',
    )
    handoff: bool = Field(..., description="passed to the merchant's staff, who reply in the conversation")
    language: str
    conversation_id: int | None


class ActionIn(Schema):
    type: Literal["reschedule", "cancel", "resend_notification"]
    booking: Text | None = Field(None, max_length=32)
    slot_id: DbId | None = None
    notification: DbId | None = None


class ActionOut(Schema):
    message: str
    booking: BookingOut | None


class MessageOut(Schema):
    id: int
    sender: str = Field(..., description="customer, assistant or staff")
    text: str
    intent: str
    actions: list[dict[str, Any]]
    created_at: dt.datetime


class ConversationOut(Schema):
    id: int | None
    status: str
    messages: list[MessageOut]


def _optional_user(request: HttpRequest) -> EndUser | None:
    """Anonymous questions are welcome; a bearer token that is sent must be valid."""
    if "Authorization" not in request.headers:
        return None
    user = user_auth(request)
    if user is None:
        raise DomainError("unauthorized")
    return user  # type: ignore[no-any-return]


@router.post(
    "/assistant/ask",
    response={200: AskOut, **error_responses(*AUTH_ERRORS, "rate_limited")},
    summary="Ask the customer-service assistant",
    description="Anonymous: answers from the FAQ. With a bearer token: also from the user's own bookings, "
    "notifications, points and waitlist, with actions to carry out through /assistant/actions.",
)
def ask(request: HttpRequest, payload: AskIn) -> dict:
    user = _optional_user(request)
    subject = f"user:{user.pk}" if user else f"ip:{client_ip(request)}"
    ratelimit.hit("assistant_ask", subject, settings.RATE_ASSISTANT_ASK)
    reply = services.ask(question=payload.question, user=user, merchant=services.merchant_for(payload.merchant_id))
    return {
        "intent": reply.intent,
        "answer": reply.answer,
        "confidence": reply.confidence,
        "actions": reply.actions,
        "handoff": reply.handoff,
        "language": reply.language,
        "conversation_id": reply.conversation_id,
    }


@router.post(
    "/assistant/actions",
    auth=user_auth,
    response={200: ActionOut, **error_responses(*AUTH_ERRORS, "not_found", "slot_full", "too_late", "rate_limited")},
    summary="Carry out an action an answer offered (only on the signed-in user's own bookings)",
)
def act(request: HttpRequest, payload: ActionIn) -> dict:
    user: EndUser = request.auth  # type: ignore[attr-defined]
    ratelimit.hit("assistant_ask", f"user:{user.pk}", settings.RATE_ASSISTANT_ASK)
    result = services.perform(user=user, action=payload.dict())
    booking = None
    if result.booking_code:
        found = Booking.objects.select_related("offering", "offering__merchant", "offering__branch", "slot").get(
            code=result.booking_code, user=user
        )
        booking = booking_out(found)
    return {"message": result.message, "booking": booking}


@router.get(
    "/assistant/conversation",
    auth=user_auth,
    response={200: ConversationOut, **error_responses(*AUTH_ERRORS)},
    summary="My current conversation, with staff replies to a hand-off",
)
def conversation(request: HttpRequest) -> dict:
    found = services.current_conversation(request.auth)  # type: ignore[attr-defined]
    if found is None:
        return {"id": None, "status": "", "messages": []}
    zone = timeutil.local_zone()
    return {
        "id": found.pk,
        "status": found.status,
        "messages": [
            {
                "id": m.pk,
                "sender": m.sender,
                "text": m.text,
                "intent": m.intent,
                "actions": m.actions,
                "created_at": m.created_at.astimezone(zone),
            }
            for m in services.messages_after(found)
        ],
    }
