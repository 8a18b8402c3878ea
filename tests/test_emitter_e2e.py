"""A streamed call and its feedback, through the real SDK, collector, Jaeger and VictoriaLogs.

llmtel sends one streamed chat call (read to the end, with usage) and a thumbs-down
for it. Jaeger must return the call's span with its stream, usage and cost attributes;
VictoriaLogs must hold the call's log record and the feedback record, both on the
call's trace and span.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openai
import pytest
from conftest import poll_until
from stack import NativeStack

import llmtel
from llmtel.demo.server import DemoServer

pytestmark = pytest.mark.stack

PROMPT = [{"role": "user", "content": "Stream the delivery status please"}]  # 8 tokens
OUTPUT_TOKENS = 12
# gpt-4o-mini in genai-prices' bundled data: $0.15 / $0.60 per million input / output tokens.
COST_USD = float((8 * Decimal("0.15") + OUTPUT_TOKENS * Decimal("0.6")) / 10**6)


@dataclass
class Sent:
    """What the test sent: the service, the call's ids, the streamed answer."""

    service: str
    trace_id: str
    span_id: str
    response_id: str
    text: str


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def sent(stack: NativeStack) -> Iterator[Sent]:
    """Stream one call to the end, send a thumbs-down for it, flush llmtel."""
    service = f"llmtel-emitter-e2e-{uuid.uuid4().hex[:8]}"
    llmtel.init(service, endpoint=f"http://127.0.0.1:{stack.ports.collector_otlp_http}")
    try:
        with (
            DemoServer() as server,
            openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as client,
            llmtel.context(user_id="u-e2e", endpoint="delivery-status", prompt_version="v2"),
        ):
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=PROMPT,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-llmtel-demo-output-tokens": str(OUTPUT_TOKENS)},
            )
            chunks = list(stream)
            call_id = llmtel.call_id(stream)
            assert call_id is not None
            assert llmtel.feedback(call_id, "thumbs_down", comment="too slow") is True
        assert llmtel.force_flush(timeout_s=10)
        trace_id, span_id = call_id.split("-")
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        yield Sent(service, trace_id, span_id, chunks[0].id, text)
    finally:
        llmtel.shutdown()


def test_jaeger_has_the_streamed_call_span(stack: NativeStack, sent: Sent) -> None:
    """Verify that Jaeger returns the streamed call's span with stream end, usage and cost."""
    url = f"http://127.0.0.1:{stack.ports.jaeger_query}/api/traces/{sent.trace_id}"

    def fetched() -> dict[str, Any]:
        try:
            body = get_json(url)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"HTTP {error.code}") from error
        assert body["data"], body
        return body["data"][0]  # type: ignore[no-any-return]

    found = poll_until(fetched, f"trace {sent.trace_id} in Jaeger", timeout=60)
    (span,) = [s for s in found["spans"] if s["spanID"] == sent.span_id]
    tags = {tag["key"]: tag["value"] for tag in span["tags"]}
    assert span["operationName"] == "chat gpt-4o-mini"
    assert tags["span.kind"] == "client"
    assert tags["gen_ai.request.stream"] is True
    assert tags["gen_ai.response.id"] == sent.response_id
    assert tags["gen_ai.response.finish_reasons"] == '["stop"]'
    assert (tags["gen_ai.usage.input_tokens"], tags["gen_ai.usage.output_tokens"]) == (
        8,
        OUTPUT_TOKENS,
    )
    assert tags["llmtel.cost.usd"] == pytest.approx(COST_USD, rel=1e-12)
    assert tags["llmtel.stream.end"] == "completed"
    assert tags["llmtel.outcome"] == "ok"
    assert tags["llmtel.endpoint"] == "delivery-status"
    assert tags["llmtel.prompt.version"] == "v2"
    assert tags["gen_ai.response.time_to_first_chunk"] > 0


def test_victorialogs_has_the_call_and_its_feedback(stack: NativeStack, sent: Sent) -> None:
    """Verify that VictoriaLogs holds the call record and the feedback record on its span."""
    base = f"http://127.0.0.1:{stack.ports.victorialogs}/select/logsql/query?"

    def records() -> list[dict[str, Any]]:
        query = f'service.name:"{sent.service}"'
        with urllib.request.urlopen(base + urllib.parse.urlencode({"query": query})) as response:
            found = [json.loads(line) for line in response.read().splitlines() if line]
        assert len(found) == 2, f"{len(found)} records"
        return found

    found = poll_until(records, "the call and feedback records in VictoriaLogs", timeout=60)
    (call,) = [r for r in found if "llmtel.outcome" in r]
    (feedback,) = [r for r in found if "llmtel.feedback.kind" in r]
    for record in (call, feedback):
        assert (record["trace_id"], record["span_id"]) == (sent.trace_id, sent.span_id)
        assert record["llmtel.call.id"] == f"{sent.trace_id}-{sent.span_id}"
        assert record["llmtel.endpoint"] == "delivery-status"
        assert record["llmtel.prompt.version"] == "v2"
    assert call["llmtel.stream.end"] == "completed"
    assert call["llmtel.output.preview"] == sent.text
    assert call["llmtel.input.preview"] == "Stream the delivery status please"
    assert feedback["llmtel.feedback.kind"] == "thumbs_down"
    assert feedback["llmtel.feedback.comment"] == "too slow"
    assert feedback["gen_ai.response.id"] == sent.response_id
    assert feedback["_msg"] == "feedback thumbs_down"
