"""The intent classifier as shipped: accuracy on questions it was not trained on, every intent
reachable, Traditional Chinese, English, typos, and the normalisation it stands on."""

from __future__ import annotations

from collections import Counter

import pytest

from yuyue.assistant import classifier

pytestmark = pytest.mark.filterwarnings("ignore")


def test_the_held_out_set_is_never_in_the_training_set():
    trained = {classifier.normalise(e.text) for e in classifier.read_examples(classifier.QUESTIONS_PATH)}
    held_out = classifier.read_examples(classifier.HELDOUT_PATH)
    assert not [e.text for e in held_out if classifier.normalise(e.text) in trained]


def test_both_sets_cover_every_intent_with_enough_questions():
    trained = Counter(e.intent for e in classifier.read_examples(classifier.QUESTIONS_PATH))
    held_out = Counter(e.intent for e in classifier.read_examples(classifier.HELDOUT_PATH))
    assert set(trained) == set(held_out) == set(classifier.INTENTS)
    assert min(trained.values()) >= 15
    assert min(held_out.values()) >= 8
    languages = Counter(e.lang for e in classifier.read_examples(classifier.HELDOUT_PATH))
    assert {"zh-Hans", "zh-Hant", "en"} <= set(languages)


def test_at_least_95_percent_of_held_out_questions_get_the_right_intent():
    model = classifier.load()
    held_out = classifier.read_examples(classifier.HELDOUT_PATH)
    right = sum(model.predict(e.text).intent == e.intent for e in held_out)
    assert right / len(held_out) >= 0.95, f"{right}/{len(held_out)}"


def test_every_intent_is_reachable():
    model = classifier.load()
    reached = {model.predict(e.text).intent for e in classifier.read_examples(classifier.HELDOUT_PATH)}
    assert reached == set(classifier.INTENTS)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("我约了哪些", "my_bookings"),
        ("改時間可以嗎", "reschedule"),  # Traditional
        ("我的預約", "my_bookings"),
        ("can I reschedule my class", "reschedule"),  # English
        ("where is my QR code", "voucher"),
        ("ＱＲ ｃｏｄｅ？", "voucher"),  # full-width
        ("沒收到簡訊通知😢", "notification_missing"),  # Traditional with an emoji
        ("转人工！！！", "human_agent"),
        ("發票", "invoice"),
        ("cancle my booking", "cancel"),  # typo
    ],
)
def test_traditional_english_and_typos(text, intent):
    assert classifier.classify(text).intent == intent


def test_confidence_is_a_probability_and_gibberish_is_unsure():
    sure = classifier.classify("我约了哪些")
    unsure = classifier.classify("qwzx")
    assert 0.9 < sure.confidence <= 1.0
    assert unsure.confidence < 0.5
    assert abs(sum(p for _intent, p in sure.ranked) - 1.0) < 1e-6


def test_normalisation():
    assert classifier.normalise("  預約，改時間！ＡＢＣ😀 ") == "预约 改时间 abc"
    assert classifier.detect_language("How do I book?") == "en"
    assert classifier.detect_language("how 预约") == "zh"


def test_training_learns_and_is_reproducible():
    examples = [e for e in classifier.read_examples(classifier.QUESTIONS_PATH) if e.intent in {"invoice", "points"}]
    first = classifier.fit(examples, epochs=10)
    second = classifier.fit(examples, epochs=10)
    assert first.weights == second.weights
    assert first.predict("开张发票").intent == "invoice"
    assert first.predict("积分余额").intent == "points"
    restored = classifier.Model.from_json(first.to_json())
    assert restored.predict("开张发票").intent == "invoice"


def test_the_train_command_writes_a_model_that_answers(tmp_path, capsys):
    import json

    from yuyue.cli import main

    questions = tmp_path / "questions.jsonl"
    rows = [("开发票", "invoice"), ("要发票", "invoice"), ("报销凭证", "invoice"), ("积分多少", "points")]
    rows += [("我的积分", "points"), ("积分余额", "points")]
    questions.write_text("".join(json.dumps({"text": t, "intent": i}, ensure_ascii=False) + "\n" for t, i in rows))
    output = tmp_path / "model.json"
    assert main(["assistant", "train", "--questions", str(questions), "--output", str(output)]) == 0
    assert "trained on 6 questions" in capsys.readouterr().out
    model = classifier.load(output)
    assert model.predict("发票").intent == "invoice"
    assert 0 < model.temperature <= 3


def test_the_train_command_refuses_a_bad_question_file(tmp_path, capsys):
    from yuyue.cli import main

    bad = tmp_path / "questions.jsonl"
    bad.write_text('{"text": "hi", "intent": "no_such_intent"}\n')
    assert main(["assistant", "train", "--questions", str(bad), "--output", str(tmp_path / "m.json")]) == 2
    assert "no_such_intent" in capsys.readouterr().err
