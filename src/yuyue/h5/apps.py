from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class H5Config(AppConfig):
    name = "yuyue.h5"
    verbose_name = _("H5 booking app")
