from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from yuyue.notify import outbox
from yuyue.notify.models import InboxMessage, MessageTemplate, OutboxItem


@admin.register(OutboxItem)
class OutboxItemAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "merchant", "status", "attempts", "next_attempt_at", "delivered_at", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["key", "dedupe_id"]
    readonly_fields = [f.name for f in OutboxItem._meta.fields]
    actions = ["send_again"]

    @admin.action(description=_("Send again"))
    def send_again(self, request: HttpRequest, queryset: QuerySet[OutboxItem]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            outbox.redeliver(pk)


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "merchant", "event", "title", "read_at", "created_at"]
    list_filter = ["event"]
    raw_id_fields = ["user", "booking"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["merchant", "event", "title", "sms_template_code", "wechat_template_id"]
    list_filter = ["event"]
