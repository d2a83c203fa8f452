"""Template helpers of the privacy app: the consent texts shown beside the separate-consent box."""

from __future__ import annotations

from django import template

from yuyue.privacy import consent

register = template.Library()


@register.simple_tag
def consent_texts() -> list[dict[str, str]]:
    return consent.current_texts()


@register.simple_tag
def reveal_purposes() -> list[tuple[str, str]]:
    from yuyue.privacy.models import RevealPurpose

    return [(value, str(label)) for value, label in RevealPurpose.choices]
