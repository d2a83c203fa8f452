"""The admin site's own words, and small helpers the apps' admin modules share.

The core app has no models; Django's admin autodiscovery still imports this module, so the site's
titles are set here once.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from yuyue.core import personal
from yuyue.core.errors import DomainError
from yuyue.core.money import format_yuan

admin.site.site_header = "yuyue 预约"
admin.site.site_title = _("yuyue admin")
admin.site.index_title = _("Administration")


def yuan(fen: int | None) -> str:
    """Integer fen as ¥ for list columns; an empty cell for no amount."""
    return "" if fen is None else format_yuan(fen)


class PrettyJSONField(forms.JSONField):
    """A JSON form field that shows its value indented and keeps Chinese readable."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def blind_index_terms(search_term: str) -> tuple[set[str], set[str]]:
    """Blind-index hashes of the phones and resident IDs a search term contains.

    The whole term and each word are tried, so "138 0013 8000" and "张三 13800138000" both work.
    """
    candidates = {search_term.strip(), *search_term.split()}
    phones: set[str] = set()
    ids: set[str] = set()
    for candidate in filter(None, candidates):
        with contextlib.suppress(DomainError):
            phones.add(personal.phone_hash(personal.normalize_phone(candidate)))
        with contextlib.suppress(DomainError):
            ids.add(personal.id_hash(personal.normalize_id_number(candidate)))
    return phones, ids


class BlindIndexSearchMixin:
    """Lets the admin search box find encrypted phones and ID numbers through their keyed hashes.

    List the hash columns (or lookups through relations) in ``phone_hash_fields`` and
    ``id_hash_fields``. Rows matched by hash are added to whatever the ordinary ``search_fields``
    found, within the active filters.
    """

    phone_hash_fields: tuple[str, ...] = ()
    id_hash_fields: tuple[str, ...] = ()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        filtered = queryset
        queryset, may_have_duplicates = super().get_search_results(  # type: ignore[misc]
            request, queryset, search_term
        )
        if not search_term:
            return queryset, may_have_duplicates
        phones, ids = blind_index_terms(search_term)
        lookups = [(f, phones) for f in self.phone_hash_fields if phones] + [
            (f, ids) for f in self.id_hash_fields if ids
        ]
        if lookups:
            condition = Q()
            for field, hashes in lookups:
                condition |= Q(**{f"{field}__in": hashes})
            queryset = queryset | filtered.filter(condition)
            may_have_duplicates = may_have_duplicates or any("__" in field for field, _hashes in lookups)
        return queryset, may_have_duplicates


def masked_answers(answers: dict[str, Any], form: list[Any]) -> dict[str, Any]:
    """A booking form's answers fit for a screen: phones and resident IDs masked.

    Answers to phone and ID questions are masked, and so is any other text that reads as a
    mobile number or a resident ID, whatever its question.
    """
    types = {field.key: field.type for field in form}
    shown: dict[str, Any] = {}
    for key, value in (answers or {}).items():
        if isinstance(value, str) and value:
            shown[key] = mask_text(value, types.get(key, ""))
        else:
            shown[key] = value
    return shown


def mask_text(value: str, kind: str = "") -> str:
    """Mask ``value`` if it is (or is said to be) a phone or a resident ID; other text as it is."""
    with contextlib.suppress(DomainError):
        return personal.mask_phone(personal.normalize_phone(value))
    with contextlib.suppress(DomainError):
        return personal.mask_id(personal.normalize_id_number(value))
    if kind not in {"phone", "id_number"}:
        return value
    if len(value) < 8:
        return "*" * len(value)
    return personal.mask_phone(value) if kind == "phone" else personal.mask_id(value)


class ReadOnlyAdminMixin:
    """For rows only the engine writes: they can be listed and looked at, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
