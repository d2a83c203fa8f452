"""Catalogue (offerings, slots) and "my people" over the API."""

from __future__ import annotations

import datetime as dt

import pytest
from api_helpers import ApiClient, error_code
from factories import make_branch, make_id_number, make_merchant, make_offering, make_person, make_resource, make_slot

from yuyue.accounts.models import Person
from yuyue.booking import services
from yuyue.core import timeutil

pytestmark = pytest.mark.django_db


# --- Catalogue ------------------------------------------------------------------------------------


def test_offerings_list_has_the_contract_fields(anon: ApiClient):
    branch = make_branch(address="上海市徐汇区龙腾大道2555号")
    offering = make_offering(kind="scenic", branch=branch, price_fen=5000)
    body = anon.get("/offerings").json()
    assert body["count"] == 1
    item = body["items"][0]
    assert item == {
        "id": offering.pk,
        "kind": "scenic",
        "kind_label": item["kind_label"],
        "title": offering.title,
        "merchant": {"id": branch.merchant_id, "name": branch.merchant.name},
        "branch": {"id": branch.pk, "name": branch.name, "address": "上海市徐汇区龙腾大道2555号", "city": ""},
        "price_fen": 5000,
        "rating": None,
        "requires_real_name": True,
    }


def test_offerings_filter_by_kind_merchant_and_words(anon: ApiClient):
    merchant = make_merchant(name="青岚山风景区")
    scenic = make_offering(kind="scenic", merchant=merchant, title="青岚山 日间票")
    course = make_offering(kind="course", title="流瑜伽")
    make_offering(kind="course", title="停售课程", is_active=False)
    assert [o["id"] for o in anon.get("/offerings", {"kind": "course"}).json()["items"]] == [course.pk]
    assert [o["id"] for o in anon.get("/offerings", {"merchant": merchant.pk}).json()["items"]] == [scenic.pk]
    assert [o["id"] for o in anon.get("/offerings", {"q": "青岚"}).json()["items"]] == [scenic.pk]
    assert anon.get("/offerings", {"q": "瑜伽"}).json()["count"] == 1


def test_offering_list_pages(anon: ApiClient):
    for _ in range(3):
        make_offering()
    body = anon.get("/offerings", {"limit": 2, "offset": 2}).json()
    assert body["count"] == 3 and len(body["items"]) == 1
    assert anon.get("/offerings", {"limit": 0}).status_code == 422


def test_offering_detail_has_form_policy_resources_and_reviews(anon: ApiClient):
    coach = make_resource(type="coach", name="林教练", title="高级教练")
    offering = make_offering(kind="vehicle", merchant=coach.merchant, description="机场接送")
    offering.resources.add(coach)
    body = anon.get(f"/offerings/{offering.pk}").json()
    assert body["description"] == "机场接送"
    assert [f["key"] for f in body["form"]] == ["pickup", "destination", "contact_phone"]
    assert body["form"][0] == {"key": "pickup", "label": "上车地点", "type": "text", "required": True, "choices": []}
    assert body["policy"]["cancel_deadline_hours"] == 2
    assert body["policy"]["party"] == "count"
    assert body["resources"][0]["name"] == "林教练"
    assert body["reviews"] == []


def test_unknown_or_inactive_offering_is_not_found(anon: ApiClient):
    hidden = make_offering(is_active=False)
    for path in (f"/offerings/{hidden.pk}", "/offerings/999999", f"/offerings/{hidden.pk}/slots"):
        response = anon.get(path)
        assert response.status_code == 404 and error_code(response) == "not_found"


