from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "yuyue.payments"
    label = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        # The engine says when a cancellation owes money back; payments records and sends the refund.
        # Importing services also registers the outbox handler that sends refunds.
        from yuyue.booking.services import refund_owed
        from yuyue.payments import services

        refund_owed.connect(services.on_refund_owed, dispatch_uid="payments-refund-owed")
