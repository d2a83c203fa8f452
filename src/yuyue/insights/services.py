"""Recommendations: train the model from booking history, and serve it with concrete slots.

``train()`` reads the history, builds the model (``recommend.py``) and stores it as one
``RecommenderSnapshot``; ``recommend()`` ranks offerings for a customer from the newest snapshot
(kept in memory per process) and picks, for each, the upcoming slot that suits them best — only
slots with places left, inside the booking window, that the customer may book: not banned at the
merchant, a person with a resident ID when the offering needs real names, the daily limit there
not used yet, not a slot they hold already or one that clashes with their other bookings.
The engine (``booking.services``) still decides at booking time; this only avoids offering
what it would refuse.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, prefetch_related_objects

from yuyue.accounts import services as accounts
from yuyue.accounts.models import Ban, EndUser, Person
from yuyue.booking import services as engine
from yuyue.booking.models import ACTIVE_STATUSES, Booking, Claim, Status
from yuyue.catalog.models import Offering
from yuyue.core import timeutil
from yuyue.insights import recommend as model_lib
from yuyue.insights.models import RecommenderSnapshot
from yuyue.scheduling.models import Slot, SlotStatus
from yuyue.tenants.models import Branch

HISTORY_DAYS = 365  # training looks back this far (by slot start)
SNAPSHOTS_KEPT = 3
STALE_AFTER = dt.timedelta(hours=1)  # the periodic job retrains a model older than this
HORIZON_DAYS = 10  # slots offered start within this many days (every weekday at least once)
CANDIDATES_PER_RESULT = 6  # ranked offerings looked at per result asked for (some have no slot)
CUSTOMER_HISTORY = 300  # a customer's most recent bookings used to rank for them
# Bookings that show what someone wants; rejected and expired ones say little about the customer.
INTEREST_STATUSES = tuple(sorted({*ACTIVE_STATUSES, Status.CANCELLED, Status.REFUNDED}))


@dataclass(frozen=True)
class Recommendation:
    offering: Offering
    slot: Slot | None
    reason: str
    because: str  # recommend.AGAIN, TOGETHER or POPULAR


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def offering_cities() -> dict[int, str]:
    """Each offering's city: its branch's, else its merchant's first branch with a city."""
    merchant_city: dict[int, str] = {}
    for merchant_id, city in Branch.objects.exclude(city="").order_by("id").values_list("merchant_id", "city"):
        merchant_city.setdefault(merchant_id, city)
    return {
        pk: branch_city or merchant_city.get(merchant_id, "")
        for pk, branch_city, merchant_id in Offering.objects.values_list("id", "branch__city", "merchant_id")
    }


def history_visits(
    *, now: dt.datetime, exclude_booking_ids: Iterable[int] = (), days: int = HISTORY_DAYS
) -> Iterator[model_lib.Visit]:
    """Every booking that shows interest, as model visits (slot start, offering's city), streamed."""
    cities = offering_cities()
    rows = Booking.objects.filter(
        status__in=INTEREST_STATUSES, slot__start__gte=now - dt.timedelta(days=days)
    ).values_list("id", "user_id", "offering_id", "slot__start")
    excluded = set(exclude_booking_ids)
    for pk, user_id, offering_id, start in rows.iterator(chunk_size=5000):
        if pk not in excluded:
            yield model_lib.Visit(user_id, offering_id, start, cities.get(offering_id, ""))


def train(*, now: dt.datetime | None = None) -> RecommenderSnapshot:
    """Learn from the booking history and store the model; older snapshots beyond a few are dropped."""
    now = now or timeutil.now()
    model = model_lib.build_model(history_visits(now=now), now=now)
    with transaction.atomic():
        snapshot = RecommenderSnapshot.objects.create(
            trained_at=now,
            bookings=model.bookings,
            users=model.customers,
            offerings=len(model.footprints),
            data=model.to_json(),
        )
        old = RecommenderSnapshot.objects.order_by("-id").values_list("id", flat=True)[SNAPSHOTS_KEPT:]
        RecommenderSnapshot.objects.filter(pk__in=list(old)).delete()
    return snapshot


