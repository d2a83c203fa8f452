"""The intent classifier: what a customer's message is about, offline, in pure Python.

A message is normalised (NFKC, so full-width letters and digits become half-width; lower case;
Traditional characters mapped to Simplified; punctuation and emoji dropped), then described by
its character 1- to 3-grams plus, for Latin text, its words, word prefixes and word pairs. A
softmax (multinomial logistic) regression over those binary features, L2-normalised per message
so a long rambling message is not more confident than a short one, picks the intent.

``train()`` fits the weights by stochastic gradient descent with a fixed seed (the same question
set always gives the same model) and calibrates the confidence: out-of-fold scores of a k-fold
split choose the softmax temperature that minimises the log-loss, so "0.8" means right about
eight times in ten. The model is a JSON file shipped with the package, loaded once per process.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
MODEL_PATH = DATA_DIR / "model.json"
QUESTIONS_PATH = DATA_DIR / "questions.jsonl"
HELDOUT_PATH = DATA_DIR / "heldout.jsonl"
WEIGHT_SCALE = 100

# The 16 intents, in the order the API documents them.
INTENTS = (
    "how_to_book",
    "reschedule",
    "cancel",
    "cancel_policy",
    "notification_missing",
    "my_bookings",
    "voucher",
    "payment_issue",
    "waitlist",
    "id_and_guardian",
    "group_booking",
    "opening_info",
    "points",
    "invoice",
    "human_agent",
    "other",
)

# Traditional → Simplified for the characters customers' questions are made of. A full
# conversion table (OpenCC) is far larger than what the classifier needs; a character that is
# missing here still works when the question set uses it, it only loses its Simplified twin.
_TRADITIONAL = (
    "預約訂時間變換動銷費錢號碼證確認嗎們個這還沒來收訊郵電話請問聯繫係轉務處遲過準備帶兒監護實戶滿額補輪隊狀態詢紀錄記載"
    "現場館營業週節區車輛機課練師讓為麼會說給幫應該辦買賣貴價餘帳賬張臺灣東無觀覽參遊導續擇選項聽見視頁顯誤錯啟註冊驗長輩齡歲"
    "學團報鬧進門傳總數線網絡夠雙從讀寫嚴舉離頭臨衝稱與壞獲試稅計標規則鐘氣雲風飛樣種後點幾專關閉間開單據發掛醫診療員積兌領"
    "優碼掃維條憑裡們聞據務檢查刪減邊麗齊愛歡謝謝鎖復雜罰扣違約金額嗯啊咧麼於義價錢現產類別號簽簡體當應盡儘陣熱闆闆鬆"
)
_SIMPLIFIED = (
    "预约订时间变换动销费钱号码证确认吗们个这还没来收讯邮电话请问联系系转务处迟过准备带儿监护实户满额补轮队状态询纪录记载"
    "现场馆营业周节区车辆机课练师让为么会说给帮应该办买卖贵价余账账张台湾东无观览参游导续择选项听见视页显误错启注册验长辈龄岁"
    "学团报闹进门传总数线网络够双从读写严举离头临冲称与坏获试税计标规则钟气云风飞样种后点几专关闭间开单据发挂医诊疗员积兑领"
    "优码扫维条凭里们闻据务检查删减边丽齐爱欢谢谢锁复杂罚扣违约金额嗯啊咧么于义价钱现产类别号签简体当应尽尽阵热板板松"
)
TRADITIONAL_TO_SIMPLIFIED = str.maketrans(_TRADITIONAL, _SIMPLIFIED)

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9']*|[0-9]+")
_SPACES = re.compile(r"\s+")
# Function words that carry no intent; dropping them keeps the word features about the request.
_ENGLISH_STOP = frozenset(
    re.findall(
        r"\S+",
        "a an the i me my we our you your it its is are was were be been am do does did to of in on at for and or "
        "can could would will should please pls plz hi hello hey there this that with have has had just so",
    )
)


def normalise(text: str) -> str:
    """NFKC, lower case, Traditional → Simplified, punctuation and emoji → spaces, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower().translate(TRADITIONAL_TO_SIMPLIFIED)
    kept = [ch if ch.isalnum() else " " for ch in text]
    return _SPACES.sub(" ", "".join(kept)).strip()


def detect_language(text: str) -> str:
    """``zh`` when the message has any Chinese character, ``en`` when it is Latin letters only."""
    if _CJK.search(text):
        return "zh"
    return "en" if re.search(r"[A-Za-z]", unicodedata.normalize("NFKC", text)) else "zh"


def features(text: str) -> list[str]:
    """The binary features of a message (deduplicated, in a stable order)."""
    norm = normalise(text)
    found: dict[str, None] = {}
    compact = f"^{norm}$"
    for n in (1, 2, 3):
        for i in range(len(compact) - n + 1):
            gram = compact[i : i + n]
            if gram.strip() and gram not in {"^", "$"}:
                found[f"c{gram}"] = None
    words = [w for w in _LATIN_WORD.findall(norm) if w not in _ENGLISH_STOP]
    for word in words:
        found[f"w{word}"] = None
        if len(word) > 4:
            found[f"p{word[:4]}"] = None  # "reschedule", "rescheduling", "reschedual" share a prefix
    for first, second in itertools.pairwise(words):
        found[f"b{first}_{second}"] = None
    return list(found)


@dataclass(frozen=True)
class Prediction:
    intent: str
    confidence: float
    language: str
    ranked: tuple[tuple[str, float], ...]  # every intent with its probability, best first


