from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "yuyue.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        # Registers the outbox handler that delivers webhook rows.
        from yuyue.webhooks import services  # noqa: F401
