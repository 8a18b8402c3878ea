"""Every OpenAI SDK call shape llmtel instruments: exact spans, log records and metrics."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import openai
import pydantic
import pytest

from llmtel.demo.server import DemoServer
from llmtel.testing import Capture, capture

OUT = {"x-llmtel-demo-output-tokens": "6"}  # "lorem ipsum dolor sit amet consectetur"
ANSWER = "lorem ipsum dolor sit amet consectetur"
TOOL = {"x-llmtel-demo-tool-call": 'Weather:{"city": "Paris", "unit": "c"}'}
USER = [{"role": "user", "content": "Say hello"}]  # 5 tokens (chat and responses alike)
PRICE = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.6")),
    "text-embedding-3-small": (Decimal("0.02"), Decimal(0)),
}


class Weather(pydantic.BaseModel):
    """A function tool the app declares with `openai.pydantic_function_tool`."""

    city: str
    unit: str


def _cost(model: str, tokens_in: int, tokens_out: int) -> float:
    price_in, price_out = PRICE[model]
    return float((tokens_in * price_in + tokens_out * price_out) / 10**6)


def _chat_span(
    server: DemoServer,
    response_id: str,
    *,
    output_tokens: int = 6,
    finish: str = "stop",
    stream: bool = False,
) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.stream": stream,
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.id": response_id,
        "gen_ai.response.finish_reasons": (finish,),
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "llmtel.cost.usd": _cost("gpt-4o-mini", 5, output_tokens),
        "llmtel.outcome": "ok",
    }


def _one(cap: Capture) -> tuple[dict[str, Any], dict[str, Any]]:
    (span,) = cap.spans()
    (record,) = cap.logs()
    assert span.context is not None
    assert (record.log_record.trace_id, record.log_record.span_id) == (
        span.context.trace_id,
        span.context.span_id,
    )
    assert record.log_record.event_name == "llmtel.call"
    return dict(span.attributes or {}), dict(record.log_record.attributes or {})


def _metric_points(cap: Capture) -> dict[tuple[str, str], tuple[int, float]]:
    """(metric, token type or "-") -> (count, sum)."""
    out = {}
    for name in ("gen_ai.client.operation.duration", "gen_ai.client.token.usage"):
        for point in cap.histogram(name):
            kind = str((point.attributes or {}).get("gen_ai.token.type", "-"))
            out[name, kind] = (point.count, point.sum if kind != "-" else 0)
    return out


# -- Chat Completions: parse -------------------------------------------------------------


def test_chat_parse_with_a_tool_call(
    telemetry: Capture, client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that `chat.completions.parse` with a function tool yields the exact call span."""
    completion = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        tools=[openai.pydantic_function_tool(Weather)],
        extra_headers=TOOL,
    )
    (tool_call,) = completion.choices[0].message.tool_calls or []
    assert tool_call.function.parsed_arguments == Weather(city="Paris", unit="c")
    span, log = _one(telemetry)
    assert span == _chat_span(server, completion.id, output_tokens=5, finish="tool_calls")
    assert log["llmtel.output.preview"] == "[tool_calls: Weather]"
    assert log["llmtel.input.preview"] == "Say hello"
    assert _metric_points(telemetry) == {
        ("gen_ai.client.operation.duration", "-"): (1, 0),
        ("gen_ai.client.token.usage", "input"): (1, 5),
        ("gen_ai.client.token.usage", "output"): (1, 5),
    }


def test_async_chat_parse(
    telemetry: Capture, async_client: openai.AsyncOpenAI, server: DemoServer
) -> None:
    """Verify that the async `chat.completions.parse` yields the same exact span."""

    async def main() -> openai.types.chat.ParsedChatCompletion[None]:
        async with async_client:
            return await async_client.chat.completions.parse(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                extra_headers=OUT,
            )

    completion = asyncio.run(main())
    assert completion.choices[0].message.content == ANSWER
    span, log = _one(telemetry)
    assert span == _chat_span(server, completion.id)
    assert log["llmtel.output.preview"] == ANSWER


def test_raw_response_parse(telemetry: Capture, client: openai.OpenAI, server: DemoServer) -> None:
    """Verify that `with_raw_response.parse` returns the raw response and yields the span."""
    raw = client.chat.completions.with_raw_response.parse(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        extra_headers=OUT,
    )
    assert raw.http_response.status_code == 200
    completion = raw.parse()
    span, _ = _one(telemetry)
    assert span == _chat_span(server, completion.id)


# -- Chat Completions: tool calls ----------------------------------------------------------


