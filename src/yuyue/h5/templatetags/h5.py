"""Small template tags and filters for the H5 pages: money, masked names, elder mode."""

from __future__ import annotations

from django import template
from django.http import HttpRequest

from yuyue.core import money, personal

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    """12800 → ¥128.00; free things say so."""
    if not fen:
        return "¥0"
    return money.format_yuan(fen)


@register.filter
def masked_name(name: str) -> str:
    return personal.mask_name(name or "")


@register.simple_tag(takes_context=True)
def elder_mode(context: template.Context) -> bool:
    request: HttpRequest | None = context.get("request")
    return bool(request is not None and request.COOKIES.get("yuyue_elder") == "1")
