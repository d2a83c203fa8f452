from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "yuyue.accounts"
    label = "accounts"
    verbose_name = _("End users")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_delete

        from yuyue.accounts import tokencache
        from yuyue.accounts.models import EndUser

        # A changed or deleted account must not stay signed in through the token cache.
        for model in (EndUser, get_user_model()):
            post_save.connect(tokencache.on_account_saved, sender=model, dispatch_uid=f"tokencache-save-{model}")
            pre_delete.connect(tokencache.on_account_saved, sender=model, dispatch_uid=f"tokencache-delete-{model}")