def train_if_stale(*, now: dt.datetime | None = None, max_age: dt.timedelta = STALE_AFTER) -> int:
    """Retrain when there is no model or the newest is older than ``max_age``; 1 if it trained."""
    now = now or timeutil.now()
    newest = RecommenderSnapshot.objects.order_by("-id").values_list("trained_at", flat=True).first()
    if newest is not None and now - newest < max_age:
        return 0
    train(now=now)
    return 1


_cache_lock = threading.Lock()
_cached: tuple[tuple[int, dt.datetime], model_lib.Model] | None = None


def current_model() -> model_lib.Model:
    """The newest model, loaded once per process and snapshot (one query to see which is newest).

    With no model yet (a fresh installation before the periodic job ran) it trains one now.
    """
    global _cached
    newest = RecommenderSnapshot.objects.order_by("-id").values_list("id", "trained_at").first()
    cached = _cached
    if cached is not None and cached[0] == newest:
        return cached[1]
    snapshot = RecommenderSnapshot.objects.filter(pk=newest[0]).first() if newest is not None else None
    if snapshot is None:
        snapshot = train()
    loaded = model_lib.Model.from_json(snapshot.data)
    with _cache_lock:
        _cached = ((snapshot.pk, snapshot.trained_at), loaded)
    return loaded


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Held:
    """One of the customer's bookings, as far as serving needs it."""

    offering_id: int
    start: dt.datetime
    end: dt.datetime
    active: bool


class _Rules:
    """What the customer may book, looked up lazily and once: bans per merchant, an ID, used daily limits."""

    def __init__(self, user: EndUser | None, now: dt.datetime) -> None:
        self.user = user
        self.now = now
        self._banned: dict[int, bool] = {}
        self._ever_banned: bool | None = None
        self._has_id: bool | None = None
        self._day_claims: Counter[str] | None = None

    def may_book(self, offering: Offering) -> bool:
        if self.banned(offering.merchant_id):
            return False
        return not offering.policy.real_name or self.has_id_person()

    def banned(self, merchant_id: int) -> bool:
        if self.user is None:
            return False
        if self._ever_banned is None:  # most customers never were: one query instead of one per merchant
            self._ever_banned = Ban.objects.filter(user=self.user).exists()
        if not self._ever_banned:
            return False
        if merchant_id not in self._banned:
            ban = accounts.active_ban(user=self.user, merchant_id=merchant_id, at=self.now)
            self._banned[merchant_id] = ban is not None
        return self._banned[merchant_id]

    def has_id_person(self) -> bool:
        if self.user is None:
            return True  # anyone may sign up and add one; the form asks for it
        if self._has_id is None:
            self._has_id = Person.objects.filter(owner=self.user, is_deleted=False).exclude(id_hash="").exists()
        return self._has_id

    def daily_limit_used(self, slot: Slot, limit: int) -> bool:
        """Whether one of the customer's people already holds ``limit`` bookings that day in the scope."""
        if self.user is None:
            return False
        prefix = engine.daily_limit_prefix(slot)
        if prefix is None:
            return False
        if self._day_claims is None:
            keys = Claim.objects.filter(booking__user=self.user, key__startswith="day:").values_list("key", flat=True)
            self._day_claims = Counter(key.rsplit("#", 1)[0] for key in keys)
        return any(n >= limit for key, n in self._day_claims.items() if key.startswith(prefix))


