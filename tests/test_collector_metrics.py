"""Derived metrics through the real collector: request, latency, token and cost series in
Prometheus, the same for llmtel's spans and for OpenLLMetry / OpenInference ones.

Three calls to gpt-4o-mini (1,000 input and 500 output tokens each) arrive as three
differently-shaped spans: llmtel's own (current GenAI semconv, cost attached), an
OpenLLMetry one (`gen_ai.system`, `gen_ai.usage.prompt_tokens`, `llm.request.type`,
no cost) and an OpenInference one (`llm.model_name`, `llm.token_count.*`, INTERNAL
kind). After normalisation they must be one series in each of llm_calls_total,
llm_tokens_total and llm_cost_usd_total. A fourth, rate-limited OpenLLMetry call,
a call tagged with an llmtel.endpoint, and a non-GenAI span complete the picture.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import poll_until
from stack import NativeStack
from test_collector_support import (
    get_json,
    new_span_id,
    new_trace_id,
    prometheus,
    prometheus_values,
    send,
    span,
    traces_payload,
)

pytestmark = pytest.mark.stack

MODEL = "gpt-4o-mini"
# gpt-4o-mini at $0.15 / $0.60 per million tokens: the collector's fallback price.
COST_PER_CALL = 1000 * 0.15e-6 + 500 * 0.60e-6


@dataclass
class Sent:
    service: str
    trace_ids: list[str]


def llmtel_span(duration_s: float) -> dict[str, Any]:
    return span(
        new_trace_id(),
        new_span_id(),
        f"chat {MODEL}",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": MODEL,
            "gen_ai.response.model": f"{MODEL}-2024-07-18",
            "gen_ai.response.id": "chatcmpl-1",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 500,
            "llmtel.cost.usd": COST_PER_CALL,
            "llmtel.outcome": "ok",
            "user.id": "u-1",
        },
        duration_s=duration_s,
    )


def openllmetry_span(duration_s: float, status: tuple[int, str] | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.system": "OpenAI",
        "llm.request.type": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.prompt_tokens": 1000,
        "gen_ai.usage.completion_tokens": 500,
        "llm.usage.total_tokens": 1500,
    }
    if status is not None:
        attributes = {"gen_ai.system": "openai", "llm.request.type": "chat"}
        attributes |= {"gen_ai.request.model": MODEL, "http.response.status_code": 429}
        attributes |= {"error.type": "RateLimitError"}
    return span(
        new_trace_id(),
        new_span_id(),
        "openai.chat",
        attributes,
        duration_s=duration_s,
        status=status,
    )


def openinference_span(duration_s: float) -> dict[str, Any]:
    return span(
        new_trace_id(),
        new_span_id(),
        "ChatCompletion",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": MODEL,
            "llm.provider": "openai",
            "llm.token_count.prompt": 1000,
            "llm.token_count.completion": 500,
            "llm.token_count.total": 1500,
        },
        kind=1,  # OpenInference reports LLM calls as INTERNAL spans
        duration_s=duration_s,
    )


@pytest.fixture(scope="module")
def sent(stack: NativeStack) -> Sent:
    """The six spans, each in its own trace, from one service."""
    service = f"llmtel-metrics-{uuid.uuid4().hex[:8]}"
    endpoint_call = llmtel_span(0.3)
    for attribute in endpoint_call["attributes"]:
        if attribute["key"] == "llmtel.cost.usd":
            attribute["value"] = {"doubleValue": 0.25}
    endpoint_call["attributes"].append(
        {"key": "llmtel.endpoint", "value": {"stringValue": "support-bot"}}
    )
    spans = [
        llmtel_span(1.5),
        openllmetry_span(3.0),
        openinference_span(70.0),
        openllmetry_span(0.2, status=(2, "Rate limit reached")),
        endpoint_call,
        # The app's HTTP server span: not an LLM call, so in no llm_* series.
        span(new_trace_id(), new_span_id(), "POST /ask", {"http.route": "/ask"}, kind=2),
    ]
    send(stack.ports.collector_otlp_http, "traces", traces_payload(service, spans))
    return Sent(service, [s["traceId"] for s in spans])


def labels(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


COMMON = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai"}


def test_three_emitters_land_in_one_request_series(stack: NativeStack, sent: Sent) -> None:
    """Verify that llmtel, OpenLLMetry and OpenInference calls count in one request series."""
    job = sent.service
    expected = {
        labels(
            __name__="llm_calls_total",
            job=job,
            gen_ai_request_model=MODEL,
            llmtel_outcome="ok",
            status_code="STATUS_CODE_UNSET",
            **COMMON,
        ): 3.0,
        labels(
            __name__="llm_calls_total",
            job=job,
            gen_ai_request_model=MODEL,
            llmtel_outcome="rate_limit",
            error_type="RateLimitError",
            status_code="STATUS_CODE_ERROR",
            **COMMON,
        ): 1.0,
        labels(
            __name__="llm_calls_total",
            job=job,
            gen_ai_request_model=MODEL,
            llmtel_endpoint="support-bot",
            llmtel_outcome="ok",
            status_code="STATUS_CODE_UNSET",
            **COMMON,
        ): 1.0,
    }

    def counted() -> None:
        assert prometheus_values(stack, f'llm_calls_total{{job="{job}"}}') == expected

    poll_until(counted, "llm_calls_total for the five LLM calls", timeout=90)


def test_three_emitters_land_in_one_token_series_per_type(stack: NativeStack, sent: Sent) -> None:
    """Verify that the three emitters' tokens add up in one llm_tokens_total series per type."""
    job = sent.service

    def token_series(token_type: str, value: float, **extra: str) -> tuple[Any, float]:
        key = labels(
            __name__="llm_tokens_total",
            job=job,
            gen_ai_request_model=MODEL,
            gen_ai_token_type=token_type,
            **COMMON,
            **extra,
        )
        return key, value

    expected = dict(
        [
            token_series("input", 3000.0),
            token_series("output", 1500.0),
            token_series("input", 1000.0, llmtel_endpoint="support-bot"),
            token_series("output", 500.0, llmtel_endpoint="support-bot"),
        ]
    )

    def counted() -> None:
        assert prometheus_values(stack, f'llm_tokens_total{{job="{job}"}}') == expected

    poll_until(counted, "llm_tokens_total for the three emitters", timeout=90)


