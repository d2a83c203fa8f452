"""Serving recommendations: concrete slots the customer can book, with reasons, through every door."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F
from django.test import Client
from django.utils import translation
from factories import make_id_number, make_person, make_slot, make_user
from recommend_world import build_world, local

from yuyue import cli, tasks
from yuyue.accounts.models import Ban
from yuyue.accounts.services import issue_token
from yuyue.booking import services as engine
from yuyue.core import timeutil
from yuyue.h5.auth import SESSION_KEY
from yuyue.insights import services
from yuyue.insights.models import RecommenderSnapshot
from yuyue.scheduling.models import Slot, SlotStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    built = build_world()
    services.train()
    return built


def by_offering(found):
    return {r.offering.pk: r for r in found}


def test_co_booked_offering_comes_with_the_slot_at_the_usual_time_and_says_why(world):
    with translation.override("zh-hans"):
        found = by_offering(services.recommend(user=world.me, limit=5))

    pilates = found[world.pilates.pk]
    assert pilates.because == "together"
    assert pilates.slot.pk == world.usual_pilates.pk  # Wednesday 19:00, not the sooner Tuesday morning
    assert pilates.reason == "常约流瑜伽的会员也约了普拉提垫上课，同样是周三 19:00"
    assert found[world.yoga.pk].because == "again"
    assert found[world.yoga.pk].reason == "你常约流瑜伽，周三 19:00 正是你常来的时间"
    assert list(found)[:2] == [world.yoga.pk, world.pilates.pk]


def test_only_slots_with_places_inside_the_booking_window_are_offered(world):
    now = timeutil.now()
    world.pilates.policy_overrides = {"opens_days_ahead": 1}  # the Wednesday class is not open yet
    world.pilates.save()
    tomorrow = timeutil.today() + dt.timedelta(days=1)
    Slot.objects.filter(pk=world.soon_pilates.pk).update(reserved=F("capacity"))  # full
    make_slot(offering=world.pilates, start=local(tomorrow, 12), status=SlotStatus.CLOSED)
    make_slot(offering=world.pilates, start=now + dt.timedelta(minutes=10))  # booking closed 30 min before

    assert world.pilates.pk not in by_offering(services.recommend(user=world.me, limit=5))

    open_one = make_slot(offering=world.pilates, start=local(tomorrow, 15))
    found = services.recommend(user=world.me, limit=5)
    assert by_offering(found)[world.pilates.pk].slot.pk == open_one.pk
    for item in found:
        slot = Slot.objects.get(pk=item.slot.pk)
        assert slot.status == SlotStatus.OPEN and slot.reserved < slot.capacity
        assert engine.booking_closes_at(slot, item.offering.policy) > now
        opens = engine.booking_opens_at(slot, item.offering.policy)
        assert opens is None or opens <= now


def test_a_slot_already_booked_or_clashing_is_not_offered(world):
    engine.book(user=world.me, slot_id=world.next_yoga.pk)

    found = by_offering(services.recommend(user=world.me, limit=5))

    assert all(r.slot.pk != world.next_yoga.pk for r in found.values())
    # Pilates at the same Wednesday 19:00 would clash with the yoga class now booked: the other time.
    assert found[world.pilates.pk].slot.pk == world.soon_pilates.pk


def test_a_merchant_that_banned_the_customer_is_left_out(world):
    now = timeutil.now()
    Ban.objects.create(user=world.me, merchant=world.studio, ends_at=now + dt.timedelta(days=30), reason="爽约")

    found = by_offering(services.recommend(user=world.me, limit=5))

    assert world.yoga.pk not in found and world.pilates.pk not in found
    assert world.museum.pk in found


def test_real_name_offerings_need_a_person_with_a_resident_id(world):
    world.pilates.policy_overrides = {"real_name": True, "party": "people"}
    world.pilates.save()
    make_person(owner=world.me, real_name=False, name="没有身份证")

    assert world.pilates.pk not in by_offering(services.recommend(user=world.me, limit=5))

    make_person(owner=world.me, name="有身份证", id_number=make_id_number())
    assert world.pilates.pk in by_offering(services.recommend(user=world.me, limit=5))


def test_a_used_daily_limit_leaves_that_day_out(world):
    for offering in (world.yoga, world.pilates):
        offering.policy_overrides = {"per_person_per_day": 1, "limit_scope": "merchant"}
        offering.save()
    engine.book(user=world.me, slot_id=world.soon_pilates.pk)  # tomorrow: the limit at the studio is used
    evening_same_day = make_slot(offering=world.yoga, start=local(timeutil.local_date(world.soon_pilates.start), 19))

    found = services.recommend(user=world.me, limit=5)

    assert evening_same_day.pk not in {r.slot.pk for r in found}
    # The studio's other days are still offered.
    assert world.yoga.pk in by_offering(found) and world.pilates.pk in by_offering(found)


def test_a_new_customer_gets_popular_offerings_near_them(world):
    newcomer = make_user()
    with translation.override("zh-hans"):
        everywhere = services.recommend(user=newcomer, limit=5)
        near = services.recommend(user=newcomer, limit=5, city="杭州")

    assert {r.because for r in everywhere} == {"popular"}
    assert everywhere[0].offering.pk == world.yoga.pk  # 5 customers lately, against the museum's 3
    assert everywhere[0].reason == "近期热门：近 60 天有 5 人预约"
    assert [r.offering.pk for r in near][:1] == [world.museum.pk]
    assert near[0].reason == "杭州近期热门：近 60 天有 3 人预约"
    with translation.override("zh-hans"):
        elsewhere = services.recommend(user=newcomer, limit=5, city="拉萨")  # no bookings there: everywhere
    assert elsewhere[0].reason == "近期热门：近 60 天有 5 人预约"


def test_serving_stays_within_a_handful_of_queries(world, django_assert_max_num_queries):
    services.recommend(user=world.me, limit=5)  # the model is loaded into the process once
    with django_assert_max_num_queries(7):
        found = services.recommend(user=world.me, limit=5)
    assert found


def test_a_new_model_is_picked_up_without_a_restart(world):
    before = services.recommend(user=world.me, limit=5)
    newcomer_fans = [make_user() for _ in range(3)]
    for fan in newcomer_fans:
        engine.book(user=fan, slot_id=world.next_museum.pk)
        engine.book(user=fan, slot_id=world.usual_pilates.pk)
    services.train()
    after = services.recommend(user=world.me, limit=5)
    assert RecommenderSnapshot.objects.count() == 2
    assert {r.offering.pk for r in after} >= {r.offering.pk for r in before}


# --- the API ---------------------------------------------------------------------------------------


def test_api_gives_offering_slot_and_reason_in_the_catalogue_shapes(world):
    token = issue_token(user=world.me)
    response = Client().get("/api/v1/recommendations", {"limit": 2}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 2
    first, second = body
    assert set(first) == {"offering", "slot", "reason", "because"}
    assert {"id", "kind", "title", "merchant", "branch", "price_fen", "rating", "requires_real_name"} <= set(
        first["offering"]
    )
    assert set(first["slot"]) == {"id", "start", "end", "capacity", "remaining", "price_fen", "resource"}
    assert second["offering"]["id"] == world.pilates.pk
    assert second["slot"]["id"] == world.usual_pilates.pk
    assert second["slot"]["start"].endswith("+08:00")
    assert second["reason"].startswith("常约流瑜伽的会员也约了普拉提垫上课")


def test_api_without_a_token_answers_with_popular_offerings(world):
    response = Client().get("/api/v1/recommendations", {"city": "杭州"})
    assert response.status_code == 200
    assert response.json()[0]["offering"]["id"] == world.museum.pk
    assert {item["because"] for item in response.json()} == {"popular"}


def test_api_refuses_a_bad_token_and_bad_limits(world):
    bad = Client().get("/api/v1/recommendations", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "unauthorized"
    for limit in (0, 21, "many"):
        response = Client().get("/api/v1/recommendations", {"limit": limit})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid"


# --- the command, the periodic job, the H5 pages -------------------------------------------------


def test_train_command_stores_a_model(capsys):
    build_world()
    assert cli.main(["recommend", "train"]) == 0
    out = capsys.readouterr().out
    snapshot = RecommenderSnapshot.objects.get()
    assert f"recommender trained on {snapshot.bookings} bookings" in out
    assert snapshot.bookings == 4 * 4 * 2 + 4 * 3 + 3 and snapshot.users == 8


def test_periodic_job_retrains_only_a_model_older_than_an_hour(world):
    assert "train_recommendations" in tasks.JOBS
    assert tasks.train_recommendations() == 0  # the fixture trained just now
    later = timeutil.now() + dt.timedelta(hours=1, minutes=1)
    assert services.train_if_stale(now=later) == 1
    assert services.train_if_stale(now=later + dt.timedelta(minutes=5)) == 0


def test_h5_home_and_booking_page_show_cards_with_slot_link_and_reason(world):
    client = Client()
    session = client.session
    session[SESSION_KEY] = world.me.pk
    session.save()

    home = client.get("/", headers={"Accept-Language": "zh-hans"}).content.decode()
    assert "为你推荐" in home
    assert f'href="/slots/{world.usual_pilates.pk}/book/"' in home
    assert "常约流瑜伽的会员也约了普拉提垫上课，同样是周三 19:00" in home

    booking = engine.book(user=world.me, slot_id=world.next_museum.pk)
    page = client.get(f"/b/{booking.code}/").content.decode()
    assert "为你推荐" in page and "普拉提垫上课（静安寺店）" in page


def test_h5_home_for_visitors_shows_popular_offerings(world):
    home = Client().get("/").content.decode()
    assert "为你推荐" in home and "近期热门" in home