def test_chat_tool_call(telemetry: Capture, client: openai.OpenAI, server: DemoServer) -> None:
    """Verify that a tool-call answer has finish reason `tool_calls` and the tool named."""
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,  # type: ignore[arg-type]
        tools=[openai.pydantic_function_tool(Weather)],
        extra_headers=TOOL,
    )
    span, log = _one(telemetry)
    assert span == _chat_span(server, completion.id, output_tokens=5, finish="tool_calls")
    assert log["llmtel.output.preview"] == "[tool_calls: Weather]"


def test_streamed_tool_call_deltas(
    telemetry: Capture, client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that streamed tool-call deltas give the same span as the unstreamed call."""
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER,  # type: ignore[arg-type]
            tools=[openai.pydantic_function_tool(Weather)],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=TOOL,
        )
    )
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index, union-attr]
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == {"city": "Paris", "unit": "c"}
    span, log = _one(telemetry)
    ttft = span.pop("gen_ai.response.time_to_first_chunk")
    assert isinstance(ttft, float)
    assert span == {
        **_chat_span(server, chunks[0].id, output_tokens=5, finish="tool_calls", stream=True),
        "llmtel.stream.end": "completed",
    }
    assert log["llmtel.output.preview"] == "[tool_calls: Weather]"


# -- Responses API -------------------------------------------------------------------------


def _responses_span(
    server: DemoServer, response_id: str, *, stream: bool = False, finish: str = "stop"
) -> dict[str, Any]:
    span = _chat_span(server, response_id, stream=stream, finish=finish)
    if finish == "tool_calls":
        span["gen_ai.usage.output_tokens"] = 5
        span["llmtel.cost.usd"] = _cost("gpt-4o-mini", 5, 5)
    return span


def test_responses_create(telemetry: Capture, client: openai.OpenAI, server: DemoServer) -> None:
    """Verify that `responses.create` is a `chat` span with usage, finish reason and previews."""
    response = client.responses.create(
        model="gpt-4o-mini", input="Say hello", instructions="Be brief.", extra_headers=OUT
    )
    assert response.output_text == ANSWER
    span, log = _one(telemetry)
    expected = _responses_span(server, response.id)
    expected["gen_ai.usage.input_tokens"] = 10  # instructions: 3 + 2 more tokens
    expected["llmtel.cost.usd"] = _cost("gpt-4o-mini", 10, 6)
    assert span == expected
    assert (log["llmtel.input.preview"], log["llmtel.system.preview"]) == ("Say hello", "Be brief.")
    assert log["llmtel.output.preview"] == ANSWER


def test_responses_create_streamed(
    telemetry: Capture, client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that `responses.create(stream=True)` ends with the final event's usage."""
    events = list(
        client.responses.create(model="gpt-4o-mini", input=USER, stream=True, extra_headers=OUT)
    )  # type: ignore[arg-type]
    assert events[-1].type == "response.completed"
    span, log = _one(telemetry)
    span.pop("gen_ai.response.time_to_first_chunk")
    assert span == {
        **_responses_span(server, events[-1].response.id, stream=True),  # type: ignore[union-attr]
        "llmtel.stream.end": "completed",
    }
    assert log["llmtel.output.preview"] == ANSWER


def test_responses_stream_helper(
    telemetry: Capture, client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that the `responses.stream()` helper read to the end gives the completed span."""
    with client.responses.stream(
        model="gpt-4o-mini", input="Say hello", extra_headers=OUT
    ) as stream:
        final = stream.get_final_response()
    span, _ = _one(telemetry)
    span.pop("gen_ai.response.time_to_first_chunk")
    assert span == {
        **_responses_span(server, final.id, stream=True),
        "llmtel.stream.end": "completed",
    }


def test_async_responses_create_and_stream(
    telemetry: Capture, async_client: openai.AsyncOpenAI, server: DemoServer
) -> None:
    """Verify that async `responses.create` and `responses.stream` each yield one exact span."""

    async def main() -> tuple[str, str]:
        async with async_client:
            response = await async_client.responses.create(
                model="gpt-4o-mini", input="Say hello", extra_headers=OUT
            )
            async with async_client.responses.stream(
                model="gpt-4o-mini", input="Say hello", extra_headers=OUT
            ) as stream:
                final = await stream.get_final_response()
            return response.id, final.id

    plain_id, streamed_id = asyncio.run(main())
    plain, streamed = (dict(s.attributes or {}) for s in telemetry.spans())
    streamed.pop("gen_ai.response.time_to_first_chunk")
    assert plain == _responses_span(server, plain_id)
    assert streamed == {
        **_responses_span(server, streamed_id, stream=True),
        "llmtel.stream.end": "completed",
    }


def test_responses_tool_call_streamed(
    telemetry: Capture, client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that a streamed Responses function call has finish reason `tool_calls`."""
    with client.responses.stream(
        model="gpt-4o-mini",
        input="Say hello",
        tools=[{"type": "function", "name": "Weather", "parameters": Weather.model_json_schema()}],
        extra_headers=TOOL,
    ) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"
    span, log = _one(telemetry)
    span.pop("gen_ai.response.time_to_first_chunk")
    assert span == {
        **_responses_span(server, final.id, stream=True, finish="tool_calls"),
        "llmtel.stream.end": "completed",
    }
    assert log["llmtel.output.preview"] == "[tool_calls: Weather]"


def test_responses_parse_and_raw_response(
    telemetry: Capture, client: openai.OpenAI, server: DemoServer
) -> None:
    """Verify that `responses.parse` and `responses.with_raw_response.create` are recorded."""
    parsed = client.responses.parse(model="gpt-4o-mini", input="Say hello", extra_headers=OUT)
    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini", input="Say hello", extra_headers=OUT
    )
    first, second = (dict(s.attributes or {}) for s in telemetry.spans())
    assert first == _responses_span(server, parsed.id)
    assert second == _responses_span(server, raw.parse().id)


# -- Embeddings -----------------------------------------------------------------------------


def _embeddings_span(server: DemoServer, tokens: int) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.request.encoding_formats": ("float",),
        "gen_ai.embeddings.dimension.count": 8,
        "gen_ai.response.model": "text-embedding-3-small",
        "gen_ai.usage.input_tokens": tokens,
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "llmtel.cost.usd": _cost("text-embedding-3-small", tokens, 0),
        "llmtel.outcome": "ok",
    }


