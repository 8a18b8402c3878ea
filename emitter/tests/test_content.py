"""Content previews on the log record: what is captured, how it is capped, how to switch it off."""

from __future__ import annotations

import openai
import pytest

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
    from llmtel._call import message_preview

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
