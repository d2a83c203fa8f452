"""Download my data (GET /me/data, H5 "我的数据") and delete my account (DELETE /me, H5 confirm page)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from api.api_helpers import ApiClient, error_code
from django.test import Client, override_settings
from django.urls import reverse
from factories import make_person, make_user
from privacy_world import book_at, build_spot, tomorrow, visited
from redisurl import redis_url

from yuyue.accounts import services as accounts
from yuyue.accounts.models import ApiToken, EndUser, Person
from yuyue.booking import services as engine
from yuyue.booking.models import Attendee, Booking, Review
from yuyue.core import timeutil
from yuyue.h5.auth import SESSION_KEY
from yuyue.ledger import services as ledger
from yuyue.privacy import consent, services
from yuyue.privacy.models import Anonymisation, Consent, ConsentKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def spot():
    return build_spot()


def test_my_data_has_everything_of_mine_decrypted_and_nothing_of_others(spot):
    past = visited(spot, timeutil.now() - dt.timedelta(days=3))
    engine.add_review(booking=past, user=spot.customer, rating=5, text="风景很好")
    Consent.objects.create(
        user=spot.customer,
        person=spot.visitors[0],
        kind=ConsentKind.ID_NUMBER,
        text_version=consent.CURRENT["id_number"],
    )
    stranger = make_user()
    other = book_at(spot, tomorrow(), user=stranger, person_ids=[make_person(owner=stranger).pk])
    api = ApiClient(accounts.issue_token(user=spot.customer))
    data = api.get("/me/data").json()
    assert data["account"]["phone"] == spot.customer.phone
    assert {p["id_number"] for p in data["people"]} == {p.id_number for p in spot.visitors}
    assert [b["code"] for b in data["bookings"]] == [past.code]
    assert {a["id_number"] for a in data["bookings"][0]["attendees"]} == {p.id_number for p in spot.visitors}
    assert data["reviews"][0]["text"] == "风景很好" and data["consents"][0]["text"] == consent.text("id_number")
    assert set(data) >= {"payments", "refunds", "points", "cards", "assistant_conversations"}
    assert other.code not in json.dumps(data)


def test_my_data_is_rate_limited_and_needs_sign_in(spot):
    api = ApiClient(accounts.issue_token(user=spot.customer))
    with override_settings(RATE_DATA_EXPORT="2/3600"):
        assert api.get("/me/data").status_code == 200
        assert api.get("/me/data").status_code == 200
        refused = api.get("/me/data")
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert ApiClient().get("/me/data").status_code == 401


def signed_in(user: EndUser) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    session = client.session
    session[SESSION_KEY] = user.pk
    session.save()
    return client


def test_h5_my_data_page_downloads_a_json_file(spot):
    client = signed_in(spot.customer)
    page = client.get(reverse("h5:my_data")).content.decode()
    assert "下载我的数据" in page and reverse("h5:my_data_download") in page
    download = client.get(reverse("h5:my_data_download"))
    assert download["Content-Disposition"].startswith("attachment;")
    assert json.loads(download.content)["people"][0]["id_number"] == spot.visitors[0].id_number


def test_deletion_is_refused_with_the_list_while_a_booking_is_upcoming(spot):
    upcoming = book_at(spot, tomorrow())
    api = ApiClient(accounts.issue_token(user=spot.customer))
    refused = api.delete("/me", headers={"Accept-Language": "zh-hans"})
    assert refused.status_code == 409 and error_code(refused) == "not_allowed"
    assert upcoming.code in refused.json()["error"]["fields"]["bookings"]
    assert "取消" in refused.json()["error"]["fields"]["bookings"]
    assert EndUser.objects.get(pk=spot.customer.pk).phone == spot.customer.phone  # nothing changed
    page = signed_in(spot.customer).get(reverse("h5:delete_account")).content.decode()
    assert upcoming.code in page and 'name="confirm"' not in page


def test_deleting_anonymises_the_account_and_keeps_bookings_stats_and_ledger(spot):
    past = visited(spot, timeutil.now() - dt.timedelta(days=3))
    engine.add_review(booking=past, user=spot.customer, rating=4, text="我叫张三")
    cancelled = book_at(spot, tomorrow())
    engine.cancel(booking=cancelled, by=spot.customer)
    token = accounts.issue_token(user=spot.customer)
    api = ApiClient(token)
    phone = spot.customer.phone

    assert api.delete("/me").status_code == 204

    user = EndUser.objects.get(pk=spot.customer.pk)
    assert (user.phone, user.phone_hash, user.is_active) == ("", None, False)
    assert not ApiToken.objects.filter(user=user, revoked_at=None).exists()
    assert api.get("/me").status_code == 401
    assert all(p.is_deleted and p.id_number == "" and p.phone == "" for p in Person.objects.filter(owner=user))
    assert set(Attendee.objects.filter(booking__user=user).values_list("name", "id_number", "phone")) == {
        (services.ANONYMISED, "", "")
    }
    assert Review.objects.get(booking=past).text == "" and Review.objects.get(booking=past).rating == 4
    # The bookings stay, with their statuses and amounts, as anonymous records.
    assert set(Booking.objects.filter(user=user).values_list("code", "status")) == {
        (past.code, past.status),
        (cancelled.code, "cancelled"),
    }
    assert Anonymisation.objects.filter(reason="account_deleted").count() == 2
    assert ledger.verify().ok
    # The same phone signs up afresh as a new, empty account.
    again = accounts.get_or_create_user_by_phone(phone)
    assert again.pk != user.pk and not again.people.exists()
    assert api.delete("/me").status_code == 401


def test_h5_delete_needs_the_box_then_signs_out(spot):
    client = signed_in(spot.customer)
    refused = client.post(reverse("h5:delete_account"), {})
    assert refused.status_code == 422 and EndUser.objects.get(pk=spot.customer.pk).is_active
    done = client.post(reverse("h5:delete_account"), {"confirm": "1"})
    assert done.status_code == 302 and not EndUser.objects.get(pk=spot.customer.pk).is_active
    assert client.get(reverse("h5:my_data")).status_code == 302  # to sign-in: the session is over


PRIVACY_REDIS = redis_url(5)


def redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(PRIVACY_REDIS, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@pytest.mark.skipif(not redis_up(), reason=f"needs Redis at {PRIVACY_REDIS} (the shared token cache)")
def test_deletion_ends_tokens_held_in_the_shared_token_cache(spot, django_capture_on_commit_callbacks):
    with override_settings(REDIS_URL=PRIVACY_REDIS, TOKEN_CACHE_SECONDS=300):
        api = ApiClient(accounts.issue_token(user=spot.customer))
        assert api.get("/me").status_code == 200  # now cached in Redis
        with django_capture_on_commit_callbacks(execute=True):  # the cache is emptied after the commit
            assert api.delete("/me").status_code == 204
        assert api.get("/me").status_code == 401