def recommend(
    *, user: EndUser | None, limit: int = 5, city: str = "", now: dt.datetime | None = None
) -> list[Recommendation]:
    """Up to ``limit`` offerings for this customer (None: a visitor), each with a slot and a reason."""
    now = now or timeutil.now()
    model = current_model()
    held = _held_bookings(user) if user is not None else []
    history = [(h.offering_id, h.start) for h in held]
    ranked = model_lib.rank(model, history, now=now, city=city, limit=limit * CANDIDATES_PER_RESULT)
    if not ranked:
        return []
    wanted = {r.offering_id for r in ranked} | {r.source_id for r in ranked if r.source_id}
    offerings = {
        o.pk: o
        for o in Offering.objects.filter(pk__in=wanted, is_active=True, merchant__is_active=True).select_related(
            "merchant", "branch"
        )
    }
    profile = model_lib.TimeProfile.of(start for _offering, start in history)
    rules = _Rules(user, now)
    busy = [(h.start, h.end) for h in held if h.active and h.end > now]

    picks: list[tuple[model_lib.Ranked, Offering, Slot]] = []
    pending = [r for r in ranked if r.offering_id in offerings]
    while pending and len(picks) < limit:
        # Slots are read for a few offerings at a time, best ranked first: usually one batch is enough.
        batch, pending = pending[: limit + 2], pending[limit + 2 :]
        allowed = [r for r in batch if rules.may_book(offerings[r.offering_id])]
        rows = _open_slot_rows([r.offering_id for r in allowed], now)
        for item in allowed:
            offering = offerings[item.offering_id]
            slot = _best_slot(offering, rows.get(offering.pk, []), profile=profile, busy=busy, rules=rules)
            if slot is not None:
                picks.append((item, offering, slot))
                if len(picks) == limit:
                    break

    prefetch_related_objects([slot for _i, _o, slot in picks], "resources")
    return [
        Recommendation(
            offering=offering,
            slot=slot,
            reason=model_lib.reason(
                item,
                title=offering.title,
                source_title=offerings[item.source_id].title if item.source_id in offerings else "",
                slot_start=slot.start,
                profile=profile,
                city=city if item.because == model_lib.POPULAR and city in model.popular else "",
                popular_days=model.popular_days,
            ),
            because=item.because,
        )
        for item, offering, slot in picks
    ]


def _held_bookings(user: EndUser) -> list[_Held]:
    rows = (
        Booking.objects.filter(user=user, status__in=INTEREST_STATUSES)
        .order_by("-slot__start")
        .values_list("offering_id", "slot__start", "slot__end", "status")[:CUSTOMER_HISTORY]
    )
    return [_Held(o, start, end, status in ACTIVE_STATUSES) for o, start, end, status in rows]


_SlotRow = tuple[int, dt.datetime, dt.datetime, int, int, int | None]  # id, start, end, capacity, reserved, price


def _open_slot_rows(offering_ids: list[int], now: dt.datetime) -> dict[int, list[_SlotRow]]:
    """Open slots of these offerings starting within the horizon, with places left (plain rows)."""
    rows = (
        Slot.objects.filter(
            offering_id__in=offering_ids,
            status=SlotStatus.OPEN,
            start__gt=now,
            start__lt=now + dt.timedelta(days=HORIZON_DAYS),
            reserved__lt=F("capacity"),
        )
        .order_by("start", "id")
        .values_list("offering_id", "id", "start", "end", "capacity", "reserved", "price_fen")
    )
    found: dict[int, list[_SlotRow]] = defaultdict(list)
    for offering_id, pk, start, end, capacity, reserved, price_fen in rows:
        found[offering_id].append((pk, start, end, capacity, reserved, price_fen))
    return found


def _best_slot(
    offering: Offering,
    rows: list[_SlotRow],
    *,
    profile: model_lib.TimeProfile,
    busy: list[tuple[dt.datetime, dt.datetime]],
    rules: _Rules,
) -> Slot | None:
    """The slot at the customer's most usual time (the soonest among equals) that they can book now.

    Candidates are tried best first and only the first that passes is made a model object: a
    request looks at hundreds of rows but checks only a few.
    """
    policy = offering.policy
    by_fit = sorted(rows, key=lambda r: (-round(profile.at(model_lib.bucket_of(r[1])), 3), r[1]))
    for pk, start, end, capacity, reserved, price_fen in by_fit:
        if any(start < busy_end and busy_start < end for busy_start, busy_end in busy):
            continue  # they hold this slot, or another booking at that time
        slot = Slot(
            pk=pk,
            offering=offering,
            start=start,
            end=end,
            capacity=capacity,
            reserved=reserved,
            price_fen=price_fen,
            status=SlotStatus.OPEN,
        )
        opens_at = engine.booking_opens_at(slot, policy)
        if opens_at is not None and opens_at > rules.now:
            continue
        if rules.now >= engine.booking_closes_at(slot, policy):
            continue
        if policy.per_person_per_day and rules.daily_limit_used(slot, policy.per_person_per_day):
            continue
        return slot
    return None
