"""The customer-service assistant: intent accuracy on held-out questions, and answer latency.

    python benchmarks/assistant_eval.py [--questions 300] [--scale 0.2] [--keep-model]

1. Trains the classifier on ``assistant/data/questions.jsonl`` exactly as ``yuyue assistant train``
   does (with the temperature calibration), in memory, and checks that no held-out question is in
   the training set.
2. Evaluates it on ``assistant/data/heldout.jsonl`` (never used for training): accuracy, recall and
   precision per intent, the confusion matrix (rows: true intent, columns: predicted), accuracy per
   language, and how many answers would be handed to staff (confidence below the threshold).
3. Times a full ``assistant.services.ask()`` — classification, FAQ, the user's own data, writing the
   conversation — for the demo end user (13800000001) of the demo data (``yuyue demo`` at
   ``--scale``), cycling through the held-out questions; prints p50/p95/p99 in milliseconds.

Uses YUYUE_DATABASE_URL when set; otherwise a fresh SQLite database in a temporary directory
(the demo is loaded there first). Prints one ``name: value`` per line apart from the tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict

ABBREVIATIONS = {
    "how_to_book": "book",
    "reschedule": "resch",
    "cancel": "cancl",
    "cancel_policy": "cpol",
    "notification_missing": "notif",
    "my_bookings": "mine",
    "voucher": "vouch",
    "payment_issue": "pay",
    "waitlist": "wait",
    "id_and_guardian": "id",
    "group_booking": "group",
    "opening_info": "open",
    "points": "pts",
    "invoice": "invc",
    "human_agent": "human",
    "other": "other",
}


def evaluate(keep_model: bool) -> list:
    from yuyue.assistant import classifier, services

    train = classifier.read_examples(classifier.QUESTIONS_PATH)
    held_out = classifier.read_examples(classifier.HELDOUT_PATH)
    seen = {classifier.normalise(e.text) for e in train}
    overlap = [e.text for e in held_out if classifier.normalise(e.text) in seen]
    if overlap:
        print(f"held-out questions found in the training set: {overlap}", file=sys.stderr)
        raise SystemExit(1)

    started = time.perf_counter()
    model = classifier.train(train)
    print(f"training_questions: {len(train)}")
    print(f"training_seconds: {time.perf_counter() - started:.1f}")
    print(f"features: {len(model.weights)}")
    print(f"temperature: {model.temperature:g}")
    if keep_model:
        classifier.save(model)

    intents = list(classifier.INTENTS)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    by_language: dict[str, list[bool]] = defaultdict(list)
    handoffs = 0
    bins: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for example in held_out:
        prediction = model.predict(example.text)
        confusion[example.intent][prediction.intent] += 1
        by_language[example.lang].append(prediction.intent == example.intent)
        handoffs += prediction.confidence < services.HANDOFF_BELOW
        bins[min(9, int(prediction.confidence * 10))].append(
            (prediction.confidence, prediction.intent == example.intent)
        )
    # Expected calibration error: how far stated confidence is from the share of right answers, weighted.
    ece = sum(
        abs(statistics.fmean(c for c, _ok in rows) - statistics.fmean(ok for _c, ok in rows)) * len(rows)
        for rows in bins.values()
    ) / len(held_out)
    wrong_but_sure = sum(
        1
        for e in held_out
        if (p := model.predict(e.text)).intent != e.intent and p.confidence >= services.HANDOFF_BELOW
    )
    right = sum(confusion[i][i] for i in intents)
    print(f"held_out_questions: {len(held_out)}")
    print(f"accuracy: {right / len(held_out):.4f} ({right}/{len(held_out)})")
    print(f"handed_off_for_low_confidence: {handoffs}")
    print(f"wrong_and_answered_anyway: {wrong_but_sure}")
    print(f"expected_calibration_error: {ece:.3f}")
    for language in sorted(by_language):
        results = by_language[language]
        print(f"accuracy_{language}: {sum(results) / len(results):.4f} ({sum(results)}/{len(results)})")

    print("\nintent                recall  precision  n")
    for intent in intents:
        n = sum(confusion[intent].values())
        predicted = sum(confusion[t][intent] for t in intents)
        recall = confusion[intent][intent] / n if n else 0.0
        precision = confusion[intent][intent] / predicted if predicted else 0.0
        print(f"{intent:<21} {recall:6.3f}  {precision:9.3f}  {n}")

    print("\nconfusion (rows: true, columns: predicted; . = 0)")
    print("      " + " ".join(f"{ABBREVIATIONS[i]:>5}" for i in intents))
    for true in intents:
        cells = " ".join(f"{confusion[true][p] or '.':>5}" for p in intents)
        print(f"{ABBREVIATIONS[true]:>5} {cells}")
    print()
    return held_out


def time_answers(held_out: list, count: int, scale: float) -> None:
    from django.core.management import call_command
    from django.db import connection

    from yuyue.accounts.models import EndUser
    from yuyue.accounts.services import get_or_create_user_by_phone
    from yuyue.assistant import services
    from yuyue.booking.models import Booking
    from yuyue.demo import load_demo

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    load_demo(scale=scale)
    print(f"database: {connection.vendor}")
    print(f"demo_seconds: {time.perf_counter() - started:.1f}")
    user = get_or_create_user_by_phone("13800000001")
    print(f"demo_user_bookings: {Booking.objects.filter(user=user).count()}")
    print(f"demo_bookings_total: {Booking.objects.count()}, customers: {EndUser.objects.count()}")

    services.ask(question="你好", user=user)  # the model is loaded once per process, not per answer
    timings = []
    intents: Counter[str] = Counter()
    per_intent: dict[str, list[float]] = defaultdict(list)
    cpu_timings = []
    for n in range(count):
        question = held_out[n % len(held_out)].text
        started, cpu_started = time.perf_counter(), time.process_time()
        reply = services.ask(question=question, user=user)
        timings.append((time.perf_counter() - started) * 1000)
        cpu_timings.append((time.process_time() - cpu_started) * 1000)
        intents[reply.intent] += 1
        per_intent[reply.intent].append(timings[-1])
    timings.sort()
    cpu_timings.sort()

    def pct(p: float, values: list[float] | None = None) -> float:
        values = timings if values is None else values
        return values[min(len(values) - 1, int(len(values) * p))]

    print(f"answers_timed: {count} (signed in, all intents; {intents['human_agent']} hand-offs)")
    print(f"latency_ms_p50: {pct(0.50):.1f}")
    print(f"latency_ms_p95: {pct(0.95):.1f}")
    print(f"latency_ms_p99: {pct(0.99):.1f}")
    print(f"latency_ms_max: {timings[-1]:.1f}")
    print(f"latency_ms_mean: {statistics.fmean(timings):.1f}")
    # CPU time of this process (with SQLite, the database work too): what an answer costs when the
    # machine is not shared; wall-clock figures above include waiting for the CPU.
    print(
        f"cpu_ms_p50: {pct(0.50, cpu_timings):.1f}, cpu_ms_p95: {pct(0.95, cpu_timings):.1f}, "
        f"cpu_ms_p99: {pct(0.99, cpu_timings):.1f}"
    )
    print(f"load_average_1m: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    slowest = sorted(per_intent.items(), key=lambda item: -max(item[1]))[:5]
    print("slowest_intents_ms_max: " + ", ".join(f"{intent} {max(values):.1f}" for intent, values in slowest))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=300, help="answers to time (default 300)")
    parser.add_argument("--scale", type=float, default=0.2, help="demo size (1.0: the full demo; default 0.2)")
    parser.add_argument("--keep-model", action="store_true", help="write the trained model to model.json")
    args = parser.parse_args()

    scratch = tempfile.TemporaryDirectory(prefix="yuyue-assistant-eval-")
    if not os.environ.get("YUYUE_DATABASE_URL"):
        os.environ["YUYUE_DATABASE_URL"] = f"sqlite:///{scratch.name}/eval.sqlite3"
    os.environ.setdefault("YUYUE_HOME", scratch.name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
    import django

    django.setup()
    held_out = evaluate(args.keep_model)
    time_answers(held_out, args.questions, args.scale)
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
