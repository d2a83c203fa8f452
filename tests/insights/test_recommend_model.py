"""The recommender's arithmetic on plain data: co-booking with a minimum support, time of week, popularity."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from yuyue.core import timeutil
from yuyue.insights import recommend
from yuyue.insights.recommend import Model, TimeProfile, Visit, build_model, rank

NOW = dt.datetime(2026, 6, 10, 4, 0, tzinfo=dt.UTC)  # Wednesday 12:00 in Shanghai
YOGA, PILATES, MUSEUM, EXHIBITION = 1, 2, 3, 4


def at(days_ago: int, hour: int) -> dt.datetime:
    day = timeutil.local_date(NOW) - dt.timedelta(days=days_ago)
    return timeutil.local_datetime(day, dt.time(hour))


def history(pairs: dict[int, list[int]], *, city: str = "上海", hour: int = 19) -> list[Visit]:
    return [Visit(user, offering, at(7, hour), city) for user, offerings in pairs.items() for offering in offerings]


def test_offerings_booked_by_the_same_customers_become_neighbours():
    visits = history({1: [YOGA, PILATES], 2: [YOGA, PILATES], 3: [YOGA, PILATES], 4: [MUSEUM, EXHIBITION]})
    visits += history({5: [MUSEUM, EXHIBITION], 6: [MUSEUM, EXHIBITION], 7: [YOGA]})
    model = build_model(visits, now=NOW)

    [yoga_neighbour] = model.neighbours[YOGA]
    assert (yoga_neighbour.offering_id, yoga_neighbour.support) == (PILATES, 3)
    assert yoga_neighbour.score == pytest.approx(3 / (4 * 3) ** 0.5)
    assert [n.offering_id for n in model.neighbours[MUSEUM]] == [EXHIBITION]
    assert YOGA not in {n.offering_id for n in model.neighbours[MUSEUM]}


def test_two_customers_in_common_are_not_enough_support():
    model = build_model(history({1: [YOGA, PILATES], 2: [YOGA, PILATES], 3: [YOGA]}), now=NOW)
    assert model.neighbours == {}


def test_a_yoga_customer_is_offered_pilates_before_an_unrelated_popular_offering():
    visits = history({u: [YOGA, PILATES] for u in range(1, 5)})
    visits += history({u: [MUSEUM] for u in range(10, 30)}, hour=10)  # the museum is more popular
    model = build_model(visits, now=NOW)

    ranked = rank(model, [(YOGA, at(14, 19)), (YOGA, at(7, 19))], now=NOW)

    order = [r.offering_id for r in ranked]
    assert order.index(PILATES) < order.index(MUSEUM)
    pilates = next(r for r in ranked if r.offering_id == PILATES)
    assert (pilates.because, pilates.source_id) == (recommend.TOGETHER, YOGA)
    assert ranked[0].offering_id == YOGA and ranked[0].because == recommend.AGAIN


def test_a_new_customer_gets_what_is_popular_in_their_city_or_everywhere():
    visits = history({u: [YOGA] for u in range(1, 4)}, city="上海")
    visits += history({u: [MUSEUM] for u in range(10, 15)}, city="杭州")
    model = build_model(visits, now=NOW)

    assert [r.offering_id for r in rank(model, [], now=NOW, city="上海")] == [YOGA]
    everywhere = rank(model, [], now=NOW)
    assert [(r.offering_id, r.popular_count, r.because) for r in everywhere] == [
        (MUSEUM, 5, recommend.POPULAR),
        (YOGA, 3, recommend.POPULAR),
    ]


def test_popularity_only_counts_the_recent_window():
    old = [Visit(u, MUSEUM, at(200, 10)) for u in range(1, 10)]
    recent = [Visit(u, YOGA, at(3, 19)) for u in range(20, 22)]
    model = build_model(old + recent, now=NOW)
    assert model.popular[recommend.EVERYWHERE] == [(YOGA, 2)]


def test_the_time_profile_prefers_the_usual_weekday_and_hour():
    wednesday_7pm = at(7, 19)
    profile = TimeProfile.of([wednesday_7pm, at(14, 19), at(21, 19)])
    wednesday_bucket = recommend.bucket_of(wednesday_7pm)
    tuesday_10am = recommend.bucket_of(at(8, 10))
    thursday_7pm = recommend.bucket_of(at(6, 19))

    assert profile.at(wednesday_bucket) > profile.at(thursday_7pm) > profile.at(tuesday_10am) == 0
    assert profile.same_time(wednesday_bucket) == "weekday"
    assert profile.same_time(thursday_7pm) == "hour"
    assert profile.same_time(tuesday_10am) == ""


def test_an_offering_at_the_customers_usual_times_ranks_higher():
    # The same four customers book all three: equal co-booking, but the museum is in the mornings.
    visits = history({u: [YOGA, PILATES] for u in range(1, 5)}) + history({u: [MUSEUM] for u in range(1, 5)}, hour=10)
    model = build_model(visits, now=NOW)
    assert {n.score for n in model.neighbours[YOGA]} == {1.0}
    ranked = rank(model, [(YOGA, at(7, 19)), (YOGA, at(14, 19))], now=NOW)
    scores = {r.offering_id: r.score for r in ranked}
    assert scores[PILATES] > scores[MUSEUM]


def test_the_model_survives_its_json_form():
    model = build_model(history({u: [YOGA, PILATES] for u in range(1, 5)}), now=NOW)
    again = Model.from_json(model.to_json())
    assert again.neighbours == model.neighbours
    assert again.popular == model.popular
    assert again.footprints.keys() == model.footprints.keys()
    assert again.trained_at == model.trained_at


def test_reasons_are_short_chinese_sentences():
    profile = TimeProfile.of([at(7, 19), at(14, 19)])
    slot = at(-7, 19)  # next Wednesday 19:00
    together = recommend.Ranked(PILATES, 1.0, recommend.TOGETHER, source_id=YOGA)
    with translation.override("zh-hans"):
        text = recommend.reason(
            together,
            title="普拉提垫上课（静安寺店）",
            source_title="流瑜伽（静安寺店）",
            slot_start=slot,
            profile=profile,
        )
        assert text == "常约流瑜伽的会员也约了普拉提垫上课，同样是周三 19:00"
        again = recommend.Ranked(YOGA, 1.0, recommend.AGAIN)
        assert recommend.reason(again, title="流瑜伽", slot_start=slot, profile=profile) == (
            "你常约流瑜伽，周三 19:00 正是你常来的时间"
        )
        popular = recommend.Ranked(MUSEUM, 5.0, recommend.POPULAR, popular_count=12)
        assert recommend.reason(popular, title="美术馆", slot_start=slot, profile=TimeProfile.of([]), city="杭州") == (
            "杭州近期热门：近 60 天有 12 人预约"
        )
        same_class_elsewhere = recommend.reason(
            together, title="流瑜伽（徐汇店）", source_title="流瑜伽（静安店）", slot_start=slot, profile=profile
        )
        assert same_class_elsewhere == "常约流瑜伽（静安店）的会员也约了流瑜伽（徐汇店），同样是周三 19:00"
    with translation.override("en"):
        assert recommend.reason(
            together, title="Pilates", source_title="Yoga", slot_start=slot, profile=profile
        ).startswith("Members who often book Yoga also book Pilates")