def test_three_emitters_land_in_one_cost_series(stack: NativeStack, sent: Sent) -> None:
    """Verify that llmtel's cost and the fallback price of the other two add up in one series."""
    job = sent.service

    def counted() -> None:
        got = prometheus_values(stack, f'llm_cost_usd_total{{job="{job}"}}')
        base = {"__name__": "llm_cost_usd_total", "job": job, "gen_ai_request_model": MODEL}
        assert set(got) == {
            labels(**base, **COMMON),
            labels(**base, **COMMON, llmtel_endpoint="support-bot"),
        }
        assert got[labels(**base, **COMMON)] == pytest.approx(3 * COST_PER_CALL, rel=1e-9)
        assert got[labels(**base, **COMMON, llmtel_endpoint="support-bot")] == 0.25

    poll_until(counted, "llm_cost_usd_total for the three emitters", timeout=90)


def test_latency_histogram_uses_second_buckets_up_to_minutes(
    stack: NativeStack, sent: Sent
) -> None:
    """Verify that llm_duration_seconds puts 1.5 s, 3 s and 70 s calls in LLM-sized buckets."""
    job = sent.service
    query = f'llm_duration_seconds_bucket{{job="{job}", llmtel_outcome="ok", llmtel_endpoint=""}}'
    expected = {
        "0.1": 0.0,
        "0.25": 0.0,
        "0.5": 0.0,
        "1": 0.0,
        "2": 1.0,
        "4": 2.0,
        "8": 2.0,
        "15": 2.0,
        "30": 2.0,
        "60": 2.0,
        "120": 3.0,
        "300": 3.0,
        "+Inf": 3.0,
    }

    def bucketed() -> None:
        got = {s["metric"]["le"]: float(s["value"][1]) for s in prometheus(stack, query)}
        assert got == expected

    poll_until(bucketed, "the latency histogram of the three ok calls", timeout=90)


