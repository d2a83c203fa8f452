"""Optional phrasing of FAQ answers by a language model behind an OpenAI-compatible endpoint.

Never required: without ``YUYUE_ASSISTANT_LLM_URL`` (or when the model is slow, down or answers
something odd) the FAQ text is the answer. The model only rewords; the intent, the actions and
every personal detail come from the classifier and the user's own data, and a rewording that
drops a booking code, a number or a phone number is thrown away.
"""

from __future__ import annotations

import logging
import re

import httpx
from django.conf import settings

from yuyue.integrations.http import json_object

log = logging.getLogger(__name__)
MAX_ANSWER_CHARS = 2000
# Facts a rewording must keep word for word: booking codes, numbers (times, prices, phones).
_FACTS = re.compile(r"[A-Z0-9]{6,}|\d+(?:[.:-]\d+)*")

SYSTEM_PROMPT = (
    "You are the customer-service assistant of a booking platform. Rewrite the given answer so that it "
    "replies naturally to the customer's message, in {language}, in at most three short sentences. Keep every "
    "fact, number, time, phone number and booking code exactly; add nothing that is not in the answer."
)
LANGUAGES = {"zh": "Simplified Chinese", "en": "English"}


def enabled() -> bool:
    return bool(settings.ASSISTANT_LLM_URL and settings.ASSISTANT_LLM_MODEL)


def endpoint() -> str:
    url: str = settings.ASSISTANT_LLM_URL
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def rephrase(*, question: str, answer: str, language: str) -> str | None:
    """The model's wording of ``answer``, or None (not configured, failed, or facts lost)."""
    if not enabled():
        return None
    headers = {"Authorization": f"Bearer {settings.ASSISTANT_LLM_KEY}"} if settings.ASSISTANT_LLM_KEY else {}
    body = {
        "model": settings.ASSISTANT_LLM_MODEL,
        "temperature": 0.2,
        "max_tokens": 400,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT.format(language=LANGUAGES.get(language, "Simplified Chinese"))},
            {"role": "user", "content": f"Customer: {question}\n\nAnswer to rewrite:\n{answer}"},
        ],
    }
    try:
        response = httpx.post(endpoint(), json=body, headers=headers, timeout=settings.ASSISTANT_LLM_TIMEOUT)
        response.raise_for_status()
        text = json_object(response.text)["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("assistant LLM not used: %s", exc)
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()[:MAX_ANSWER_CHARS]
    missing = set(_FACTS.findall(answer)) - set(_FACTS.findall(text))
    if missing:
        log.warning("assistant LLM answer dropped %s; the FAQ text is used", sorted(missing)[:5])
        return None
    return text
