from django.contrib import admin

from yuyue.payments.models import Payment, PaymentNotice, Refund, SandboxTrade


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("out_trade_no", "booking", "merchant", "provider", "channel", "amount_fen", "state", "paid_at")
    list_filter = ("state", "provider")
    search_fields = ("out_trade_no", "provider_trade_no", "booking__code")
    raw_id_fields = ("booking", "merchant")
    readonly_fields = ("created_at", "updated_at")


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ("out_refund_no", "booking", "refund_fen", "state", "attempts", "finished_at")
    list_filter = ("state",)
    search_fields = ("out_refund_no", "provider_refund_no", "booking__code", "payment__out_trade_no")
    raw_id_fields = ("payment", "booking", "merchant")


@admin.register(PaymentNotice)
class PaymentNoticeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "provider", "source", "out_trade_no", "outcome", "verified", "flagged_for_merchant")
    list_filter = ("outcome", "provider", "flagged_for_merchant")
    search_fields = ("out_trade_no", "out_refund_no")
    raw_id_fields = ("payment", "merchant", "handled_by")


@admin.register(SandboxTrade)
class SandboxTradeAdmin(admin.ModelAdmin):
    list_display = ("kind", "out_trade_no", "out_refund_no", "amount_fen", "state", "at")
    list_filter = ("kind", "state")
