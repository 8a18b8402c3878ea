"""Every way a stream can end: one span and one log record, with partial output and how it ended."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from opentelemetry.trace import StatusCode

from llmtel.demo.server import DemoConfig, DemoServer
from llmtel.testing import Capture

USER = [{"role": "user", "content": "Stream me a short answer"}]  # 8 tokens
HEADERS = {"x-llmtel-demo-output-tokens": "6"}  # "lorem ipsum dolor sit amet consectetur"
ANSWER = "lorem ipsum dolor sit amet consectetur"


def _one_call(cap: Capture) -> tuple[dict[str, object], dict[str, object]]:
    """The attributes of the one span and the one log record, after checking there is one."""
    (span,) = cap.spans()
    (record,) = cap.logs()
    assert span.context is not None
    assert record.log_record.span_id == span.context.span_id
    return dict(span.attributes or {}), dict(record.log_record.attributes or {})


def _text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _stream(client: openai.OpenAI, **kwargs: object) -> openai.Stream[ChatCompletionChunk]:
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        extra_headers=HEADERS,
        **kwargs,  # type: ignore[call-overload]
    )


async def _astream(client: openai.AsyncOpenAI) -> openai.AsyncStream[ChatCompletionChunk]:
    return await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        stream=True,
        extra_headers=HEADERS,
    )


def test_fully_consumed_stream_is_completed(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that a stream read to the end is `completed` with the whole answer and usage."""
    chunks = list(_stream(client, stream_options={"include_usage": True}))
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "completed"
    assert span["llmtel.outcome"] == "ok"
    assert span["gen_ai.response.finish_reasons"] == ("stop",)
    assert (span["gen_ai.usage.input_tokens"], span["gen_ai.usage.output_tokens"]) == (8, 6)
    assert "llmtel.usage.missing" not in span
    assert log["llmtel.output.preview"] == ANSWER == _text(chunks)
    ttft = span["gen_ai.response.time_to_first_chunk"]
    assert isinstance(ttft, float)
    latency_ms = log["llmtel.latency_ms"]
    assert isinstance(latency_ms, float)
    assert 0 < ttft < latency_ms / 1000


