"""Known calls through the real SDK, collector and backends land exactly where they should.

Twenty chat calls, two models, three made to fail with HTTP 500 by the demo server,
go through the real ``openai`` SDK with llmtel instrumenting it, over OTLP into the
real collector on the repo's config, then into Prometheus, Jaeger and VictoriaLogs.
Each backend is asked over its HTTP API for exactly what that traffic implies.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from conftest import poll_until
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from stack import NativeStack

import llmtel
from llmtel import _setup
from llmtel.demo.server import DemoServer

pytestmark = pytest.mark.stack

# (model, fails with HTTP 500, prompt): 20 calls, 12 + 8, three failures.
CALLS: list[tuple[str, bool, str]] = [
    *[("gpt-4o-mini", i in (3, 7), f"Summarise ticket number {i} in one line") for i in range(12)],
    *[("gpt-4o", i == 5, f"Draft a polite reply to customer {i} please") for i in range(8)],
]


@dataclass
class Sent:
    """What the test sent, and what the SDK and llmtel saw of it."""

    service: str
    outcomes: Counter[tuple[str, str]]
    spans: list[ReadableSpan]
    usage: dict[str, tuple[int, int]]  # response id -> (prompt tokens, completion tokens)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def sent(stack: NativeStack) -> Iterator[Sent]:
    """Send the twenty calls once, then flush llmtel so every record has left the app."""
    service = f"llmtel-e2e-{uuid.uuid4().hex[:8]}"
    llmtel.init(
        service_name=service,
        endpoint=f"http://127.0.0.1:{stack.ports.collector_otlp_http}",
    )
    # A second processor on llmtel's provider: it records the span ids the test
    # looks up later; the OTLP export to the collector is untouched. Not the global
    # provider: OTel sets that once per process, and an earlier test's init took it.
    observed = InMemorySpanExporter()
    pipeline = _setup._pipeline
    assert pipeline is not None, "llmtel.init did not start"
    provider = pipeline.tracer_provider
    provider.add_span_processor(SimpleSpanProcessor(observed))

    outcomes: Counter[tuple[str, str]] = Counter()
    usage: dict[str, tuple[int, int]] = {}
    with DemoServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        for model, fails, prompt in CALLS:
            headers = {"x-llmtel-demo-fail": "500"} if fails else {}
            try:
                response = client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": prompt}],
                    temperature=0.2,
                    extra_headers=headers,
                )
            except openai.InternalServerError:
                outcomes[model, "server_error"] += 1
            else:
                outcomes[model, "ok"] += 1
                assert response.usage is not None
                usage[response.id] = (
                    response.usage.prompt_tokens,
                    response.usage.completion_tokens,
                )
    assert llmtel.force_flush(timeout_s=10)
    yield Sent(service, outcomes, list(observed.get_finished_spans()), usage)
    llmtel.shutdown()


def prometheus_vector(stack: NativeStack, query: str) -> dict[tuple[str, ...], float]:
    url = f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    body = get_json(url)
    assert body["status"] == "success", body
    return {
        tuple(sorted(sample["metric"].items())): float(sample["value"][1])
        for sample in body["data"]["result"]
    }


def test_prometheus_counts_every_call_by_model_and_outcome(stack: NativeStack, sent: Sent) -> None:
    """Verify that Prometheus counts exactly the 20 calls, split by model and by outcome."""
    query = (
        f'sum by (gen_ai_request_model, llmtel_outcome) (llm_calls_total{{job="{sent.service}"}})'
    )
    expected = {
        (("gen_ai_request_model", model), ("llmtel_outcome", outcome)): float(count)
        for (model, outcome), count in sent.outcomes.items()
    }
    assert sum(expected.values()) == len(CALLS)

    def counted() -> None:
        assert prometheus_vector(stack, query) == expected

    poll_until(counted, "span metrics for all 20 calls in Prometheus", timeout=90)


def test_prometheus_splits_errors_by_status_and_type(stack: NativeStack, sent: Sent) -> None:
    """Verify that the three failed calls are counted as errors with their exception type."""
    query = f'sum by (status_code, error_type) (llm_calls_total{{job="{sent.service}"}})'

    def counted() -> None:
        assert prometheus_vector(stack, query) == {
            (("error_type", "InternalServerError"), ("status_code", "STATUS_CODE_ERROR")): 3.0,
            (("status_code", "STATUS_CODE_UNSET"),): 17.0,
        }

    poll_until(counted, "error split of span metrics in Prometheus", timeout=90)


def test_jaeger_returns_each_call_trace_with_genai_attributes(
    stack: NativeStack, sent: Sent
) -> None:
    """Verify that Jaeger returns every call's trace by id with its gen_ai.* attributes."""
    assert len(sent.spans) == len(CALLS)
    for span in sent.spans:
        trace_id = format(span.context.trace_id, "032x")
        url = f"http://127.0.0.1:{stack.ports.jaeger_query}/api/traces/{trace_id}"

        def fetched(url: str = url) -> dict[str, Any]:
            try:
                body = get_json(url)
            except urllib.error.HTTPError as error:
                raise AssertionError(f"HTTP {error.code}") from error
            assert body["data"], body
            return body["data"][0]  # type: ignore[no-any-return]

        found = poll_until(fetched, f"trace {trace_id} in Jaeger", timeout=60)
        (stored,) = [
            s for s in found["spans"] if s["spanID"] == format(span.context.span_id, "016x")
        ]
        tags = {tag["key"]: tag["value"] for tag in stored["tags"]}
        model = span.attributes["gen_ai.request.model"]
        assert stored["operationName"] == f"chat {model}"
        assert tags["span.kind"] == "client"
        assert tags["gen_ai.operation.name"] == "chat"
        assert tags["gen_ai.provider.name"] == "openai"
        assert tags["gen_ai.request.model"] == model
        assert tags["gen_ai.request.temperature"] == pytest.approx(0.2)
        if "error.type" in span.attributes:
            assert tags["error.type"] == "InternalServerError"
            assert tags["llmtel.outcome"] == "server_error"
        else:
            response_id = span.attributes["gen_ai.response.id"]
            assert tags["gen_ai.response.id"] == response_id
            assert (tags["gen_ai.usage.input_tokens"], tags["gen_ai.usage.output_tokens"]) == (
                sent.usage[str(response_id)]
            )
            assert tags["gen_ai.response.finish_reasons"] == '["stop"]'
            assert tags["llmtel.outcome"] == "ok"


def test_victorialogs_returns_each_call_log_with_its_trace_id(
    stack: NativeStack, sent: Sent
) -> None:
    """Verify that VictoriaLogs holds one log record per call, carrying the call's trace id."""
    base = f"http://127.0.0.1:{stack.ports.victorialogs}/select/logsql/query?"

    def logs() -> list[dict[str, Any]]:
        query = f'service.name:"{sent.service}"'
        with urllib.request.urlopen(base + urllib.parse.urlencode({"query": query})) as response:
            records = [json.loads(line) for line in response.read().splitlines() if line]
        assert len(records) == len(CALLS), f"{len(records)} records"
        return records

    records = poll_until(logs, "20 log records in VictoriaLogs", timeout=60)
    by_trace = {record["trace_id"]: record for record in records}
    for span in sent.spans:
        record = by_trace[format(span.context.trace_id, "032x")]
        assert record["span_id"] == format(span.context.span_id, "016x")
        assert record["gen_ai.request.model"] == span.attributes["gen_ai.request.model"]
        assert record["llmtel.outcome"] == span.attributes["llmtel.outcome"]
        assert record["llmtel.input.preview"].startswith(("Summarise ticket", "Draft a polite"))
