"""The recommender model: what people book together, when each person books, what is popular where.

Three signals, learned from booking history by ``build_model`` and combined by ``rank``:

- **co-booking** (item to item): two offerings are alike when the same customers book both —
  cosine over customers, kept only with at least ``MIN_SUPPORT`` customers in common, so that a
  couple of coincidences do not become a rule;
- **time of week**: weekday × hour buckets (Asia/Shanghai) of a customer's past slots, matched
  against each offering's own time-of-week footprint, and used again to choose the slot;
- **popularity** in a recent window, per city and overall: all a new customer can be offered,
  and a small prior for everyone else.

Plain data in, plain data out, no database: ``services.py`` reads the history and stores the
model, the benchmark trains on a hold-out split, and tests check the arithmetic directly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.utils.translation import gettext, ngettext, pgettext_lazy

from yuyue.core import timeutil

MIN_SUPPORT = 3  # customers two offerings must share before they count as booked together
MAX_NEIGHBOURS = 20  # similar offerings kept per offering
POPULAR_DAYS = 60  # the window "popular lately" looks back over
POPULAR_SIZE = 50  # offerings kept per city in the popularity lists
HALF_LIFE_DAYS = 60  # a booking this old counts half as much as one today
REPEAT_WEIGHT = 1.0  # customers come back: their own offerings are candidates too
POPULAR_WEIGHT = 0.05  # popularity only breaks ties for customers with a history
FIT_FLOOR = 0.35  # an offering at none of the customer's usual times keeps this share of its score
HOUR_SHARE = 0.3  # in the time fit, the hour of day alone (any weekday) counts this much
MAX_ITEMS_PER_CUSTOMER = 200  # pairs grow with the square: a customer's most frequent offerings only
EVERYWHERE = ""  # the popularity list over all cities

WEEKDAYS = (
    pgettext_lazy("short weekday", "Mon"),
    pgettext_lazy("short weekday", "Tue"),
    pgettext_lazy("short weekday", "Wed"),
    pgettext_lazy("short weekday", "Thu"),
    pgettext_lazy("short weekday", "Fri"),
    pgettext_lazy("short weekday", "Sat"),
    pgettext_lazy("short weekday", "Sun"),
)


@dataclass(frozen=True)
class Visit:
    """One booking as the model sees it: who, what, when (the slot's start) and in which city."""

    user_id: int
    offering_id: int
    start: dt.datetime
    city: str = ""


def bucket_of(moment: dt.datetime) -> int:
    """The time-of-week bucket of a moment: local weekday × 24 + local hour (0 … 167)."""
    local = moment.astimezone(timeutil.local_zone())
    return local.weekday() * 24 + local.hour


@dataclass(frozen=True)
class Neighbour:
    offering_id: int
    score: float  # cosine similarity over customers, 0..1
    support: int  # customers who booked both


@dataclass
class Model:
    trained_at: dt.datetime
    neighbours: dict[int, list[Neighbour]] = field(default_factory=dict)
    # city ("" = everywhere) → [(offering, customers in the window)], most booked first
    popular: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # offering → time-of-week bucket → share of its bookings
    footprints: dict[int, dict[int, float]] = field(default_factory=dict)
    popular_days: int = POPULAR_DAYS
    bookings: int = 0  # what it learned from
    customers: int = 0

    def to_json(self) -> dict:
        return {
            "trained_at": self.trained_at.isoformat(),
            "popular_days": self.popular_days,
            "bookings": self.bookings,
            "customers": self.customers,
            "neighbours": {
                str(o): [[n.offering_id, round(n.score, 6), n.support] for n in ns] for o, ns in self.neighbours.items()
            },
            "popular": {city: [[o, n] for o, n in rows] for city, rows in self.popular.items()},
            "footprints": {str(o): {str(b): round(s, 6) for b, s in fp.items()} for o, fp in self.footprints.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> Model:
        return cls(
            trained_at=dt.datetime.fromisoformat(data["trained_at"]),
            popular_days=int(data.get("popular_days", POPULAR_DAYS)),
            bookings=int(data.get("bookings", 0)),
            customers=int(data.get("customers", 0)),
            neighbours={
                int(o): [Neighbour(int(n[0]), float(n[1]), int(n[2])) for n in ns]
                for o, ns in data.get("neighbours", {}).items()
            },
            popular={city: [(int(o), int(n)) for o, n in rows] for city, rows in data.get("popular", {}).items()},
            footprints={
                int(o): {int(b): float(s) for b, s in fp.items()} for o, fp in data.get("footprints", {}).items()
            },
        )


def build_model(
    visits: Iterable[Visit],
    *,
    now: dt.datetime,
    min_support: int = MIN_SUPPORT,
    popular_days: int = POPULAR_DAYS,
) -> Model:
    """Learn co-booking neighbours, time-of-week footprints and recent popularity from visits.

    ``visits`` is read once, so it may be a stream straight from the database.
    """
    items_of: dict[int, Counter[int]] = defaultdict(Counter)
    footprint_counts: dict[int, Counter[int]] = defaultdict(Counter)
    recent: dict[str, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    since = now - dt.timedelta(days=popular_days)
    bookings = 0
    for visit in visits:
        bookings += 1
        items_of[visit.user_id][visit.offering_id] += 1
        footprint_counts[visit.offering_id][bucket_of(visit.start)] += 1
        if visit.start >= since:  # upcoming bookings say what is popular too
            recent[EVERYWHERE][visit.offering_id].add(visit.user_id)
            if visit.city:
                recent[visit.city][visit.offering_id].add(visit.user_id)

    customers_of: Counter[int] = Counter()
    together: Counter[tuple[int, int]] = Counter()
    for items in items_of.values():
        kept = sorted(o for o, _n in items.most_common(MAX_ITEMS_PER_CUSTOMER))
        customers_of.update(kept)
        together.update(itertools.combinations(kept, 2))

    neighbours: dict[int, list[Neighbour]] = defaultdict(list)
    for (a, b), support in together.items():
        if support < min_support:
            continue
        score = support / math.sqrt(customers_of[a] * customers_of[b])
        neighbours[a].append(Neighbour(b, score, support))
        neighbours[b].append(Neighbour(a, score, support))
    for offering, found in neighbours.items():
        neighbours[offering] = sorted(found, key=lambda n: (-n.score, -n.support, n.offering_id))[:MAX_NEIGHBOURS]

    popular = {
        city: sorted(((o, len(users)) for o, users in by_offering.items()), key=lambda r: (-r[1], r[0]))[:POPULAR_SIZE]
        for city, by_offering in recent.items()
    }
    footprints = {o: _shares(counts) for o, counts in footprint_counts.items()}
    return Model(
        trained_at=now,
        neighbours=dict(neighbours),
        popular=popular,
        footprints=footprints,
        popular_days=popular_days,
        bookings=bookings,
        customers=len(items_of),
    )


def _shares(counts: Counter[int]) -> dict[int, float]:
    total = sum(counts.values())
    return {key: n / total for key, n in counts.items()} if total else {}


# --------------------------------------------------------------------------------------------
# A customer's time of week
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeProfile:
    """When a customer books: shares per time-of-week bucket and per hour of day."""

    buckets: dict[int, float]
    hours: dict[int, float]

    @classmethod
    def of(cls, starts: Iterable[dt.datetime]) -> TimeProfile:
        buckets = Counter(bucket_of(s) for s in starts)
        hours: Counter[int] = Counter()
        for bucket, n in buckets.items():
            hours[bucket % 24] += n
        return cls(_shares(buckets), _shares(hours))

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def at(self, bucket: int) -> float:
        """How usual this time is for the customer, 0..1; the neighbouring hours count half."""
        day, hour = divmod(bucket, 24)
        near = sum(self.buckets.get(day * 24 + h, 0.0) for h in (hour - 1, hour + 1) if 0 <= h < 24)
        exact = self.buckets.get(bucket, 0.0) + 0.5 * near
        any_day = self.hours.get(hour, 0.0)
        return min(1.0, (1 - HOUR_SHARE) * exact + HOUR_SHARE * any_day)

    def fit(self, footprint: dict[int, float]) -> float:
        """How well an offering's times suit the customer: overlap of the two distributions, 0..1."""
        if not footprint:
            return 0.0
        exact = sum(min(self.buckets.get(b, 0.0), share) for b, share in footprint.items())
        by_hour: dict[int, float] = defaultdict(float)
        for bucket, share in footprint.items():
            by_hour[bucket % 24] += share
        any_day = sum(min(self.hours.get(h, 0.0), share) for h, share in by_hour.items())
        return min(1.0, (1 - HOUR_SHARE) * exact + HOUR_SHARE * any_day)

    def same_time(self, bucket: int) -> str:
        """How the slot's time is usual for the customer: "weekday" (that weekday and hour), "hour", or "" (not)."""
        if self.buckets.get(bucket, 0.0) >= 0.1:
            return "weekday"
        if self.hours.get(bucket % 24, 0.0) >= 0.2:
            return "hour"
        return ""


# --------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------

AGAIN, TOGETHER, POPULAR = "again", "together", "popular"


@dataclass(frozen=True)
class Ranked:
    """An offering worth showing, with the signal that put it there (for the reason)."""

    offering_id: int
    score: float
    because: str  # AGAIN, TOGETHER or POPULAR
    source_id: int | None = None  # TOGETHER: the customer's offering it was booked together with
    popular_count: int = 0  # customers who booked it in the popularity window


def rank(
    model: Model,
    history: Sequence[tuple[int, dt.datetime]],
    *,
    now: dt.datetime,
    city: str = "",
    limit: int = 30,
) -> list[Ranked]:
    """Offerings for a customer with this history of (offering, slot start), best first.

    Without a history: what is popular in the city (else everywhere) lately.
    """
    popular_rows = model.popular.get(city) or model.popular.get(EVERYWHERE, [])
    popular_count = dict(popular_rows)
    if not history:
        return [Ranked(o, float(n), POPULAR, popular_count=n) for o, n in popular_rows[:limit]]

    weights: Counter[int] = Counter()
    for offering_id, start in history:
        age_days = max((now - start).total_seconds() / 86400, 0.0)
        weights[offering_id] += 0.5 ** (age_days / HALF_LIFE_DAYS)
    total = sum(weights.values())
    own = {o: w / total for o, w in weights.items()}

    repeat: dict[int, float] = {o: REPEAT_WEIGHT * share for o, share in own.items()}
    together: dict[int, float] = defaultdict(float)
    best_source: dict[int, tuple[float, int]] = {}
    for offering_id, share in own.items():
        for n in model.neighbours.get(offering_id, ()):
            contribution = share * n.score
            together[n.offering_id] += contribution
            if contribution > best_source.get(n.offering_id, (0.0, 0))[0]:
                best_source[n.offering_id] = (contribution, offering_id)
    top_popular = popular_rows[0][1] if popular_rows else 0
    popularity = {o: POPULAR_WEIGHT * n / top_popular for o, n in popular_rows} if top_popular else {}

    profile = TimeProfile.of(start for _o, start in history)
    ranked = []
    for offering_id in set(repeat) | set(together) | set(popularity):
        parts = {
            AGAIN: repeat.get(offering_id, 0.0),
            TOGETHER: together.get(offering_id, 0.0),
            POPULAR: popularity.get(offering_id, 0.0),
        }
        score = sum(parts.values()) * (FIT_FLOOR + (1 - FIT_FLOOR) * profile.fit(model.footprints.get(offering_id, {})))
        because = max(parts, key=lambda k: parts[k])
        source = best_source[offering_id][1] if because == TOGETHER else None
        ranked.append(Ranked(offering_id, score, because, source, popular_count.get(offering_id, 0)))
    ranked.sort(key=lambda r: (-r.score, r.offering_id))
    return ranked[:limit]


# --------------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------------

_BRACKETED_TAIL = re.compile(r"\s*[（(][^（）()]*[）)]\s*$")


def short_title(title: str) -> str:
    """A title without its bracketed tail ("流瑜伽（静安寺店）" → "流瑜伽"), for sentences."""
    return _BRACKETED_TAIL.sub("", title) or title


def when_text(start: dt.datetime, *, with_weekday: bool = True) -> str:
    local = start.astimezone(timeutil.local_zone())
    return f"{WEEKDAYS[local.weekday()]} {local:%H:%M}" if with_weekday else f"{local:%H:%M}"


def reason(
    ranked: Ranked,
    *,
    title: str,
    source_title: str = "",
    slot_start: dt.datetime | None,
    profile: TimeProfile,
    city: str = "",
    popular_days: int = POPULAR_DAYS,
) -> str:
    """One short sentence saying why (translated: Chinese by default)."""
    same = profile.same_time(bucket_of(slot_start)) if slot_start is not None and profile else ""
    when = when_text(slot_start, with_weekday=same != "hour") if slot_start is not None else ""
    target = short_title(title)
    if ranked.because == TOGETHER and source_title:
        source = short_title(source_title)
        if source == target:  # the same class at another branch: the full titles tell them apart
            source, target = source_title, title
        if same:
            return gettext("Members who often book %(source)s also book %(target)s, at your usual time: %(when)s") % {
                "source": source,
                "target": target,
                "when": when,
            }
        return gettext("Members who often book %(source)s also book %(target)s") % {"source": source, "target": target}
    if ranked.because == AGAIN:
        if same:
            return gettext("You often book %(target)s; %(when)s is your usual time") % {"target": target, "when": when}
        if when:
            return gettext("You often book %(target)s; there are places on %(when)s") % {"target": target, "when": when}
        return gettext("You often book %(target)s") % {"target": target}
    count = ranked.popular_count
    if city:
        return ngettext(
            "Popular in %(city)s: %(count)d customer booked it in the last %(days)d days",
            "Popular in %(city)s: %(count)d customers booked it in the last %(days)d days",
            count,
        ) % {"city": city, "count": count, "days": popular_days}
    return ngettext(
        "Popular lately: %(count)d customer booked it in the last %(days)d days",
        "Popular lately: %(count)d customers booked it in the last %(days)d days",
        count,
    ) % {"count": count, "days": popular_days}