@dataclass
class Model:
    intents: tuple[str, ...]
    weights: dict[str, list[float]]
    bias: list[float]
    temperature: float = 1.0

    def scores(self, feats: Sequence[str]) -> list[float]:
        known = [self.weights[f] for f in feats if f in self.weights]
        scale = 1.0 / math.sqrt(len(feats)) if feats else 0.0
        totals = list(self.bias)
        for row in known:
            for c, w in enumerate(row):
                totals[c] += w * scale
        return totals

    def probabilities(self, text: str) -> list[float]:
        return softmax(self.scores(features(text)), self.temperature)

    def predict(self, text: str) -> Prediction:
        probs = self.probabilities(text)
        ranked = tuple(sorted(zip(self.intents, probs, strict=True), key=lambda pair: -pair[1]))
        return Prediction(ranked[0][0], ranked[0][1], detect_language(text), ranked)

    # --- storage -------------------------------------------------------------------------

    def to_json(self) -> dict:
        # Weights as whole hundredths, one row per feature: a third of the size of floats and the
        # same answers (rounding moves a score by far less than the gap between intents).
        return {
            "format": 2,
            "intents": list(self.intents),
            "temperature": round(self.temperature, 4),
            "bias": [round(b, 4) for b in self.bias],
            "scale": WEIGHT_SCALE,
            "weights": {
                feat: [round(w * WEIGHT_SCALE) for w in self.weights[feat]]
                for feat in sorted(self.weights)
                if any(round(w * WEIGHT_SCALE) for w in self.weights[feat])
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> Model:
        scale = float(data["scale"])
        weights = {feat: [w / scale for w in row] for feat, row in data["weights"].items()}
        return cls(tuple(data["intents"]), weights, [float(b) for b in data["bias"]], float(data["temperature"]))


def softmax(scores: Sequence[float], temperature: float = 1.0) -> list[float]:
    top = max(scores)
    exps = [math.exp((s - top) / temperature) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


# --- training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    lang: str = ""


def read_examples(path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["intent"] not in INTENTS:
                raise ValueError(f"{path.name}:{number}: unknown intent {row['intent']!r}")
            examples.append(Example(row["text"], row["intent"], row.get("lang", "")))
    return examples


def fit(
    examples: Sequence[Example],
    *,
    intents: Sequence[str] = INTENTS,
    epochs: int = 50,
    rate: float = 1.0,
    l2: float = 1e-4,
    seed: int = 7,
) -> Model:
    """Softmax regression by SGD over shuffled examples; temperature 1 (``train`` calibrates it)."""
    index = {intent: c for c, intent in enumerate(intents)}
    size = len(intents)
    rows = [(features(e.text), index[e.intent]) for e in examples]
    weights: dict[str, list[float]] = {}
    bias = [0.0] * size
    order = list(range(len(rows)))
    rng = random.Random(seed)
    model = Model(tuple(intents), weights, bias)
    for epoch in range(epochs):
        rng.shuffle(order)
        step = rate / (1 + epoch * 0.2)
        for i in order:
            feats, target = rows[i]
            if not feats:
                continue
            for f in feats:
                if f not in weights:
                    weights[f] = [0.0] * size
            probs = softmax(model.scores(feats))
            scale = 1.0 / math.sqrt(len(feats))
            grads = [p - (1.0 if c == target else 0.0) for c, p in enumerate(probs)]
            decay = 1.0 - step * l2
            for f in feats:
                row = weights[f]
                for c in range(size):
                    row[c] = row[c] * decay - step * grads[c] * scale
            for c in range(size):
                bias[c] -= step * grads[c] * 0.1
    return model


def _log_loss(logits: Iterable[tuple[list[float], int]], temperature: float) -> float:
    total, count = 0.0, 0
    for scores, target in logits:
        total -= math.log(max(softmax(scores, temperature)[target], 1e-12))
        count += 1
    return total / max(count, 1)


def calibrate(examples: Sequence[Example], *, folds: int = 4, seed: int = 7, **fit_options: float) -> float:
    """The temperature that makes out-of-fold probabilities honest (lowest log-loss)."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    held: list[tuple[list[float], int]] = []
    for k in range(folds):
        train_part = [e for i, e in enumerate(shuffled) if i % folds != k]
        test_part = [e for i, e in enumerate(shuffled) if i % folds == k]
        model = fit(train_part, seed=seed, **fit_options)  # type: ignore[arg-type]
        held.extend((model.scores(features(e.text)), INTENTS.index(e.intent)) for e in test_part)
    candidates = [round(0.2 + 0.05 * n, 2) for n in range(57)]  # 0.2 … 3.0
    return min(candidates, key=lambda t: _log_loss(held, t))


def train(examples: Sequence[Example], *, calibrate_folds: int = 4) -> Model:
    model = fit(examples)
    if calibrate_folds > 1:
        model.temperature = calibrate(examples, folds=calibrate_folds)
    return model


def save(model: Model, path: Path = MODEL_PATH) -> None:
    data = model.to_json()
    # One feature per line: a retrained model shows up in a diff as the lines that changed.
    rows = ",\n".join(
        f"{json.dumps(feat, ensure_ascii=False)}:{json.dumps(row, separators=(',', ':'))}"
        for feat, row in data.pop("weights").items()
    )
    head = json.dumps(data, ensure_ascii=False, separators=(",", ":"))[:-1]
    path.write_text(f'{head},"weights":{{\n{rows}\n}}}}\n', encoding="utf-8")


@cache
def load(path: Path = MODEL_PATH) -> Model:
    """The shipped model, read once per process."""
    return Model.from_json(json.loads(path.read_text(encoding="utf-8")))


def classify(text: str) -> Prediction:
    return load().predict(text)


def train_from_files(questions: Path = QUESTIONS_PATH, out: Path = MODEL_PATH) -> tuple[Model, int]:
    """``yuyue assistant train``: fit on the labelled question set and write the model file."""
    examples = read_examples(questions)
    model = train(examples)
    save(model, out)
    load.cache_clear()
    return model, len(examples)
