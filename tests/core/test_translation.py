"""Errors speak Simplified Chinese by default and English on request."""

from __future__ import annotations

from django.utils import translation

from yuyue.core.errors import ERRORS, DomainError


def test_every_error_code_has_a_chinese_message():
    with translation.override("zh-hans"):
        for code in ERRORS:
            message = DomainError(code).message
            assert any("\u4e00" <= ch <= "\u9fff" for ch in message), f"{code}: {message}"


def test_english_is_available():
    with translation.override("en"):
        assert DomainError("slot_full").message == "This time slot is fully booked."
