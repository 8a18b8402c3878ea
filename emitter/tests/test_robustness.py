"""The app is never hurt by llmtel: its own failures are logged and swallowed."""

from __future__ import annotations

import logging

import openai
import pytest

from llmtel import _call, _chat
from llmtel.demo.server import completion_tokens_for, prompt_tokens_for
from llmtel.testing import Capture, capture

USER = [{"role": "user", "content": "hi"}]


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("llmtel bug")


def _llmtel_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "llmtel" and r.levelno >= logging.ERROR]


def test_failure_to_start_a_call_passes_through(
    telemetry: Capture,
    client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that if llmtel cannot start recording, the call still runs and the error is logged."""
    monkeypatch.setattr(_chat, "request_attributes", _boom)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    assert telemetry.spans() == ()
    assert _llmtel_errors(caplog)


def test_failure_to_read_a_response_still_ends_the_span(
    telemetry: Capture,
    client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that a bug reading the response returns it untouched and still ends the span."""
    monkeypatch.setattr(_chat, "read_usage", _boom)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert reply.usage is not None
    (span,) = telemetry.spans()
    assert span.end_time is not None
    assert _llmtel_errors(caplog)


def test_failure_to_emit_the_log_record_is_swallowed(
    telemetry: Capture,
    client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that a failing log emit neither raises into the app nor leaves the span open."""
    monkeypatch.setattr(_call.Call, "_emit_log", _boom)
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            extra_headers={"x-llmtel-demo-fail": "429"},
        )
    assert len(telemetry.spans()) == 2
    assert telemetry.logs() == ()
    assert len(_llmtel_errors(caplog)) == 2


def test_failure_to_read_a_chunk_keeps_the_stream_intact(
    telemetry: Capture,
    client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that a bug reading stream chunks leaves every chunk to the app and ends the span."""
    monkeypatch.setattr(_chat.ChatStream, "on_item", _boom)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(telemetry.spans()) == 1
    assert _llmtel_errors(caplog)


def test_exceptions_reach_the_app_as_without_llmtel(client: openai.OpenAI) -> None:
    """Verify that a failed call raises an exception identical to the uninstrumented one."""

    def fail() -> openai.InternalServerError:
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                extra_headers={"x-llmtel-demo-fail": "500"},
            )
        return caught.value

    plain = fail()
    with capture():
        instrumented = fail()
    assert type(instrumented) is type(plain)
    assert str(instrumented) == str(plain)
    assert instrumented.status_code == plain.status_code
    assert instrumented.body == plain.body
    assert type(instrumented.__context__) is type(plain.__context__)
    assert type(instrumented.__cause__) is type(plain.__cause__)


def test_raw_response_calls_are_recorded(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that `with_raw_response.create` returns the raw response and yields a full span."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
    )
    assert raw.http_response.status_code == 200
    completion = raw.parse()
    assert completion.choices[0].message.content
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["llmtel.outcome"] == "ok"
    assert attrs["gen_ai.response.id"] == completion.id
    assert attrs["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens  # type: ignore[union-attr]


def test_raw_response_streams_are_recorded(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that a raw-response stream parses to a working stream whose end ends the span."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    )
    assert telemetry.spans() == ()
    chunks = list(raw.parse())
    assert chunks
    (span,) = telemetry.spans()
    assert (span.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)


def test_streaming_response_calls_are_recorded(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that `with_streaming_response.create` works unchanged and yields a span."""
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
    ) as response:
        completion = response.parse()
    assert completion.choices[0].message.content
    assert len(telemetry.spans()) == 1


def test_capture_refuses_to_nest_or_run_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that `capture()` fails loudly instead of silently capturing nothing."""
    with capture(), pytest.raises(RuntimeError, match="already initialised"), capture():
        pass
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with pytest.raises(RuntimeError, match="OTEL_SDK_DISABLED"), capture():
        pass


def test_internal_failures_are_counted(
    telemetry: Capture, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that each swallowed llmtel failure adds one to `llmtel.emitter.errors`."""
    monkeypatch.setattr(_chat.ChatStream, "on_item", _boom)
    for _ in range(2):
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):  # type: ignore[arg-type]
            pass
    counted = {
        str((point.attributes or {})["llmtel.error.where"]): point.value
        for metric in telemetry.metrics()
        if metric.name == "llmtel.emitter.errors"
        for point in metric.data.data_points
    }
    chunks_per_stream = 1 + completion_tokens_for(prompt_tokens_for(USER)) + 1  # role, words, end
    assert counted == {"read a stream chunk": 2 * chunks_per_stream}
