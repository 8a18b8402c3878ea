"""Async chat calls (`AsyncOpenAI`): the same span, log record and metrics as sync ones."""

from __future__ import annotations

import asyncio

import openai
import pytest

from llmtel.demo.server import completion_tokens_for, prompt_tokens_for
from llmtel.testing import Capture

USER = [{"role": "user", "content": "Say hello asynchronously"}]


def test_async_call_is_traced(telemetry: Capture, async_client: openai.AsyncOpenAI) -> None:
    """Verify that an async call yields one span and one linked log record with exact usage."""

    async def main() -> openai.types.chat.ChatCompletion:
        async with async_client:
            return await async_client.chat.completions.create(
                model="gpt-4o",
                messages=USER,  # type: ignore[arg-type]
                temperature=0.5,
            )

    reply = asyncio.run(main())
    (span,) = telemetry.spans()
    attrs = span.attributes or {}
    assert span.name == "chat gpt-4o"
    assert attrs["gen_ai.response.id"] == reply.id
    assert attrs["gen_ai.usage.input_tokens"] == prompt_tokens_for(USER)
    assert attrs["gen_ai.usage.output_tokens"] == completion_tokens_for(prompt_tokens_for(USER))
    assert attrs["gen_ai.request.temperature"] == 0.5
    (record,) = telemetry.logs()
    assert span.context is not None
    assert record.log_record.trace_id == span.context.trace_id
    assert record.log_record.span_id == span.context.span_id


def test_async_failure_is_reraised(telemetry: Capture, async_client: openai.AsyncOpenAI) -> None:
    """Verify that an async 429 re-raises RateLimitError and is reported as `rate_limit`."""

    async def main() -> None:
        async with async_client:
            await async_client.chat.completions.create(
                model="gpt-4o",
                messages=USER,  # type: ignore[arg-type]
                extra_headers={"x-llmtel-demo-fail": "429"},
            )

    with pytest.raises(openai.RateLimitError):
        asyncio.run(main())
    (span,) = telemetry.spans()
    assert (span.attributes or {})["llmtel.outcome"] == "rate_limit"
    assert (span.attributes or {})["error.type"] == "RateLimitError"


def test_concurrent_async_calls_get_their_own_spans(
    telemetry: Capture, async_client: openai.AsyncOpenAI
) -> None:
    """Verify that concurrent tasks each get a span, log record and context of their own."""
    import llmtel

    async def one(user: str) -> str:
        with llmtel.context(user_id=user):
            reply = await async_client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": f"hello from {user}"}],
                extra_headers={"x-llmtel-demo-latency-ms": "50"},
            )
            return reply.id

    async def main() -> list[str]:
        async with async_client:
            return await asyncio.gather(*(one(f"u{i}") for i in range(5)))

    ids = asyncio.run(main())
    spans = telemetry.spans()
    assert len(spans) == 5
    by_user = {(s.attributes or {})["user.id"]: (s.attributes or {}) for s in spans}
    for i, response_id in enumerate(ids):
        assert by_user[f"u{i}"]["gen_ai.response.id"] == response_id
    for record in telemetry.logs():
        attrs = record.log_record.attributes or {}
        assert attrs["llmtel.input.preview"] == f"hello from {attrs['user.id']}"