def test_break_then_close_is_closed_early_with_partial_output(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify case 1: `break` after three chunks, then `close()`: closed early, partial output."""
    stream = _stream(client)
    read = []
    for chunk in stream:
        read.append(chunk)
        if len(read) == 3:
            break
    assert telemetry.spans() == ()
    stream.close()
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "closed_early"
    assert span["llmtel.outcome"] == "ok"
    assert log["llmtel.output.preview"] == "lorem ipsum " == _text(read)
    assert "gen_ai.response.finish_reasons" not in span
    assert "gen_ai.usage.input_tokens" not in span
    assert span["llmtel.usage.missing"] is True
    assert stream.response.is_closed


def test_break_then_drop_is_abandoned_with_partial_output(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify case 1: `break` after two chunks, then the stream is dropped: abandoned."""
    stream = _stream(client)
    for index, _ in enumerate(stream):
        if index == 1:
            break
    del stream
    gc.collect()
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "abandoned"
    assert span["llmtel.outcome"] == "ok"
    assert log["llmtel.output.preview"] == "lorem "


def test_leaving_with_early_is_closed_early(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that leaving `with stream:` after one chunk ends the call once, closed early."""
    with _stream(client) as stream:
        next(stream)
        next(stream)
    stream.close()
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "closed_early"
    assert log["llmtel.output.preview"] == "lorem "


def test_unread_stream_dropped_is_abandoned(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that a stream the app never reads ends as abandoned when it is collected."""
    stream = _stream(client)
    del stream
    gc.collect()
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "abandoned"
    assert span["llmtel.outcome"] == "ok"
    assert "llmtel.output.preview" not in log
    assert "llmtel.usage.missing" not in span  # no chunk ever arrived


@pytest.fixture
def slow_server() -> Iterator[DemoServer]:
    """A demo server that pauses 300 ms between streamed chunks."""
    with DemoServer(config=DemoConfig(chunk_delay_ms=300)) as srv:
        yield srv


def test_connection_lost_mid_stream_is_an_error_with_partial_output(
    telemetry: Capture, slow_server: DemoServer
) -> None:
    """Verify that a connection cut after some chunks ends the call as `error`, keeping them."""
    with openai.OpenAI(base_url=slow_server.base_url, api_key="test-key", max_retries=0) as slow:
        stream = _stream(slow)
        read = [next(stream), next(stream)]
        slow_server.stop()
        with pytest.raises(openai.APIConnectionError), stream:
            read.extend(stream)
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "error"
    assert span["llmtel.outcome"] == "connection_error"
    assert span["error.type"] == "APIConnectionError"
    assert span["llmtel.usage.missing"] is True
    assert log["llmtel.output.preview"] == "lorem " == _text(read)
    assert telemetry.spans()[0].status.status_code is StatusCode.ERROR


def test_app_exception_while_reading_is_closed_early(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that the app raising inside `with stream:` ends the call once, closed early."""

    def read_until_text() -> None:
        with _stream(client) as stream:
            for chunk in stream:
                if chunk.choices[0].delta.content:
                    raise KeyError("the app's own bug")

    with pytest.raises(KeyError):
        read_until_text()
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "closed_early"
    assert span["llmtel.outcome"] == "ok"
    assert log["llmtel.output.preview"] == "lorem "


def test_async_close_early_awaits_cleanly(
    telemetry: Capture, async_client: openai.AsyncOpenAI
) -> None:
    """Verify case 2: `await stream.close()` after one chunk: no warning, connection closed."""

    async def main() -> bool:
        async with async_client:
            stream = await _astream(async_client)
            await stream.__anext__()
            await stream.__anext__()
            await stream.close()
            return stream.response.is_closed

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        closed = asyncio.run(main())
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert closed is True
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "closed_early"
    assert log["llmtel.output.preview"] == "lorem "


def test_async_cancellation_is_closed_early(telemetry: Capture, slow_server: DemoServer) -> None:
    """Verify that cancelling the task reading an async stream ends the call once, closed early."""

    async def main() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=slow_server.base_url, api_key="test-key", max_retries=0
        ) as client:
            read: list[str] = []

            async def reader() -> None:
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=USER,  # type: ignore[arg-type]
                    stream=True,
                    extra_headers=HEADERS,
                )
                async for chunk in stream:
                    read.append(chunk.choices[0].delta.content or "")

            task = asyncio.create_task(reader())
            await asyncio.sleep(0.75)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return read

    read = asyncio.run(main())
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "closed_early"
    assert span["llmtel.outcome"] == "ok"
    assert "error.type" not in span
    assert log["llmtel.output.preview"] == "".join(read)
    assert len(read) >= 2


def test_stream_without_include_usage_marks_usage_missing(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify case 3: without `include_usage` no tokens (not 0, not guessed) and a marker."""
    list(_stream(client))
    span, log = _one_call(telemetry)
    for attrs in (span, log):
        assert attrs["llmtel.usage.missing"] is True
        assert not any(key.startswith("gen_ai.usage.") for key in attrs)
        assert "llmtel.cost.usd" not in attrs
    assert telemetry.histogram("gen_ai.client.token.usage") == []


def test_stream_with_include_usage_takes_tokens_from_the_last_chunk(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify case 3: with `include_usage` the tokens are those of the final, choice-less chunk."""
    chunks = list(_stream(client, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    span, _ = _one_call(telemetry)
    assert span["gen_ai.usage.input_tokens"] == last.usage.prompt_tokens == 8
    assert span["gen_ai.usage.output_tokens"] == last.usage.completion_tokens == 6
    assert "llmtel.usage.missing" not in span


def test_responses_stream_helper_closed_early(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that leaving `responses.stream()` after the first text delta is closed early."""
    with client.responses.stream(model="gpt-4o-mini", input="hi", extra_headers=HEADERS) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                break
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "closed_early"
    assert span["llmtel.usage.missing"] is True
    assert log["llmtel.output.preview"] == "lorem "


def test_chat_stream_helper_closed_early(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that leaving `chat.completions.stream()` early ends the call once, closed early."""
    with client.chat.completions.stream(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        extra_headers=HEADERS,
    ) as stream:
        for event in stream:
            if event.type == "content.delta":
                break
    span, _ = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "closed_early"


def test_async_break_then_drop_is_abandoned_with_partial_output(
    telemetry: Capture, async_client: openai.AsyncOpenAI
) -> None:
    """Verify that an async stream left after two chunks and dropped ends once, abandoned."""

    async def main() -> None:
        async with async_client:
            stream = await _astream(async_client)
            await stream.__anext__()
            await stream.__anext__()
            del stream
            gc.collect()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "abandoned"
    assert span["llmtel.outcome"] == "ok"
    assert log["llmtel.output.preview"] == "lorem "


def test_async_connection_lost_mid_stream_is_an_error_with_partial_output(
    telemetry: Capture, slow_server: DemoServer
) -> None:
    """Verify that an async stream whose connection is cut after two chunks ends as `error`."""

    async def main() -> list[ChatCompletionChunk]:
        async with openai.AsyncOpenAI(
            base_url=slow_server.base_url, api_key="test-key", max_retries=0
        ) as client:
            stream = await _astream(client)
            read = [await stream.__anext__(), await stream.__anext__()]
            slow_server.stop()
            with pytest.raises(openai.APIConnectionError):
                async with stream:
                    read.extend([chunk async for chunk in stream])
            return read

    read = asyncio.run(main())
    span, log = _one_call(telemetry)
    assert span["llmtel.stream.end"] == "error"
    assert span["llmtel.outcome"] == "connection_error"
    assert span["error.type"] == "APIConnectionError"
    assert log["llmtel.output.preview"] == "lorem " == _text(read)
    assert telemetry.spans()[0].status.status_code is StatusCode.ERROR
