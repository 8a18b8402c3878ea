"""Streamed chat completions and responses reassemble to the non-streamed content."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from llmtel.demo import DemoServer, completion_tokens_for, prompt_tokens_for

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is two plus two?"},
]


@pytest.fixture
def client() -> Iterator[OpenAI]:
    with DemoServer() as server:
        strict = OpenAI(
            base_url=server.base_url,
            api_key="demo",
            max_retries=0,
            timeout=10,
            _strict_response_validation=True,
        )
        yield strict
        strict.close()


def test_chunks_reassemble_to_the_content_with_a_usage_chunk(client: OpenAI) -> None:
    """Verify that streamed deltas join to the non-streamed content and a usage chunk ends it."""
    whole = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == prompt_tokens_for(MESSAGES)
    assert last.usage.completion_tokens == completion_tokens_for(prompt_tokens_for(MESSAGES))
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].model == "gpt-4o"


def test_no_usage_chunk_without_include_usage(client: OpenAI) -> None:
    """Verify that without stream_options.include_usage no chunk carries usage."""
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


def test_streamed_refusal_arrives_in_refusal_deltas(client: OpenAI) -> None:
    """Verify that a refusal streams as delta.refusal pieces with no content."""
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-llmtel-demo-refusal": "I  can't help."},
    )
    chunks = [c for c in stream if c.choices]
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks) == "I  can't help."
    assert all(not c.choices[0].delta.content for c in chunks)


def test_streamed_finish_reason_directive(client: OpenAI) -> None:
    """Verify that a finish-reason directive is the stream's last finish reason."""
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-llmtel-demo-finish-reason": "content_filter"},
    )
    assert [c.choices[0].finish_reason for c in stream][-1] == "content_filter"


def test_responses_stream_events_build_the_final_response(client: OpenAI) -> None:
    """Verify that Responses API stream events are well-formed and end with the response."""
    events = list(
        client.responses.create(
            model="gpt-4o-mini",
            input="Tell me a joke",
            stream=True,
            extra_headers={"x-llmtel-demo-output-tokens": "6"},
        )
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert deltas == final.output_text
    assert len(deltas.split()) == 6
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3 + 4, 6)


def test_responses_stream_helper_accepts_the_events(client: OpenAI) -> None:
    """Verify that the SDK's responses.stream() helper accumulates the demo's events."""
    with client.responses.stream(model="gpt-4o", input="Hi there") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.usage is not None
    assert len(final.output_text.split()) == final.usage.output_tokens
