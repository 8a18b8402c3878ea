"""Streamed calls: one span per stream, ended once, however the app finishes with it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from opentelemetry.trace import StatusCode

from llmtel.demo.server import DemoConfig, DemoServer, completion_tokens_for, prompt_tokens_for
from llmtel.testing import Capture, capture

USER = [{"role": "user", "content": "Stream me a short answer"}]
PROMPT_TOKENS = prompt_tokens_for(USER)
OUTPUT_TOKENS = completion_tokens_for(PROMPT_TOKENS)


def _text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_consumed_stream_ends_the_span_with_usage(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that a fully read stream yields one span with finish reason, usage and TTFT."""
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    assert type(stream) is openai.Stream
    assert telemetry.spans() == ()  # the call is still running
    chunks = list(stream)
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert span.name == "chat gpt-4o-mini"
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.id"] == chunks[0].id
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert attrs["llmtel.outcome"] == "ok"
    ttft = attrs["gen_ai.response.time_to_first_chunk"]
    assert isinstance(ttft, float)
    assert ttft > 0

    (record,) = telemetry.logs()
    assert span.context is not None
    assert record.log_record.span_id == span.context.span_id
    assert (record.log_record.attributes or {})["llmtel.output.preview"] == _text(chunks)
    tokens = {
        (p.attributes or {})["gen_ai.token.type"]: p.sum
        for p in telemetry.histogram("gen_ai.client.token.usage")
    }
    assert tokens == {"input": PROMPT_TOKENS, "output": OUTPUT_TOKENS}


def test_stream_yields_what_it_yields_uninstrumented(client: openai.OpenAI) -> None:
    """Verify that the app reads the same chunks with and without llmtel."""

    def read() -> list[dict[str, object]]:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        return [c.model_dump(exclude={"id", "created"}) for c in stream]

    plain = read()
    with capture():
        instrumented = read()
    assert instrumented == plain


def test_stream_without_usage_has_no_token_metrics(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that a stream without `include_usage` reports no token counts (none are guessed)."""
    for _ in client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    ):
        pass
    (span,) = telemetry.spans()
    assert "gen_ai.usage.input_tokens" not in (span.attributes or {})
    assert telemetry.histogram("gen_ai.client.token.usage") == []
    assert len(telemetry.histogram("gen_ai.client.operation.duration")) == 1


def test_closing_a_stream_early_ends_the_span_once(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that `with stream:` left after two chunks ends the span exactly once."""
    with client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    ) as stream:
        first = next(stream)
        next(stream)
    stream.close()  # a second close is harmless
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["llmtel.outcome"] == "ok"
    assert attrs["gen_ai.response.id"] == first.id
    assert "gen_ai.response.finish_reasons" not in attrs
    assert len(telemetry.logs()) == 1


def test_abandoned_stream_ends_the_span_when_collected(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that a stream the app drops unread still ends its span (on garbage collection)."""
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
    )
    stream.response.close()  # what the app forgot to do
    del stream
    gc.collect()
    (span,) = telemetry.spans()
    assert (span.attributes or {})["llmtel.outcome"] == "ok"


@pytest.fixture
def slow_server() -> Iterator[DemoServer]:
    """A demo server that pauses 500 ms between streamed chunks."""
    with DemoServer(config=DemoConfig(chunk_delay_ms=500)) as srv:
        yield srv


def test_error_while_reading_a_stream_is_recorded(
    telemetry: Capture, slow_server: DemoServer
) -> None:
    """Verify that a read timeout mid-stream re-raises and marks the span as failed."""
    with openai.OpenAI(
        base_url=slow_server.base_url, api_key="test-key", max_retries=0, timeout=0.2
    ) as slow:
        stream = slow.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
        )
        with pytest.raises(openai.APITimeoutError), stream:
            for _ in stream:
                pass
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["llmtel.outcome"] == "timeout"
    assert attrs["error.type"] == "APITimeoutError"
    assert span.status.status_code is StatusCode.ERROR


def test_stream_helper_is_instrumented(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that `chat.completions.stream()` goes through `create` and yields one span."""
    with client.chat.completions.stream(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    (record,) = telemetry.logs()
    assert (record.log_record.attributes or {})["llmtel.output.preview"] == (
        final.choices[0].message.content
    )


def test_async_stream_ends_the_span(telemetry: Capture, async_client: openai.AsyncOpenAI) -> None:
    """Verify that an async stream read to the end yields one span with usage."""

    async def main() -> list[ChatCompletionChunk]:
        async with async_client:
            stream = await async_client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
            assert type(stream) is openai.AsyncStream
            return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert attrs["gen_ai.response.id"] == chunks[0].id
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    (record,) = telemetry.logs()
    assert (record.log_record.attributes or {})["llmtel.output.preview"] == _text(chunks)


def test_async_stream_closed_early_ends_the_span_once(
    telemetry: Capture, async_client: openai.AsyncOpenAI
) -> None:
    """Verify that leaving `async with stream:` early ends the span exactly once."""

    async def main() -> None:
        async with async_client:
            stream = await async_client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                stream=True,
            )
            async with stream:
                await stream.__anext__()
            await stream.close()

    asyncio.run(main())
    assert len(telemetry.spans()) == 1
    assert len(telemetry.logs()) == 1


def test_async_stream_helper_is_instrumented(
    telemetry: Capture, async_client: openai.AsyncOpenAI
) -> None:
    """Verify that the async `chat.completions.stream()` helper yields one finished span."""

    async def main() -> str | None:
        async with (
            async_client,
            async_client.chat.completions.stream(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
            ) as stream,
        ):
            final = await stream.get_final_completion()
            return final.choices[0].message.content

    content = asyncio.run(main())
    (span,) = telemetry.spans()
    assert (span.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)
    (record,) = telemetry.logs()
    assert (record.log_record.attributes or {})["llmtel.output.preview"] == content
