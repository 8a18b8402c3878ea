"""Content previews on the log record: what is captured, how it is capped, how to switch it off."""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
import pytest

import llmtel
from llmtel._setup import resolve_capture_content
from llmtel.testing import Capture, capture

PREVIEW_KEYS = {"llmtel.input.preview", "llmtel.system.preview", "llmtel.output.preview"}


def _log_attrs(cap: Capture) -> dict[str, object]:
    (record,) = cap.logs()
    return dict(record.log_record.attributes or {})


def test_previews_are_capped_at_200_characters(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that long input, system and output texts are cut to 200 characters with a marker."""
    long_user = "word " * 100
    long_system = "rule " * 100
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": long_system},
            {"role": "user", "content": long_user},
        ],
        extra_headers={"x-llmtel-demo-output-tokens": "120"},
    )
    attrs = _log_attrs(telemetry)
    for key, full in (
        ("llmtel.input.preview", long_user),
        ("llmtel.system.preview", long_system),
    ):
        value = attrs[key]
        assert isinstance(value, str)
        assert len(value) == 200
        assert value == full[:199] + "\u2026"
    output = attrs["llmtel.output.preview"]
    assert isinstance(output, str)
    assert len(output) == 200
    assert output.endswith("\u2026")


def test_preview_of_exactly_200_characters_is_kept_whole(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that a 200-character message is not marked as cut."""
    text = "x" * 200
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    assert _log_attrs(telemetry)["llmtel.input.preview"] == text


def test_input_preview_is_the_last_user_message(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that the input preview is the last user turn, text parts joined, images named."""
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "developer", "content": "You are terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "this picture?"},
                ],
            },
        ],
    )
    attrs = _log_attrs(telemetry)
    assert attrs["llmtel.input.preview"] == "what is in [image_url] this picture?"
    assert attrs["llmtel.system.preview"] == "You are terse."


def test_no_system_message_means_no_system_preview(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that `llmtel.system.preview` is absent when there is no system message."""
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert "llmtel.system.preview" not in _log_attrs(telemetry)


def test_capture_content_none_sends_no_text(client: openai.OpenAI) -> None:
    """Verify that `capture_content="none"` leaves every preview out and keeps everything else."""
    with capture(capture_content="none") as cap:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "secret system prompt"},
                {"role": "user", "content": "secret question"},
            ],
        )
        for _ in client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "secret question"}],
            stream=True,
        ):
            pass
    for record in cap.logs():
        attrs = dict(record.log_record.attributes or {})
        assert PREVIEW_KEYS.isdisjoint(attrs)
        assert attrs["llmtel.outcome"] == "ok"
        assert "secret" not in str(record.log_record.body)
        assert all("secret" not in str(v) for v in attrs.values())
    for span in cap.spans():
        assert all("secret" not in str(v) for v in (span.attributes or {}).values())


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        (None, None, "preview"),
        (None, "none", "none"),
        (None, " PREVIEW ", "preview"),
        ("preview", "none", "preview"),
        ("none", "preview", "none"),
        (None, "everything", "none"),
        (None, "Full", "full"),
        ("full", "none", "full"),
    ],
)
def test_capture_content_resolution(
    explicit: str | None, env: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that the argument beats `LLMTEL_CAPTURE_CONTENT`; unknown values capture nothing."""
    if env is None:
        monkeypatch.delenv("LLMTEL_CAPTURE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("LLMTEL_CAPTURE_CONTENT", env)
    assert resolve_capture_content(explicit) == expected


def test_generator_messages_are_not_consumed(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that messages passed as a generator reach the SDK intact (and get no preview)."""
    messages = ({"role": "user", "content": word} for word in ["one", "two"])
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 8  # both messages arrived: 2 x (3 + 1)
    assert "llmtel.input.preview" not in _log_attrs(telemetry)


def test_tool_calls_are_named_in_the_output_preview() -> None:
    """Verify that an answer made only of tool calls previews as their function names."""
    from llmtel._chat import message_preview

    message = openai.types.chat.ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        }
    )
    assert message_preview(message) == "[tool_calls: get_weather, get_time]"


FULL_MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]


def _records(cap: Capture, event: str) -> list[Any]:
    return [r.log_record for r in cap.logs() if r.log_record.event_name == event]


