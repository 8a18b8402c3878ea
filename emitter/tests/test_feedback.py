"""`llmtel.feedback` and `llmtel.call_id`: user reactions as log records linked to the call."""

from __future__ import annotations

import asyncio
import logging

import openai
import pytest

import llmtel
from llmtel.testing import Capture, capture

USER = [{"role": "user", "content": "hi"}]


def _ask(client: openai.OpenAI) -> openai.types.chat.ChatCompletion:
    with llmtel.context(endpoint="support-answer", prompt_version="v3"):
        return client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]


def _feedback_records(cap: Capture) -> list[tuple[int, int, dict[str, object], object]]:
    return [
        (
            r.log_record.trace_id or 0,
            r.log_record.span_id or 0,
            dict(r.log_record.attributes or {}),
            r.log_record.body,
        )
        for r in cap.logs()
        if r.log_record.event_name == "llmtel.feedback"
    ]


def test_feedback_by_response_object_is_linked_to_the_call(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that feedback on a completion is a log record on the call's trace and span."""
    reply = _ask(client)
    assert llmtel.feedback(reply, "thumbs_down", comment="wrong order number") is True
    (span,) = telemetry.spans()
    assert span.context is not None
    call_id = f"{span.context.trace_id:032x}-{span.context.span_id:016x}"
    assert llmtel.call_id(reply) == call_id
    ((trace_id, span_id, attrs, body),) = _feedback_records(telemetry)
    assert (trace_id, span_id) == (span.context.trace_id, span.context.span_id)
    assert body == "feedback thumbs_down"
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.id": reply.id,
        "llmtel.endpoint": "support-answer",
        "llmtel.prompt.version": "v3",
        "llmtel.feedback.kind": "thumbs_down",
        "llmtel.feedback.comment": "wrong order number",
        "llmtel.call.id": call_id,
    }
    call_records = [r for r in telemetry.logs() if r.log_record.event_name == "llmtel.call"]
    assert (call_records[0].log_record.attributes or {})["llmtel.call.id"] == call_id


@pytest.mark.parametrize("kind", ["thumbs_up", "thumbs_down", "retried", "abandoned", "comment"])
def test_each_feedback_kind_by_call_id(
    kind: str, telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that every kind can be recorded by call id string."""
    call_id = llmtel.call_id(_ask(client))
    assert call_id is not None
    assert llmtel.feedback(call_id, kind) is True  # type: ignore[arg-type]
    ((_, _, attrs, _),) = _feedback_records(telemetry)
    assert (attrs["llmtel.feedback.kind"], attrs["llmtel.call.id"]) == (kind, call_id)
    assert "llmtel.feedback.comment" not in attrs


def test_feedback_by_call_id_from_another_process(telemetry: Capture) -> None:
    """Verify that a call id this process never saw still links the record to its trace."""
    call_id = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"
    with llmtel.context(user_id="u-42"):
        assert llmtel.feedback(call_id, "thumbs_up") is True
    ((trace_id, span_id, attrs, _),) = _feedback_records(telemetry)
    assert (trace_id, span_id) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    assert attrs == {
        "user.id": "u-42",
        "llmtel.feedback.kind": "thumbs_up",
        "llmtel.call.id": call_id,
    }


def test_feedback_by_response_id_and_on_streams(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that a response id and a stream object both name their call."""
    reply = _ask(client)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[arg-type]
    stream_call = llmtel.call_id(stream)
    list(stream)
    assert llmtel.feedback(reply.id, "retried")
    assert llmtel.feedback(stream, "abandoned")
    spans = telemetry.spans()
    ids = [f"{s.context.trace_id:032x}-{s.context.span_id:016x}" for s in spans]  # type: ignore[union-attr]
    records = _feedback_records(telemetry)
    assert [r[2]["llmtel.call.id"] for r in records] == ids
    assert stream_call == ids[1]


def test_feedback_on_async_responses(telemetry: Capture, async_client: openai.AsyncOpenAI) -> None:
    """Verify that a Responses API result of an async call names its call too."""

    async def main() -> openai.types.responses.Response:
        async with async_client:
            return await async_client.responses.create(model="gpt-4o-mini", input="hi")

    response = asyncio.run(main())
    assert llmtel.feedback(response, "thumbs_up")
    ((_, span_id, attrs, _),) = _feedback_records(telemetry)
    assert attrs["gen_ai.response.id"] == response.id
    (span,) = telemetry.spans()
    assert span.context is not None
    assert span_id == span.context.span_id


def test_feedback_refuses_what_it_cannot_record(
    telemetry: Capture, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that an unknown kind or call returns False with a warning and emits nothing."""
    caplog.set_level(logging.WARNING, logger="llmtel")
    reply = _ask(client)
    assert llmtel.feedback(reply, "meh") is False  # type: ignore[arg-type]
    assert llmtel.feedback("chatcmpl-never-seen", "thumbs_up") is False
    assert llmtel.feedback(object(), "thumbs_up") is False
    assert _feedback_records(telemetry) == []
    assert len([r for r in caplog.records if r.name == "llmtel"]) == 3


def test_feedback_comment_is_content(client: openai.OpenAI) -> None:
    """Verify that with capture "none" the comment (the user's own text) is left out."""
    with capture(capture_content="none") as cap:
        assert llmtel.feedback(_ask(client), "comment", comment="my card is 4111")
    ((_, _, attrs, _),) = _feedback_records(cap)
    assert attrs["llmtel.feedback.kind"] == "comment"
    assert "llmtel.feedback.comment" not in attrs


def test_feedback_without_llmtel_is_a_no_op(client: openai.OpenAI) -> None:
    """Verify that feedback before init returns False and raises nothing."""
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    assert llmtel.feedback(reply, "thumbs_up") is False
    assert llmtel.call_id(reply) is None
