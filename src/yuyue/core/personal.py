"""Normalising, validating and masking the personal data yuyue keeps: resident IDs and phones."""

from __future__ import annotations

import datetime as dt

import phonenumbers
from django.utils.translation import gettext_lazy as _
from stdnum.cn import ric

from yuyue.core.crypto import blind_index
from yuyue.core.errors import DomainError


def normalize_id_number(value: str) -> str:
    """A valid 18-digit resident identity card number, upper-cased, or `invalid`."""
    compact = ric.compact(value or "").upper()
    try:
        ric.validate(compact)
    except Exception:  # stdnum raises several ValidationError subclasses
        raise DomainError("invalid", fields={"id_number": _("This resident ID number is not valid.")}) from None
    if len(compact) != 18:
        raise DomainError("invalid", fields={"id_number": _("Please use the 18-digit resident ID number.")})
    return compact


def birth_date_from_id(id_number: str) -> dt.date:
    return ric.get_birth_date(id_number)


def normalize_phone(value: str) -> str:
    """A mainland mobile number as 11 digits, or `invalid`."""
    try:
        number = phonenumbers.parse(value or "", "CN")
    except phonenumbers.NumberParseException:
        number = None
    if (
        number is None
        or number.country_code != 86
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE
    ):
        raise DomainError("invalid", fields={"phone": _("Please enter a valid mobile phone number.")})
    return str(number.national_number)


def id_hash(id_number: str) -> str:
    return blind_index(id_number, purpose="id")


def phone_hash(phone: str) -> str:
    return blind_index(phone, purpose="phone")


def mask_id(id_number: str) -> str:
    """110105********1234: region code and last four, nothing of the birth date."""
    if not id_number:
        return ""
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """138****5678."""
    if not phone:
        return ""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    """张*丰 / 王*: the family name stays, the rest is hidden."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def age_on(birth_date: dt.date | None, day: dt.date) -> int | None:
    if birth_date is None:
        return None
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