def test_full_capture_sends_a_content_record_per_call(client: openai.OpenAI) -> None:
    """Verify that capture "full" adds an `llmtel.content` record with the whole exchange."""
    with capture(capture_content="full") as cap:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=FULL_MESSAGES,  # type: ignore[arg-type]
            extra_headers={"x-llmtel-demo-output-tokens": "3"},
        )
    (span,) = cap.spans()
    (call,) = _records(cap, "llmtel.call")
    (content,) = _records(cap, "llmtel.content")
    assert span.context is not None
    assert (content.trace_id, content.span_id) == (span.context.trace_id, span.context.span_id)
    assert (call.attributes or {})["llmtel.input.preview"] == "Say hello"
    assert content.body == "chat gpt-4o-mini content"
    assert dict(content.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.id": reply.id,
        "llmtel.call.id": f"{span.context.trace_id:032x}-{span.context.span_id:016x}",
        "llmtel.content.input": json.dumps(FULL_MESSAGES, separators=(",", ":")),
        "llmtel.content.output": '[{"role":"assistant","content":"lorem ipsum dolor"}]',
    }


def test_full_capture_of_a_streamed_tool_call_keeps_its_arguments(client: openai.OpenAI) -> None:
    """Verify that streamed tool-call deltas are reassembled, arguments and all, in "full"."""
    with capture(capture_content="full") as cap:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "weather?"}],
                stream=True,
                extra_headers={"x-llmtel-demo-tool-call": 'get_weather:{"city": "Paris"}'},
            )
        )
    call_id = chunks[1].choices[0].delta.tool_calls[0].id  # type: ignore[index]
    (content,) = _records(cap, "llmtel.content")
    output = json.loads(str((content.attributes or {})["llmtel.content.output"]))
    assert output == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        }
    ]


def test_full_capture_of_responses_and_embeddings(client: openai.OpenAI) -> None:
    """Verify the content records of a Responses call and an embeddings call."""
    with capture(capture_content="full") as cap:
        response = client.responses.create(
            model="gpt-4o-mini",
            input="Say hello",
            instructions="Be brief.",
            extra_headers={"x-llmtel-demo-output-tokens": "2"},
        )
        client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    first, second = (dict(r.attributes or {}) for r in _records(cap, "llmtel.content"))
    assert first["llmtel.content.input"] == json.dumps(FULL_MESSAGES, separators=(",", ":"))
    output = json.loads(str(first["llmtel.content.output"]))
    assert output == [response.output[0].model_dump(mode="json", exclude_none=True)]
    assert output[0]["content"][0]["text"] == "lorem ipsum"
    assert second["llmtel.content.input"] == '["one","two"]'
    assert "llmtel.content.output" not in second


def test_preview_capture_sends_no_content_record(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that the default capture ("preview") sends call records only."""
    client.chat.completions.create(model="gpt-4o-mini", messages=FULL_MESSAGES)  # type: ignore[arg-type]
    assert [r.log_record.event_name for r in telemetry.logs()] == ["llmtel.call"]


class Verdict(pydantic.BaseModel):
    """A structured output the demo's lorem-ipsum answer cannot satisfy."""

    verdict: str


def test_capture_none_leaks_no_text_anywhere(client: openai.OpenAI) -> None:
    """Verify case 7: with capture off no prompt, answer, tool argument or system text is sent."""
    secret_tool = {"x-llmtel-demo-tool-call": 'lookup:{"account": "secret-account-99"}'}
    with capture(capture_content="none") as cap:
        messages = [
            {"role": "system", "content": "secret system rules"},
            {"role": "user", "content": "secret question"},
        ]
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
        client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, extra_headers=secret_tool
        )  # type: ignore[arg-type]
        list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages,
                stream=True,
                extra_headers=secret_tool,  # type: ignore[arg-type]
            )
        )
        client.responses.create(
            model="gpt-4o-mini", input="secret question", instructions="secret rules"
        )
        client.embeddings.create(model="text-embedding-3-small", input="secret words")
        with pytest.raises(pydantic.ValidationError):  # its message quotes the answer
            client.chat.completions.parse(
                model="gpt-4o-mini",
                messages=messages,
                response_format=Verdict,  # type: ignore[arg-type]
            )
        assert llmtel.feedback(reply, "comment", comment="secret comment")
    texts: list[str] = []
    for span in cap.spans():
        texts += [str(v) for v in (span.attributes or {}).values()]
        texts.append(str(span.status.description))
        for event in span.events:
            texts += [str(v) for v in (event.attributes or {}).values()]
    for record in cap.logs():
        texts.append(str(record.log_record.body))
        texts += [str(v) for v in (record.log_record.attributes or {}).values()]
    for metric in cap.metrics():
        for point in metric.data.data_points:
            texts += [str(v) for v in (point.attributes or {}).values()]
    assert len(cap.spans()) == 6
    assert [r.log_record.event_name for r in cap.logs()] == ["llmtel.call"] * 6 + [
        "llmtel.feedback"
    ]
    assert [e.name for e in cap.spans()[5].events] == ["exception"]
    leaked = [t for t in texts if any(w in t for w in ("secret", "lorem", "account", "rules"))]
    assert leaked == []
