from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "yuyue.core"
    label = "core"
