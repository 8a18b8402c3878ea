"""One non-streaming chat call: the span, the log record and the metrics it produces."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from openai.resources.chat.completions.completions import AsyncCompletions, Completions
from opentelemetry.trace import SpanKind, StatusCode

from llmtel.demo.server import DemoServer, completion_tokens_for, prompt_tokens_for
from llmtel.testing import Capture, capture

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello to the team"},
]
PROMPT_TOKENS = prompt_tokens_for(MESSAGES)
OUTPUT_TOKENS = completion_tokens_for(PROMPT_TOKENS)
# gpt-4o-mini in genai-prices' bundled data: $0.15 / $0.60 per million input / output tokens.
COST_USD = float((PROMPT_TOKENS * Decimal("0.15") + OUTPUT_TOKENS * Decimal("0.60")) / 10**6)

DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


@pytest.fixture
def reply(telemetry: Capture, client: openai.OpenAI) -> openai.types.chat.ChatCompletion:
    """One successful call with every request parameter the span reports."""
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        temperature=0.2,
        top_p=0.9,
        max_tokens=500,
    )


def test_span_follows_genai_semconv(
    reply: openai.types.chat.ChatCompletion, telemetry: Capture, server: DemoServer
) -> None:
    """Verify that a call yields one CLIENT span `chat {model}` with exact semconv values."""
    (span,) = telemetry.spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attrs = dict(span.attributes or {})
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 500,
        "gen_ai.request.stream": False,
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.id": reply.id,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": PROMPT_TOKENS,
        "gen_ai.usage.output_tokens": OUTPUT_TOKENS,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "llmtel.cost.usd": COST_USD,
        "llmtel.outcome": "ok",
    }
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        PROMPT_TOKENS,
        OUTPUT_TOKENS,
    )


def test_log_record_is_linked_to_the_span(
    reply: openai.types.chat.ChatCompletion, telemetry: Capture
) -> None:
    """Verify that the call's log record carries the span's trace and span ids and event name."""
    (span,) = telemetry.spans()
    (record,) = telemetry.logs()
    log = record.log_record
    assert span.context is not None
    assert log.trace_id == span.context.trace_id
    assert log.span_id == span.context.span_id
    assert log.event_name == "llmtel.call"
    assert log.severity_text == "INFO"


def test_log_record_has_summary_body_and_previews(
    reply: openai.types.chat.ChatCompletion, telemetry: Capture
) -> None:
    """Verify that the log body is a summary without prompt text; previews are attributes."""
    (record,) = telemetry.logs()
    log = record.log_record
    assert isinstance(log.body, str)
    assert log.body.startswith("chat gpt-4o-mini ok ")
    assert log.body.endswith(" ms")
    assert "hello" not in log.body
    attrs = dict(log.attributes or {})
    (span,) = telemetry.spans()
    for key, value in (span.attributes or {}).items():
        assert attrs[key] == value, key
    assert attrs["llmtel.input.preview"] == "Say hello to the team"
    assert attrs["llmtel.system.preview"] == "Be brief."
    assert attrs["llmtel.output.preview"] == reply.choices[0].message.content
    assert attrs["gen_ai.request.temperature"] == 0.2
    latency = attrs["llmtel.latency_ms"]
    assert isinstance(latency, float)
    assert 0 < latency < 10_000


def test_metrics_use_semconv_names_units_and_buckets(
    reply: openai.types.chat.ChatCompletion, telemetry: Capture
) -> None:
    """Verify that one call records the duration and token histograms with advisory buckets."""
    metrics = {m.name: m for m in telemetry.metrics()}
    assert metrics["gen_ai.client.operation.duration"].unit == "s"
    assert metrics["gen_ai.client.token.usage"].unit == "{token}"
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "llmtel.outcome": "ok",
    }
    (duration,) = telemetry.histogram("gen_ai.client.operation.duration")
    assert dict(duration.attributes or {}) == base
    assert duration.count == 1
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS
    (log,) = telemetry.logs()
    latency_ms = (log.log_record.attributes or {})["llmtel.latency_ms"]
    assert isinstance(latency_ms, float)
    assert duration.sum == pytest.approx(latency_ms / 1000)

    tokens = {
        (p.attributes or {})["gen_ai.token.type"]: p
        for p in telemetry.histogram("gen_ai.client.token.usage")
    }
    assert set(tokens) == {"input", "output"}
    assert dict(tokens["input"].attributes or {}) == {**base, "gen_ai.token.type": "input"}
    assert (tokens["input"].count, tokens["input"].sum) == (1, PROMPT_TOKENS)
    assert (tokens["output"].count, tokens["output"].sum) == (1, OUTPUT_TOKENS)
    assert tuple(tokens["input"].explicit_bounds) == TOKEN_BUCKETS


def test_max_completion_tokens_is_reported_as_max_tokens(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that `max_completion_tokens` is `gen_ai.request.max_tokens`; a cap gives `length`."""
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me a long story"}],
        max_completion_tokens=3,
    )
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["gen_ai.request.max_tokens"] == 3
    assert attrs["gen_ai.response.finish_reasons"] == ("length",)
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["llmtel.outcome"] == "ok"
    assert "gen_ai.request.temperature" not in attrs


def test_every_choice_reports_its_finish_reason(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that `n` choices give `n` finish reasons and `gen_ai.request.choice.count`."""
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Pick a colour"}],
        n=3,
        seed=7,
        stop=["\n"],
    )
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["gen_ai.response.finish_reasons"] == ("stop", "stop", "stop")
    assert attrs["gen_ai.request.choice.count"] == 3
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ("\n",)


def test_clients_created_before_init_are_instrumented(server: DemoServer) -> None:
    """Verify that a client made before llmtel starts is covered, and uncovered once it stops."""
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as early:
        with capture() as cap:
            early.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        assert len(cap.spans()) == 1
        early.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert len(cap.spans()) == 1


def test_the_app_gets_what_it_gets_uninstrumented(client: openai.OpenAI) -> None:
    """Verify that an instrumented call returns the same ChatCompletion as an uninstrumented one."""

    def ask() -> openai.types.chat.ChatCompletion:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )

    plain = ask()
    with capture():
        instrumented = ask()
    assert type(instrumented) is type(plain)
    volatile = {"id", "created"}
    assert instrumented.model_dump(exclude=volatile) == plain.model_dump(exclude=volatile)


def test_shutdown_restores_the_sdk_methods() -> None:
    """Verify that the SDK's own `create` functions are back in place once llmtel stops."""
    originals = (Completions.__dict__["create"], AsyncCompletions.__dict__["create"])
    with capture():
        assert Completions.__dict__["create"] is not originals[0]
        assert AsyncCompletions.__dict__["create"] is not originals[1]
    assert (Completions.__dict__["create"], AsyncCompletions.__dict__["create"]) == originals