def test_latency_buckets_carry_exemplars_pointing_at_the_traces(
    stack: NativeStack, sent: Sent
) -> None:
    """Verify that Prometheus stores exemplars whose trace ids are the calls' traces."""
    url = (
        f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/query_exemplars?"
        f"query=llm_duration_seconds_bucket%7Bjob%3D%22{sent.service}%22%7D&start=0&end=4102444800"
    )

    def exemplars() -> set[str]:
        body = get_json(url)
        found = {e["labels"]["trace_id"] for s in body["data"] for e in s["exemplars"]}
        assert len(found) == 5, found
        return found

    found = poll_until(exemplars, "exemplars for the five LLM calls", timeout=90)
    assert found <= set(sent.trace_ids[:5])


def test_no_id_ever_becomes_a_metric_label(stack: NativeStack, sent: Sent) -> None:
    """Verify that no llm_* series carries a user, response, trace or span id label."""

    def all_series() -> list[dict[str, Any]]:
        found = prometheus(stack, f'{{__name__=~"llm_.+", job="{sent.service}"}}')
        assert {s["metric"]["__name__"] for s in found} >= {
            "llm_calls_total",
            "llm_duration_seconds_bucket",
            "llm_tokens_total",
            "llm_cost_usd_total",
        }
        return found

    series = poll_until(all_series, "every llm_* metric of the run", timeout=90)
    names = {key for s in series for key in s["metric"]}
    assert not {n for n in names if n.endswith("_id") or n in {"user_id", "session_id"}}


def test_older_and_embedding_shapes_are_normalised_too(stack: NativeStack) -> None:
    """Verify that OpenLLMetry's llm.usage.* embeddings span and an OpenInference EMBEDDING span
    with llm.system and its own llm.cost.total land in the embeddings series, exactly."""
    job = f"llmtel-metrics-legacy-{uuid.uuid4().hex[:8]}"
    model = "text-embedding-3-small"
    openllmetry = {
        "gen_ai.system": "OpenAI",
        "llm.request.type": "embedding",
        "gen_ai.request.model": model,
        "llm.usage.prompt_tokens": 700,
        "llm.usage.completion_tokens": 0,
    }
    openinference = {
        "openinference.span.kind": "EMBEDDING",
        "llm.model_name": model,
        "llm.system": "OpenAI",
        "llm.token_count.prompt": 300,
        "llm.cost.total": 0.125,
    }
    spans = [
        span(new_trace_id(), new_span_id(), "openai.embeddings", openllmetry, duration_s=0.2),
        span(new_trace_id(), new_span_id(), "Embeddings", openinference, kind=1, duration_s=0.3),
    ]
    send(stack.ports.collector_otlp_http, "traces", traces_payload(job, spans))
    common = {
        "job": job,
        "gen_ai_operation_name": "embeddings",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": model,
    }
    # text-embedding-3-small is not in the collector's fallback table: only the
    # OpenInference span's own cost counts.
    expected = {
        labels(
            __name__="llm_calls_total",
            llmtel_outcome="ok",
            status_code="STATUS_CODE_UNSET",
            **common,
        ): 2.0,
        labels(__name__="llm_tokens_total", gen_ai_token_type="input", **common): 1000.0,
        labels(__name__="llm_tokens_total", gen_ai_token_type="output", **common): 0.0,
        labels(__name__="llm_cost_usd_total", **common): 0.125,
    }
    query = f'{{__name__=~"llm_calls_total|llm_tokens_total|llm_cost_usd_total", job="{job}"}}'

    def counted() -> None:
        assert prometheus_values(stack, query) == expected

    poll_until(counted, "the embeddings calls, tokens and cost of the two shapes", timeout=90)
