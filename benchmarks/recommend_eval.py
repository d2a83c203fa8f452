"""Offline evaluation of the recommender on the demo history, against a popularity baseline.

    .venv/bin/python benchmarks/recommend_eval.py [--scale 1.0] [--holdout 1]

Loads the demo (``yuyue demo``'s builder) into a fresh SQLite database in a temporary YUYUE_HOME
(or the database of YUYUE_DATABASE_URL when set: use a scratch one), then for every customer
with enough bookings holds out their last --holdout bookings (by slot time), trains on all the
other bookings, and asks for the top 5 offerings. A hit is a held-out booking's offering among
them. Prints one `name: value` per line: customers evaluated, hit-rate@5 and NDCG@5 of the
recommender, of the popularity baseline (the 5 most booked offerings lately) and, for reference,
of "your own most booked offerings"; the same on the held-out bookings of offerings the customer
had never booked before (what co-booking is for); and the latency of ``recommend()`` — the full
serving path with slots and rules — over every customer, as wall time and as CPU time (the
two differ when other processes share the cores).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

TOP = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="demo size (1.0: 200 customers)")
    parser.add_argument("--holdout", type=int, default=1, choices=(1, 2), help="last bookings held out per customer")
    parser.add_argument("--min-history", type=int, default=3, help="bookings a customer needs left to train on")
    args = parser.parse_args()

    if not os.environ.get("YUYUE_DATABASE_URL"):
        home = Path(tempfile.mkdtemp(prefix="yuyue-recommend-eval-"))
        os.environ["YUYUE_HOME"] = str(home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
    src = Path(__file__).resolve().parent.parent / "src"
    sys.path.insert(0, str(src))
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import translation

    from yuyue import demo
    from yuyue.accounts.models import EndUser
    from yuyue.booking.models import Booking
    from yuyue.core import timeutil
    from yuyue.insights import recommend, services

    translation.activate("zh-hans")
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    demo.load_demo(scale=args.scale)
    print(f"demo_load_seconds: {time.perf_counter() - started:.1f}")

    now = timeutil.now()
    by_user: dict[int, list[tuple[int, int, object]]] = defaultdict(list)
    for pk, user_id, offering_id, start in (
        Booking.objects.filter(status__in=services.INTEREST_STATUSES)
        .order_by("slot__start", "id")
        .values_list("id", "user_id", "offering_id", "slot__start")
    ):
        by_user[user_id].append((pk, offering_id, start))
    held_out: dict[int, list[tuple[int, int, object]]] = {
        user_id: rows[-args.holdout :]
        for user_id, rows in by_user.items()
        if len(rows) >= args.min_history + args.holdout
    }
    excluded = {pk for rows in held_out.values() for pk, _o, _s in rows}
    visits = list(services.history_visits(now=now, exclude_booking_ids=excluded))
    model = recommend.build_model(visits, now=now)
    training: dict[int, list[tuple[int, object]]] = defaultdict(list)
    for visit in visits:
        training[visit.user_id].append((visit.offering_id, visit.start))
    popular = [o for o, _n in model.popular.get(recommend.EVERYWHERE, [])][:TOP]

    scores: dict[str, list[tuple[float, float]]] = defaultdict(list)
    fresh: dict[str, list[float]] = defaultdict(list)
    for user_id, rows in held_out.items():
        history = training[user_id]
        targets = {o for _pk, o, _s in rows}
        seen = {o for o, _s in history}
        own = Counter(o for o, _s in history)
        lists = {
            "recommender": [r.offering_id for r in recommend.rank(model, history, now=now, limit=TOP)],
            "baseline_popular": popular,
            "reference_own_most_booked": _fill([o for o, _n in own.most_common()], popular),
        }
        for name, top in lists.items():
            scores[name].append(_hit_and_ndcg(top[:TOP], targets))
            for target in targets - seen:
                fresh[name].append(1.0 if target in top[:TOP] else 0.0)

    print(f"customers_with_bookings: {len(by_user)}")
    print(f"customers_evaluated: {len(held_out)}")
    print(f"held_out_bookings: {len(excluded)}")
    print(f"training_bookings: {len(visits)}")
    print(f"offerings_with_neighbours: {len(model.neighbours)}")
    for name in ("recommender", "baseline_popular", "reference_own_most_booked"):
        hits = [h for h, _n in scores[name]]
        ndcgs = [n for _h, n in scores[name]]
        print(f"{name}_hit_rate@{TOP}: {statistics.fmean(hits):.3f}")
        print(f"{name}_ndcg@{TOP}: {statistics.fmean(ndcgs):.3f}")
    print(f"new_to_customer_held_out: {len(fresh['recommender'])}")
    for name in ("recommender", "baseline_popular", "reference_own_most_booked"):
        values = fresh[name]
        print(f"{name}_new_offering_hit_rate@{TOP}: {statistics.fmean(values) if values else 0.0:.3f}")

    services.train(now=now)
    users = list(EndUser.objects.order_by("id"))
    services.recommend(user=users[0], limit=TOP)  # loads the model into this process
    latencies, cpu = [], []
    served = Counter()
    for user in users:
        t0, c0 = time.perf_counter(), time.process_time()
        found = services.recommend(user=user, limit=TOP)
        latencies.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        served[len(found)] += 1
        for item in found:
            served[item.because] += 1
    print(f"serving_users: {len(users)}")
    for p in (50, 95, 99):
        print(f"serving_p{p}_ms: {_percentile(latencies, p):.1f}")
    # CPU time of the serving process: what the wall time is on a machine with no other load.
    for p in (50, 95, 99):
        print(f"serving_cpu_p{p}_ms: {_percentile(cpu, p):.1f}")
    print(f"load_average_1min: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"serving_full_lists: {served[TOP]}")
    print(f"served_reasons: again={served['again']} together={served['together']} popular={served['popular']}")
    sample = next((r for u in users for r in services.recommend(user=u, limit=TOP) if r.because == "together"), None)
    if sample is not None:
        print(f"sample_reason: {sample.reason}")
    return 0


def _percentile(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def _fill(first: list[int], rest: list[int]) -> list[int]:
    out = list(dict.fromkeys(first))
    out += [o for o in rest if o not in out]
    return out[:TOP]


def _hit_and_ndcg(top: list[int], targets: set[int]) -> tuple[float, float]:
    gains = [1.0 / math.log2(rank + 2) for rank, offering in enumerate(top) if offering in targets]
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(targets), TOP)))
    return (1.0 if gains else 0.0), (sum(gains) / ideal if ideal else 0.0)


if __name__ == "__main__":
    sys.exit(main())
