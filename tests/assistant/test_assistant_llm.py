"""The optional language model: it only rewords FAQ answers, is sent what it needs, and is ignored
when not configured, failing, slow, or when its wording loses a fact."""

from __future__ import annotations

import json

import pytest
from fake_http import Answer, fake_server

from yuyue.assistant import llm, services

pytestmark = pytest.mark.django_db


def completion(text: str) -> Answer:
    return Answer(body=json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}))


@pytest.fixture
def configured(settings):
    def configure(url: str) -> None:
        settings.ASSISTANT_LLM_URL = url
        settings.ASSISTANT_LLM_MODEL = "qwen2.5-7b-instruct"
        settings.ASSISTANT_LLM_KEY = "sk-test"
        settings.ASSISTANT_LLM_TIMEOUT = 2

    return configure


def test_not_configured_means_the_faq_text(studio, settings):
    settings.ASSISTANT_LLM_URL = ""
    assert not llm.enabled()
    assert "抬头和税号" in services.ask(question="怎么开发票", user=None).answer


def test_a_configured_model_rewords_the_faq_answer(studio, configured):
    with fake_server(
        lambda request: completion("您好！线上付款的订单可以找商家开票，请准备好抬头和税号哦。")
    ) as server:
        configured(server.url + "/v1")
        reply = services.ask(question="怎么开发票", user=None)
    assert reply.answer == "您好！线上付款的订单可以找商家开票，请准备好抬头和税号哦。"
    (request,) = server.received
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    sent = request.json()
    assert sent["model"] == "qwen2.5-7b-instruct"
    assert sent["messages"][0]["role"] == "system" and "Simplified Chinese" in sent["messages"][0]["content"]
    assert "怎么开发票" in sent["messages"][1]["content"] and "抬头和税号" in sent["messages"][1]["content"]


def test_answers_with_actions_and_personal_data_are_not_sent(studio, configured):
    with fake_server(lambda request: completion("改写")) as server:
        configured(server.url)
        reply = services.ask(question="改时间", user=studio.customer_a)
        points = services.ask(question="我有多少积分", user=studio.customer_a)
    assert reply.actions and "改写" not in reply.answer
    assert points.intent == "points" and "改写" not in points.answer
    assert server.received == []  # nothing of the user's own data was sent


@pytest.mark.parametrize(
    "answer",
    [
        Answer(status=500, body="upstream error"),
        Answer(body="<html>not json</html>", content_type="text/html"),
        Answer(body=json.dumps({"choices": []})),
        completion(""),
    ],
)
def test_a_failing_model_falls_back_to_the_faq(studio, configured, answer):
    with fake_server(lambda request: answer) as server:
        configured(server.url)
        reply = services.ask(question="怎么开发票", user=None)
    assert "抬头和税号" in reply.answer and len(server.received) == 1


def test_a_wording_that_loses_a_fact_is_thrown_away(studio, configured):
    with fake_server(lambda request: completion("请联系商家。")) as server:
        configured(server.url)
        reply = services.ask(question="你们电话多少", user=None, merchant=studio.merchant)
    assert "021-55550000" in reply.answer  # the FAQ text, with the merchant's phone
    assert len(server.received) == 1
