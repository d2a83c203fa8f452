"""Console pages of the assistant: the 客服 inbox (hand-offs, reply, close) and the FAQ editor.

Included from console/urls_desk.py, so the pages are in the ``console`` namespace and role-scoped
like every other: the inbox is customer work (``customers.view`` to read, ``customers.change``
to reply and close), the FAQ is what customers are told (``catalog.change``, as notifications).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yuyue.assistant import services
from yuyue.assistant.models import (
    INBOX_STATUSES,
    INTENT_CHOICES,
    Conversation,
    ConversationStatus,
    FaqEntry,
    Language,
    Message,
    Sender,
)
from yuyue.catalog.kinds import KINDS
from yuyue.console.access import audit, console_view, desk_of, get_scoped_or_404
from yuyue.core.errors import DomainError


@console_view("customers.view")
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    status = request.GET.get("status", ConversationStatus.OPEN)
    statuses = [s for s in INBOX_STATUSES if s == status] or list(INBOX_STATUSES)
    last_question = (
        Message.objects.filter(conversation=OuterRef("pk"), sender=Sender.CUSTOMER).order_by("-id").values("text")[:1]
    )
    found = (
        Conversation.objects.filter(merchant=desk.merchant, status__in=statuses)
        .select_related("user")
        .annotate(last_question=Subquery(last_question))
        .order_by("-updated_at", "-id")
    )
    page = Paginator(found, 50).get_page(request.GET.get("page"))
    choices = [(s, label) for s, label in ConversationStatus.choices if s in INBOX_STATUSES]
    context = {"page_obj": page, "status": status if len(statuses) == 1 else "", "statuses": choices}
    return render(request, "assistant/console/inbox.html", context)


@console_view("customers.view")
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = get_scoped_or_404(
        desk_of(request), Conversation.objects.filter(status__in=INBOX_STATUSES), pk=conversation_id
    )
    context = {"conversation": conversation, "chat_messages": services.messages_after(conversation, limit=500)}
    return render(request, "assistant/console/conversation.html", context)


@console_view("customers.change")
@require_POST
def reply(request: HttpRequest, conversation_id: int) -> HttpResponse:
    desk = desk_of(request)
    conversation = get_scoped_or_404(desk, Conversation.objects.filter(status__in=INBOX_STATUSES), pk=conversation_id)
    try:
        services.staff_reply(conversation=conversation, staff_user=desk.user, text=request.POST.get("text", ""))
    except DomainError as exc:
        messages.error(request, " ".join(str(m) for m in exc.fields.values()) or exc.message)
    else:
        audit(request, "assistant.reply", conversation)
        messages.success(request, _("Sent; the customer sees it in the chat."))
    return redirect(reverse("console:assistant_conversation", args=[conversation.pk]))


@console_view("customers.change")
@require_POST
def close(request: HttpRequest, conversation_id: int) -> HttpResponse:
    desk = desk_of(request)
    conversation = get_scoped_or_404(desk, Conversation.objects.filter(status__in=INBOX_STATUSES), pk=conversation_id)
    services.close(conversation=conversation)
    audit(request, "assistant.close", conversation)
    messages.success(request, _("Closed."))
    return redirect(reverse("console:assistant_inbox"))


# --- FAQ -------------------------------------------------------------------------------------------


def _form_context(entry: FaqEntry | None, values: dict[str, str], errors: dict[str, str]) -> dict:
    return {
        "entry": entry,
        "values": values,
        "errors": errors,
        "intents": INTENT_CHOICES,
        "languages": Language.choices,
        "kinds": [(code, kind.label) for code, kind in KINDS.items()],
    }


@console_view("catalog.change")
@require_GET
def faq(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    return render(request, "assistant/console/faq.html", {"entries": services.faq_entries(desk.merchant)})


@console_view("catalog.change")
@require_http_methods(["GET", "POST"])
def faq_edit(request: HttpRequest, entry_id: int | None = None) -> HttpResponse:
    """Edit one of the merchant's answers, or write a new one (``?from=`` a default to override it)."""
    desk = desk_of(request)
    entry = get_scoped_or_404(desk, FaqEntry, pk=entry_id) if entry_id is not None else None
    source = entry
    if entry is None and request.GET.get("from", "").isdigit():
        source = FaqEntry.objects.filter(pk=int(request.GET["from"]), merchant__isnull=True).first()
    names = ("intent", "language", "kind", "question", "answer", "order")
    values = {name: str(getattr(source, name, "") or "") for name in names} if source else {"order": "0"}
    values["active"] = "1" if source is None or source.active else ""
    if request.method == "POST":
        values = {name: request.POST.get(name, "").strip() for name in names}
        values["active"] = "1" if request.POST.get("active") else ""
        try:
            saved = services.save_faq(
                merchant=desk.merchant,
                entry=entry,
                intent=values["intent"],
                language=values["language"],
                kind=values["kind"],
                question=values["question"],
                answer=values["answer"],
                active=bool(values["active"]),
                order=int(values["order"]) if values["order"].isdigit() and len(values["order"]) < 7 else -1,
            )
        except DomainError as exc:
            errors = {key: str(message) for key, message in exc.fields.items()}
            return render(request, "assistant/console/faq_form.html", _form_context(entry, values, errors), status=422)
        audit(request, "assistant.faq_save", saved, intent=saved.intent)
        messages.success(request, _("Saved."))
        return redirect(reverse("console:assistant_faq"))
    return render(request, "assistant/console/faq_form.html", _form_context(entry, values, {}))


urlpatterns = [
    path("service/", inbox, name="assistant_inbox"),
    path("service/<int:conversation_id>/", conversation_detail, name="assistant_conversation"),
    path("service/<int:conversation_id>/reply/", reply, name="assistant_reply"),
    path("service/<int:conversation_id>/close/", close, name="assistant_close"),
    path("faq/", faq, name="assistant_faq"),
    path("faq/new/", faq_edit, name="assistant_faq_new"),
    path("faq/<int:entry_id>/", faq_edit, name="assistant_faq_edit"),
]
