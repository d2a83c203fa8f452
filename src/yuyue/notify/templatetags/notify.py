from __future__ import annotations

from typing import Any

from django import template

from yuyue.notify import services

register = template.Library()


@register.simple_tag
def unread_count(user: Any) -> int:
    """Unread inbox messages of the signed-in person (0 when nobody is signed in)."""
    return services.unread_count(user) if user is not None and getattr(user, "pk", None) else 0
