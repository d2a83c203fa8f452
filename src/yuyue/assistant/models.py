"""The customer-service assistant's data: FAQ answers, and conversations that may be handed to staff."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil

INTENT_CHOICES = [
    ("how_to_book", _("How to book")),
    ("reschedule", _("Change the time")),
    ("cancel", _("Cancel")),
    ("cancel_policy", _("Cancellation rules")),
    ("notification_missing", _("Notification not received")),
    ("my_bookings", _("My bookings")),
    ("voucher", _("Voucher and entry")),
    ("payment_issue", _("Payment problems")),
    ("waitlist", _("Waitlist")),
    ("id_and_guardian", _("ID and guardians")),
    ("group_booking", _("Group bookings")),
    ("opening_info", _("Opening hours and address")),
    ("points", _("Points")),
    ("invoice", _("Invoices")),
    ("human_agent", _("Talk to staff")),
    ("other", _("Other")),
]


class Language(models.TextChoices):
    ZH = "zh", _("Chinese")
    EN = "en", _("English")


class FaqEntry(models.Model):
    """One answer for an intent. Without a merchant it is the platform's default; ``kind`` narrows
    it to one kind of booking (empty: every kind). The most specific active entry answers."""

    merchant = models.ForeignKey(
        "tenants.Merchant", on_delete=models.CASCADE, null=True, blank=True, related_name="faq_entries"
    )
    kind = models.CharField(_("kind"), max_length=20, blank=True)
    intent = models.CharField(_("intent"), max_length=30, choices=INTENT_CHOICES)
    language = models.CharField(_("language"), max_length=5, choices=Language.choices, default=Language.ZH)
    question = models.CharField(_("question"), max_length=200)
    answer = models.TextField(_("answer"))
    active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("FAQ entry")
        verbose_name_plural = _("FAQ")
        ordering = ["merchant_id", "intent", "order", "id"]
        indexes = [models.Index(fields=["intent", "language", "merchant"])]

    def __str__(self) -> str:
        return self.question


class ConversationStatus(models.TextChoices):
    BOT = "bot", _("answered automatically")
    OPEN = "open", _("waiting for staff")
    ANSWERED = "answered", _("answered by staff")
    CLOSED = "closed", _("closed")


# Conversations that staff see in the console inbox.
INBOX_STATUSES = (ConversationStatus.OPEN, ConversationStatus.ANSWERED, ConversationStatus.CLOSED)


class Conversation(models.Model):
    """A customer's chat; once handed off (low confidence or asked for a person) it is a ticket
    in the merchant's inbox until staff close it."""

    user = models.ForeignKey(
        "accounts.EndUser", on_delete=models.CASCADE, null=True, blank=True, related_name="conversations"
    )
    merchant = models.ForeignKey(
        "tenants.Merchant", on_delete=models.CASCADE, null=True, blank=True, related_name="conversations"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=ConversationStatus.choices, default=ConversationStatus.BOT
    )
    handed_off_at = models.DateTimeField(_("handed off at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timeutil.now)
    updated_at = models.DateTimeField(_("last message"), default=timeutil.now)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "status", "-updated_at"]),
            models.Index(fields=["user", "-updated_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"


class Sender(models.TextChoices):
    CUSTOMER = "customer", _("customer")
    ASSISTANT = "assistant", _("automatic answer")
    STAFF = "staff", _("staff")


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(_("from"), max_length=10, choices=Sender.choices)
    text = models.TextField(_("message"))
    intent = models.CharField(_("intent"), max_length=30, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    actions = models.JSONField(default=list, blank=True)
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timeutil.now)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["id"]