def test_slots_by_local_day_with_seats_left(anon: ApiClient, user, tomorrow_10):
    coach = make_resource(name="周教练")
    offering = make_offering(merchant=coach.merchant)
    slot = make_slot(offering=offering, start=tomorrow_10, capacity=3, resources=[coach])
    make_slot(offering=offering, start=tomorrow_10 + dt.timedelta(days=10))
    services.book(user=user, slot_id=slot.pk)
    day = tomorrow_10.date().isoformat()
    body = anon.get(f"/offerings/{offering.pk}/slots", {"date_from": day, "date_to": day}).json()
    assert len(body) == 1
    assert body[0]["id"] == slot.pk
    assert (body[0]["capacity"], body[0]["remaining"]) == (3, 2)
    assert body[0]["resource"] == {"id": coach.pk, "name": "周教练"}
    assert body[0]["start"].endswith("+08:00")
    assert dt.datetime.fromisoformat(body[0]["start"]) == tomorrow_10
    assert len(anon.get(f"/offerings/{offering.pk}/slots").json()) == 1  # default: today and 6 days


def test_slot_range_must_be_sensible(anon: ApiClient):
    offering = make_offering()
    today = timeutil.today()
    backwards = anon.get(f"/offerings/{offering.pk}/slots", {"date_from": today, "date_to": today - dt.timedelta(1)})
    assert backwards.status_code == 422 and "date_to" in backwards.json()["error"]["fields"]
    too_long = anon.get(f"/offerings/{offering.pk}/slots", {"date_to": today + dt.timedelta(days=100)})
    assert too_long.status_code == 422
    far = anon.get(f"/offerings/{offering.pk}/slots", {"date_from": "9999-12-31"})
    assert far.status_code == 422
    assert anon.get(f"/offerings/{offering.pk}/slots", {"date_from": "yesterday"}).status_code == 422


# --- My people ------------------------------------------------------------------------------------


def test_people_come_back_masked(api: ApiClient, user):
    id_number = make_id_number(dt.date(1985, 3, 4))
    created = api.post(
        "/me/people",
        {
            "name": "张三丰",
            "relation": "self",
            "id_number": id_number,
            "phone": "13812345678",
            "sensitive_consent": True,  # the separate consent an ID number needs
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["id_number"] == id_number[:6] + "********" + id_number[-4:]
    assert body["phone"] == "138****5678"
    assert body["birth_date"] == "1985-03-04" and body["is_minor"] is False
    assert api.get("/me/people").json() == [body]
    assert Person.objects.get().id_number == id_number


def test_bad_id_number_is_a_field_error_and_adds_nobody(api: ApiClient):
    response = api.post("/me/people", {"name": "李四", "relation": "self", "id_number": "110105199001011230"})
    assert response.status_code == 422 and "id_number" in response.json()["error"]["fields"]
    assert not Person.objects.exists()


def test_unknown_relation_is_invalid(api: ApiClient):
    response = api.post("/me/people", {"name": "李四", "relation": "cousin"})
    assert response.status_code == 422 and "relation" in response.json()["error"]["fields"]


def test_child_needs_a_guardian(api: ApiClient, user):
    child_id = make_id_number(timeutil.today().replace(year=timeutil.today().year - 5, day=1))
    refused = api.post("/me/people", {"name": "小明", "relation": "child", "id_number": child_id})
    assert refused.status_code == 422 and "guardian_id" in refused.json()["error"]["fields"]
    parent = make_person(owner=user, name="王芳")
    accepted = api.post(
        "/me/people",
        {
            "name": "小明",
            "relation": "child",
            "id_number": child_id,
            "guardian_id": parent.pk,
            "sensitive_consent": True,
        },
    )
    assert accepted.status_code == 201 and accepted.json()["is_minor"] is True


def test_remove_a_person(api: ApiClient, user):
    person = make_person(owner=user)
    assert api.delete(f"/me/people/{person.pk}").status_code == 204
    assert api.get("/me/people").json() == []
    again = api.delete(f"/me/people/{person.pk}")
    assert again.status_code == 404 and error_code(again) == "not_found"


def test_someone_elses_person_is_not_found(api: ApiClient):
    stranger = make_person()
    assert api.delete(f"/me/people/{stranger.pk}").status_code == 404
    assert Person.objects.get(pk=stranger.pk).is_deleted is False


def test_people_need_a_token(anon: ApiClient):
    assert error_code(anon.get("/me/people")) == "unauthorized"
    assert anon.post("/me/people", {"name": "x"}).status_code == 401
