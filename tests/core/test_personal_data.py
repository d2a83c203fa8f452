"""Invariant 6: resident IDs and phones are encrypted at rest, found by blind index, shown masked."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from factories import make_id_number, make_person, make_user

from yuyue.accounts.models import Person
from yuyue.core import crypto, personal
from yuyue.core.errors import DomainError


@pytest.fixture
def keys(settings):
    """Switch the data keys for one test and forget cached keys before and after."""

    def use(*names: str, index_key: str = "") -> None:
        settings.DATA_KEYS = list(names)
        settings.INDEX_KEY = index_key
        crypto._keys.cache_clear()
        crypto._index_key.cache_clear()

    yield use
    crypto._keys.cache_clear()
    crypto._index_key.cache_clear()


def test_round_trip_and_no_plaintext_in_the_token():
    token = crypto.encrypt("110105199001010017")
    assert "110105" not in token and crypto.decrypt(token) == "110105199001010017"


def test_same_value_encrypts_differently_each_time():
    assert crypto.encrypt("13912345678") != crypto.encrypt("13912345678")


def test_tampered_ciphertext_is_rejected():
    from cryptography.exceptions import InvalidTag

    prefix, key_id, payload = crypto.encrypt("13912345678").split(":")
    flipped = payload[:-6] + ("A" if payload[-6] != "A" else "B") + payload[-5:]
    with pytest.raises(InvalidTag):
        crypto.decrypt(f"{prefix}:{key_id}:{flipped}")


def test_old_keys_still_decrypt_after_rotation(keys):
    old, new = crypto.generate_key(), crypto.generate_key()
    keys(old)
    token = crypto.encrypt("13912345678")
    keys(new, old)
    assert crypto.decrypt(token) == "13912345678"
    assert not crypto.is_current(token) and crypto.is_current(crypto.encrypt("x"))


def test_blind_index_survives_rotation(keys):
    old, new = crypto.generate_key(), crypto.generate_key()
    keys(old)
    before = personal.phone_hash("13912345678")
    keys(new, old)
    assert personal.phone_hash("13912345678") == before


def test_retired_key_cannot_decrypt(keys):
    old, new = crypto.generate_key(), crypto.generate_key()
    keys(old)
    token = crypto.encrypt("13912345678")
    keys(new)
    with pytest.raises(ValueError, match="no data key"):
        crypto.decrypt(token)


@pytest.mark.django_db
def test_database_holds_only_ciphertext():
    person = make_person(phone="13912345678")
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, phone FROM accounts_person WHERE id = %s", [person.pk])
        stored_id, stored_phone = cursor.fetchone()
    assert stored_id.startswith("v1:") and person.id_number not in stored_id
    assert stored_phone.startswith("v1:") and "13912345678" not in stored_phone
    assert Person.objects.get(pk=person.pk).id_number == person.id_number


@pytest.mark.django_db
def test_people_are_found_by_blind_index():
    person = make_person()
    assert Person.objects.get(id_hash=personal.id_hash(person.id_number)) == person


def test_masks():
    assert personal.mask_id("110105199001011234") == "110105********1234"
    assert personal.mask_phone("13812345678") == "138****5678"
    assert personal.mask_name("欧阳娜娜") == "欧**娜"
    assert personal.mask_name("王芳") == "王*"


@pytest.mark.parametrize("value", ["110105199001010018", "11010519900101001", "abc", ""])
def test_bad_resident_ids_are_invalid(value):
    with pytest.raises(DomainError) as caught:
        personal.normalize_id_number(value)
    assert "id_number" in caught.value.fields


def test_resident_id_is_normalised_and_gives_the_birth_date():
    number = make_id_number(dt.date(1985, 7, 9))
    assert personal.normalize_id_number(f" {number.lower()} ") == number
    assert personal.birth_date_from_id(number) == dt.date(1985, 7, 9)


@pytest.mark.parametrize("value", ["+86 139 1234 5678", "139-1234-5678", "13912345678"])
def test_phones_are_normalised(value):
    assert personal.normalize_phone(value) == "13912345678"


@pytest.mark.parametrize("value", ["12345", "02188886666", "+1 415 555 0100", ""])
def test_non_mobile_or_foreign_numbers_are_invalid(value):
    with pytest.raises(DomainError):
        personal.normalize_phone(value)


@pytest.mark.django_db
def test_end_user_phone_is_shown_masked():
    assert make_user("13912345678").phone_masked == "139****5678"


@pytest.mark.django_db
def test_reencrypt_moves_everything_to_the_newest_key(keys):
    old, new = crypto.generate_key(), crypto.generate_key()
    keys(old)
    person = make_person(phone="13912345678")
    keys(new, old)
    assert crypto.reencrypt_all() == 3  # the account's phone, the person's ID and phone
    assert crypto.reencrypt_all() == 0
    keys(new, index_key="")  # old key retired
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number FROM accounts_person WHERE id = %s", [person.pk])
        assert crypto.is_current(cursor.fetchone()[0])
    assert Person.objects.get(pk=person.pk).phone == "13912345678"
