"""The H5 chat page: ask, see answers with their action buttons, confirm an action, see staff replies.

Thin like the other H5 pages: ``assistant.services`` answers and acts. A visitor who is not signed
in keeps their conversation in the session (so a staff reply to a hand-off still reaches them).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from yuyue.accounts.models import EndUser
from yuyue.assistant import services
from yuyue.assistant.models import Conversation, ConversationStatus, Message, Sender
from yuyue.core import ratelimit
from yuyue.core.apischema import client_ip
from yuyue.core.errors import DomainError
from yuyue.h5.auth import current_user, is_htmx, user_required

SESSION_CONVERSATION = "assistant_conversation"
QUICK_QUESTIONS = (
    ("我约了哪些", "我约了哪些"),
    ("改时间", "我想改时间"),
    ("没收到通知", "没收到通知"),
    ("取消预约", "取消预约"),
    ("积分", "我有多少积分"),
    ("转人工", "转人工"),
)


def _conversation(request: HttpRequest, user: EndUser | None) -> Conversation | None:
    if user is not None:
        return services.current_conversation(user)
    conversation_id = request.session.get(SESSION_CONVERSATION)
    if conversation_id is None:
        return None
    return (
        Conversation.objects.filter(pk=conversation_id, user__isnull=True)
        .exclude(status=ConversationStatus.CLOSED)
        .first()
    )


def _chat_context(request: HttpRequest, user: EndUser | None) -> dict[str, Any]:
    conversation = _conversation(request, user)
    messages = services.messages_after(conversation) if conversation else []
    return {
        "me": user,
        "conversation": conversation,
        "chat_messages": messages,
        "last_id": messages[-1].pk if messages else 0,
        "quick_questions": QUICK_QUESTIONS,
    }


@require_GET
def chat(request: HttpRequest) -> HttpResponse:
    return render(request, "assistant/chat.html", _chat_context(request, current_user(request)))


@require_POST
def ask(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    conversation = _conversation(request, user)
    subject = f"user:{user.pk}" if user else f"ip:{client_ip(request)}"
    try:
        ratelimit.hit("assistant_ask", subject, settings.RATE_ASSISTANT_ASK)
        reply = services.ask(question=request.POST.get("question", ""), user=user, conversation=conversation)
    except DomainError as exc:
        error = str(next(iter(exc.fields.values()), exc.message))
        if not is_htmx(request):
            return HttpResponseRedirect(reverse("assistant:chat"))
        status = 429 if exc.code == "rate_limited" else 422
        return render(request, "assistant/partials/error.html", {"error": error}, status=status)
    if user is None and reply.conversation_id is not None:
        request.session[SESSION_CONVERSATION] = reply.conversation_id
    if not is_htmx(request):
        return HttpResponseRedirect(reverse("assistant:chat"))
    conversation = Conversation.objects.get(pk=reply.conversation_id) if reply.conversation_id else None
    if conversation is not None:
        messages = list(conversation.messages.order_by("-id")[:2])[::-1]
    else:  # an anonymous question that needed no ticket: shown, not stored
        messages = [
            Message(sender=Sender.CUSTOMER, text=request.POST.get("question", "").strip()),
            Message(sender=Sender.ASSISTANT, text=reply.answer, intent=reply.intent, actions=reply.actions),
        ]
    context = {
        "chat_messages": messages,
        "conversation": conversation,
        "last_id": messages[-1].pk or 0,
        "poll": conversation is not None,
    }
    return render(request, "assistant/partials/messages.html", context)


@require_GET
def poll(request: HttpRequest) -> HttpResponse:
    """New messages since ``after`` (staff replies to a hand-off), and the poller with the new mark."""
    user = current_user(request)
    conversation = _conversation(request, user)
    after = request.GET.get("after", "")
    after_id = int(after) if after.isdigit() and len(after) < 19 else 0
    messages = services.messages_after(conversation, after_id) if conversation else []
    context = {
        "chat_messages": messages,
        "conversation": conversation,
        "last_id": messages[-1].pk if messages else after_id,
        "poll": conversation is not None,
    }
    return render(request, "assistant/partials/messages.html", context)


@user_required
@require_POST
def act(request: HttpRequest, user: EndUser) -> HttpResponse:
    """An action button: reschedule and cancel ask for a confirmation first, then run."""
    action = {
        "type": request.POST.get("type", ""),
        "booking": request.POST.get("booking", ""),
        "slot_id": request.POST.get("slot_id", ""),
        "notification": request.POST.get("notification", ""),
        "label": request.POST.get("label", "")[:100],
    }
    if action["type"] in {"reschedule", "cancel"} and request.POST.get("confirm") != "1":
        return _action_answer(request, "assistant/partials/confirm.html", {"action": action})
    try:
        result = services.perform(user=user, action=action)
    except DomainError as exc:
        error = str(next(iter(exc.fields.values()), exc.message))
        status = 404 if exc.code == "not_found" else 409 if exc.status == 409 else 422
        return _action_answer(request, "assistant/partials/error.html", {"error": error}, status=status)
    booking_url = reverse("h5:booking", args=[result.booking_code]) if result.booking_code else ""
    context = {"message": result.message, "booking_url": booking_url}
    return _action_answer(request, "assistant/partials/done.html", context)


def _action_answer(request: HttpRequest, partial: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """The fragment for htmx; without JavaScript, the same inside a page."""
    if is_htmx(request):
        return render(request, partial, context, status=status)
    context.update(partial=partial, me=current_user(request))
    return render(request, "assistant/action.html", context, status=status)
