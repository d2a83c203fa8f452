from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "yuyue.notify"
    label = "notify"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        # Handlers register themselves on import; signals connect the events outside the engine.
        from yuyue.notify import channels, events  # noqa: F401
