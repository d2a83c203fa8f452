"""End users and their people.

Phones and resident ID numbers are encrypted at rest and never shown in full here (invariant 6):
the forms leave out the encrypted columns and their hashes, pages show masked values, and the
search box finds a phone or an ID number through its blind index.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from yuyue.accounts import tokencache
from yuyue.accounts.models import ApiToken, Ban, EndUser, Person, PointsEntry
from yuyue.core import timeutil
from yuyue.core.admin import BlindIndexSearchMixin, ReadOnlyAdminMixin

ADULT_AGE = 18


class PersonInline(admin.TabularInline):
    """An account's people at a glance; each is edited on its own page."""

    model = Person
    fk_name = "owner"
    extra = 0
    fields = ["name", "relation", "id_masked", "phone_masked", "age", "guardian", "is_deleted"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("resident ID number"))
    def id_masked(self, obj: Person) -> str:
        return obj.id_masked

    @admin.display(description=_("phone"))
    def phone_masked(self, obj: Person) -> str:
        return obj.phone_masked

    @admin.display(description=_("age"))
    def age(self, obj: Person) -> int | None:
        return obj.age_on(timeutil.today())


@admin.register(EndUser)
class EndUserAdmin(BlindIndexSearchMixin, admin.ModelAdmin):
    phone_hash_fields = ("phone_hash",)

    list_display = [
        "__str__",
        "phone_masked",
        "wechat_bound",
        "alipay_bound",
        "points_balance",
        "is_active",
        "created_at",
    ]
    list_filter = ["is_active", "created_at"]
    search_fields = ["nickname", "=wechat_openid", "=alipay_user_id"]
    search_help_text = _("Nickname, full mobile number, WeChat openid or Alipay user ID.")
    date_hierarchy = "created_at"
    fields = [
        "nickname",
        "phone_masked",
        "wechat_openid",
        "alipay_user_id",
        "points_balance",
        "is_active",
        "created_at",
    ]
    readonly_fields = ["phone_masked", "wechat_openid", "alipay_user_id", "points_balance", "created_at"]
    inlines = [PersonInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts come into being by signing in (phone code, mini-program); there is nothing to type in.
        return False

    @admin.display(description=_("phone"))
    def phone_masked(self, obj: EndUser) -> str:
        return obj.phone_masked

    @admin.display(description=_("WeChat"), boolean=True)
    def wechat_bound(self, obj: EndUser) -> bool:
        return bool(obj.wechat_openid)

    @admin.display(description=_("Alipay"), boolean=True)
    def alipay_bound(self, obj: EndUser) -> bool:
        return bool(obj.alipay_user_id)


class PersonForm(forms.ModelForm):
    """A guardian must be another adult of the same account."""

    def clean_guardian(self) -> Person | None:
        guardian = self.cleaned_data.get("guardian")
        if guardian is None:
            return None
        person = self.instance
        age = guardian.age_on(timeutil.today())
        if guardian.pk == person.pk or guardian.owner_id != person.owner_id or guardian.is_deleted:
            raise forms.ValidationError(_("The guardian must be another person of the same account."))
        if age is None or age < ADULT_AGE:
            raise forms.ValidationError(_("The guardian must be an adult."))
        return guardian


@admin.register(Person)
class PersonAdmin(BlindIndexSearchMixin, admin.ModelAdmin):
    phone_hash_fields = ("phone_hash",)
    id_hash_fields = ("id_hash",)

    form = PersonForm
    list_display = ["name", "owner", "relation", "id_masked", "phone_masked", "age", "guardian", "is_deleted"]
    list_filter = ["relation", "is_deleted", "created_at"]
    search_fields = ["name", "owner__nickname"]
    search_help_text = _("Name, account nickname, full mobile number or full resident ID number.")
    list_select_related = ["owner", "guardian"]
    date_hierarchy = "created_at"
    readonly_fields = ["owner", "id_masked", "phone_masked", "age", "created_at"]
    autocomplete_fields = ["guardian"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # People are added by the account holder, through the ID and guardian checks of accounts.services.
        return False

    def get_fields(self, request: HttpRequest, obj: Person | None = None) -> list[str]:
        # The masked ID hides the birth date, so the page does not show it either when an ID is on
        # file (it follows from the ID anyway): the age is enough.
        birth = "age" if obj is not None and obj.id_hash else "birth_date"
        return ["owner", "name", "relation", "id_masked", "phone_masked", birth, "guardian", "is_deleted", "created_at"]

    @admin.display(description=_("age"))
    def age(self, obj: Person) -> int | None:
        return obj.age_on(timeutil.today())

    @admin.display(description=_("resident ID number"))
    def id_masked(self, obj: Person) -> str:
        return obj.id_masked

    @admin.display(description=_("phone"))
    def phone_masked(self, obj: Person) -> str:
        return obj.phone_masked


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The points ledger: written with the balance in one step by accounts.services.change_points."""

    list_display = ["created_at", "user", "merchant", "delta", "balance_after", "reason", "booking"]
    list_filter = [("merchant", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["reason", "user__nickname", "booking__code"]
    list_select_related = ["user", "merchant", "booking"]
    date_hierarchy = "created_at"


class BanStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("active", _("in force")), ("lifted", _("lifted")), ("ended", _("ended"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timeutil.now()
        if self.value() == "active":
            return queryset.filter(lifted_at=None, starts_at__lte=now, ends_at__gt=now)
        if self.value() == "lifted":
            return queryset.exclude(lifted_at=None)
        if self.value() == "ended":
            return queryset.filter(lifted_at=None, ends_at__lte=now)
        return queryset


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    list_display = ["user", "merchant", "starts_at", "ends_at", "in_force", "reason", "lifted_at", "created_by"]
    list_filter = [BanStateFilter, ("merchant", admin.RelatedOnlyFieldListFilter), "starts_at"]
    search_fields = ["reason", "user__nickname", "merchant__name"]
    list_select_related = ["user", "merchant", "created_by"]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["user", "merchant"]
    fields = ["user", "merchant", "starts_at", "ends_at", "reason", "created_by", "lifted_at", "lift_reason"]
    readonly_fields = ["created_by"]
    actions = ["lift"]

    def save_model(self, request: HttpRequest, obj: Ban, form: Any, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("in force"), boolean=True)
    def in_force(self, obj: Ban) -> bool:
        now = timeutil.now()
        return obj.lifted_at is None and obj.starts_at <= now < obj.ends_at

    @admin.action(description=_("Lift the selected bans now"))
    def lift(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(lifted_at=None).update(
            lifted_at=timeutil.now(), lift_reason=_("Lifted by %(user)s") % {"user": request.user.get_username()}
        )
        self.message_user(
            request,
            ngettext("%(count)d ban lifted.", "%(count)d bans lifted.", count) % {"count": count},
            messages.SUCCESS,
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Sign-in tokens. Only a hash is stored, so a token can be looked at and revoked, never shown."""

    list_display = ["id", "key_prefix", "user", "staff_user", "created_at", "expires_at", "revoked_at", "valid"]
    list_filter = ["created_at", "expires_at", "revoked_at"]
    search_fields = ["user__nickname", "staff_user__username"]
    list_select_related = ["user", "staff_user"]
    date_hierarchy = "created_at"
    fields = ["key_prefix", "user", "staff_user", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["key_prefix", "user", "staff_user", "created_at"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the raw token is shown once, to whoever signed in; see accounts.services.issue_token

    @admin.display(description=_("key hash"))
    def key_prefix(self, obj: ApiToken) -> str:
        return f"{obj.key_hash[:8]}…"

    @admin.display(description=_("valid"), boolean=True)
    def valid(self, obj: ApiToken) -> bool:
        now = timeutil.now()
        return obj.revoked_at is None and (obj.expires_at is None or obj.expires_at > now)

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        digests = list(queryset.filter(revoked_at=None).values_list("key_hash", flat=True))
        count = ApiToken.objects.filter(key_hash__in=digests, revoked_at=None).update(revoked_at=timeutil.now())
        tokencache.forget(*digests)
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count) % {"count": count},
            messages.SUCCESS,
        )
