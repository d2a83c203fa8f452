"""Separate consent for sensitive personal information (PIPL art. 29/31): ID numbers and children."""

from __future__ import annotations

import datetime as dt

import pytest
from api.api_helpers import ApiClient, error_code
from django.test import Client
from django.urls import reverse
from factories import make_id_number, make_person, make_user

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Person
from yuyue.core import timeutil
from yuyue.h5.auth import SESSION_KEY
from yuyue.privacy import consent
from yuyue.privacy.models import Consent, ConsentKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def api(user) -> ApiClient:
    return ApiClient(accounts.issue_token(user=user))


def child_birth_date() -> dt.date:
    today = timeutil.today()
    return dt.date(today.year - 6, 3, 1)


def test_an_id_number_without_consent_is_refused_with_a_translated_field_error(api, user):
    refused = api.post(
        "/me/people", {"name": "张三", "id_number": make_id_number()}, headers={"Accept-Language": "zh-hans"}
    )
    assert refused.status_code == 422 and error_code(refused) == "invalid"
    message = refused.json()["error"]["fields"]["sensitive_consent"]
    assert "敏感个人信息" in message
    assert not Person.objects.exists() and not Consent.objects.exists()


def test_consent_is_recorded_with_kind_text_version_time_and_ip(api, user):
    before = timeutil.now()
    created = api.post("/me/people", {"name": "张三", "id_number": make_id_number(), "sensitive_consent": True})
    assert created.status_code == 201
    row = Consent.objects.get()
    assert (row.user, row.person_id, row.kind) == (user, created.json()["id"], ConsentKind.ID_NUMBER)
    assert row.text_version == consent.CURRENT[ConsentKind.ID_NUMBER] and "身份证" in consent.text(
        row.kind, row.text_version
    )
    assert row.ip == "127.0.0.1" and row.given_at >= before and row.withdrawn_at is None


def test_a_child_needs_the_minor_consent_even_without_an_id_number(api, user):
    parent = make_person(owner=user)
    body = {"name": "小明", "relation": "child", "birth_date": child_birth_date().isoformat(), "guardian_id": parent.pk}
    refused = api.post("/me/people", body)
    assert refused.status_code == 422 and set(refused.json()["error"]["fields"]) == {"sensitive_consent"}
    assert api.post("/me/people", {**body, "sensitive_consent": True}).status_code == 201
    assert list(Consent.objects.values_list("kind", flat=True)) == [ConsentKind.MINOR]


def test_a_child_with_an_id_number_gives_both_consents_and_other_errors_come_together(api, user):
    parent = make_person(owner=user)
    child_id = make_id_number(child_birth_date())
    # No guardian and no consent: both fields are named at once.
    refused = api.post("/me/people", {"name": "小红", "relation": "child", "id_number": child_id})
    assert {"guardian_id", "sensitive_consent"} <= set(refused.json()["error"]["fields"])
    body = {"name": "小红", "relation": "child", "id_number": child_id, "guardian_id": parent.pk}
    assert api.post("/me/people", {**body, "sensitive_consent": True}).status_code == 201
    assert sorted(Consent.objects.values_list("kind", flat=True)) == [ConsentKind.ID_NUMBER, ConsentKind.MINOR]


def test_an_adult_without_an_id_number_needs_no_consent(api):
    created = api.post("/me/people", {"name": "李四", "birth_date": "1980-01-01"})
    assert created.status_code == 201 and not Consent.objects.exists()


def test_withdrawing_deletes_the_id_number(api, user):
    person_id = api.post(
        "/me/people", {"name": "张三", "id_number": make_id_number(), "sensitive_consent": True}
    ).json()["id"]
    withdrawn = api.delete(f"/me/people/{person_id}/id-number")
    assert withdrawn.status_code == 200 and withdrawn.json()["id_number"] == ""
    person = Person.objects.get(pk=person_id)
    assert person.id_number == "" and person.id_hash == "" and not person.is_deleted
    assert Consent.objects.get().withdrawn_at is not None
    stranger = make_person()
    assert api.delete(f"/me/people/{stranger.pk}/id-number").status_code == 404
    assert Person.objects.get(pk=stranger.pk).id_number


def test_removing_a_person_wipes_their_id_and_phone_and_withdraws(api, user):
    body = {"name": "张三", "id_number": make_id_number(), "phone": "13812345678", "sensitive_consent": True}
    person_id = api.post("/me/people", body).json()["id"]
    assert api.delete(f"/me/people/{person_id}").status_code == 204
    person = Person.objects.get(pk=person_id)
    assert person.is_deleted and person.id_number == "" and person.phone == "" and person.phone_hash == ""
    assert Consent.objects.get().withdrawn_at is not None


def test_the_consent_texts_are_published_with_their_versions():
    texts = ApiClient().get("/privacy/consent-texts").json()
    assert {t["kind"] for t in texts} == {"id_number", "minor"}
    assert all(t["version"] == consent.CURRENT[t["kind"]] and t["text"] for t in texts)


# --- H5 -----------------------------------------------------------------------------------------


@pytest.fixture
def signed_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client


def test_h5_shows_the_chinese_consent_text_and_refuses_without_the_box(signed_in, user):
    page = signed_in.get(reverse("h5:people")).content.decode()
    assert consent.text(ConsentKind.ID_NUMBER) in page and 'name="person_sensitive_consent"' in page
    data = {"person_name": "韩梅梅", "person_id_number": make_id_number()}
    refused = signed_in.post(reverse("h5:person_add"), data)
    assert refused.status_code == 422 and 'id="person_sensitive_consent-error"' in refused.content.decode()
    assert not Person.objects.exists()
    added = signed_in.post(reverse("h5:person_add"), {**data, "person_sensitive_consent": "1"})
    assert added.status_code == 302
    assert Consent.objects.get().person == Person.objects.get(name="韩梅梅")


def test_h5_withdraws_an_id_number(signed_in, user):
    person = make_person(owner=user)
    assert person.id_masked in signed_in.get(reverse("h5:people")).content.decode()
    signed_in.post(reverse("h5:person_withdraw_id", args=[person.pk]))
    person.refresh_from_db()
    assert person.id_number == "" and not person.is_deleted