def test_embeddings_create(telemetry: Capture, client: openai.OpenAI, server: DemoServer) -> None:
    """Verify that `embeddings.create` is an `embeddings {model}` span with input tokens only."""
    result = client.embeddings.create(
        model="text-embedding-3-small",
        input=["one two", "three"],
        encoding_format="float",
        dimensions=8,
    )
    assert len(result.data[0].embedding) == 8
    (span_data,) = telemetry.spans()
    assert span_data.name == "embeddings text-embedding-3-small"
    span, log = _one(telemetry)
    assert span == _embeddings_span(server, 3)
    assert log["llmtel.input.preview"] == "one two"
    assert "llmtel.output.preview" not in log
    assert _metric_points(telemetry) == {
        ("gen_ai.client.operation.duration", "-"): (1, 0),
        ("gen_ai.client.token.usage", "input"): (1, 3),
    }


def test_async_and_raw_embeddings(
    telemetry: Capture, async_client: openai.AsyncOpenAI, server: DemoServer
) -> None:
    """Verify that async and `with_raw_response` embeddings calls are recorded the same way."""

    async def main() -> None:
        async with async_client:
            await async_client.embeddings.create(
                model="text-embedding-3-small",
                input="one two",
                encoding_format="float",
                dimensions=8,
            )
            raw = await async_client.embeddings.with_raw_response.create(
                model="text-embedding-3-small",
                input="one two",
                encoding_format="float",
                dimensions=8,
            )
            assert raw.parse().usage.prompt_tokens == 2

    asyncio.run(main())
    assert [dict(s.attributes or {}) for s in telemetry.spans()] == [
        _embeddings_span(server, 2)
    ] * 2


# -- The app gets what it gets uninstrumented ------------------------------------------------

VOLATILE = {"id", "item_id", "created", "created_at", "call_id"}


def _strip(value: object) -> object:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.mark.parametrize(
    "shape", ["parse", "responses", "responses_stream", "embeddings", "tool_stream"]
)
def test_app_gets_the_same_objects(shape: str, client: openai.OpenAI) -> None:
    """Verify that each shape returns objects of the same types and values with llmtel on."""

    def call() -> list[object]:
        if shape == "parse":
            return [
                client.chat.completions.parse(model="gpt-4o-mini", messages=USER, extra_headers=OUT)
            ]  # type: ignore[arg-type]
        if shape == "responses":
            return [client.responses.create(model="gpt-4o-mini", input="hi", extra_headers=OUT)]
        if shape == "responses_stream":
            return list(
                client.responses.create(
                    model="gpt-4o-mini", input="hi", stream=True, extra_headers=OUT
                )
            )
        if shape == "embeddings":
            return [client.embeddings.create(model="text-embedding-3-small", input="hi")]
        return list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,
                stream=True,
                extra_headers=TOOL,  # type: ignore[arg-type]
            )
        )

    plain = call()
    with capture(capture_content="full"):
        instrumented = call()
    assert [type(o) for o in instrumented] == [type(o) for o in plain]
    dump = [_strip(o.model_dump()) for o in instrumented]  # type: ignore[attr-defined]
    assert dump == [_strip(o.model_dump()) for o in plain]  # type: ignore[attr-defined]
