"""Chat Completions (``chat.completions.create`` and ``.parse``): request, answer, stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmtel import _attributes as attr
from llmtel._call import (
    Attrs,
    Call,
    Request,
    Result,
    cap,
    content_text,
    field_of,
    integer,
    number,
    read_kwargs,
    to_json,
)
from llmtel._state import CaptureContent

_SYSTEM_ROLES = ("system", "developer")
PREVIEW_BUFFER = 1024  # characters of a streamed answer kept for its preview


def input_previews(messages: object) -> tuple[str | None, str | None]:
    """Return the (last user message, first system message) previews of ``messages``.

    Only a list or tuple is read: any other iterable (a generator) is left untouched
    for the SDK, so instrumentation never consumes what the app passes.
    """
    if not isinstance(messages, list | tuple):
        return None, None
    user: str | None = None
    system: str | None = None
    for message in messages:
        role = field_of(message, "role")
        if role == "user":
            user = content_text(field_of(message, "content"))
        elif role in _SYSTEM_ROLES and system is None:
            system = content_text(field_of(message, "content"))
    return (
        cap(user) if user is not None else None,
        cap(system) if system is not None else None,
    )


def request_attributes(kwargs: Mapping[str, Any]) -> Attrs:
    """Return the ``gen_ai.request.*`` attributes for the keyword arguments of ``create``."""
    attrs: Attrs = {
        attr.GEN_AI_OPERATION_NAME: attr.OPERATION_CHAT,
        attr.GEN_AI_PROVIDER_NAME: attr.PROVIDER_OPENAI,
    }
    model = read_kwargs(kwargs, "model")
    if isinstance(model, str):
        attrs[attr.GEN_AI_REQUEST_MODEL] = model
    for key, name in (
        ("temperature", attr.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", attr.GEN_AI_REQUEST_TOP_P),
        ("frequency_penalty", attr.GEN_AI_REQUEST_FREQUENCY_PENALTY),
        ("presence_penalty", attr.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ):
        value = number(read_kwargs(kwargs, key))
        if value is not None:
            attrs[name] = float(value)
    max_tokens = integer(read_kwargs(kwargs, "max_completion_tokens"))
    if max_tokens is None:
        max_tokens = integer(read_kwargs(kwargs, "max_tokens"))
    if max_tokens is not None:
        attrs[attr.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    seed = integer(read_kwargs(kwargs, "seed"))
    if seed is not None:
        attrs[attr.GEN_AI_REQUEST_SEED] = seed
    n = integer(read_kwargs(kwargs, "n"))
    if n is not None and n != 1:
        attrs[attr.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = read_kwargs(kwargs, "stop")
    if isinstance(stop, str):
        attrs[attr.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop):
        attrs[attr.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    attrs[attr.GEN_AI_REQUEST_STREAM] = read_kwargs(kwargs, "stream") is True
    return attrs


def request(kwargs: Mapping[str, Any], capture: CaptureContent) -> Request:
    """Describe a chat request from the keyword arguments of ``create`` or ``parse``."""
    result = Request(attr.OPERATION_CHAT, request_attributes(kwargs))
    if capture == "none":
        return result
    messages = read_kwargs(kwargs, "messages")
    result.input_preview, result.system_preview = input_previews(messages)
    if capture == "full" and isinstance(messages, list | tuple):
        result.input_content = to_json(messages)
    return result


def read_usage(result: Result, usage: object) -> None:
    """Copy the token counts of a Chat Completions ``usage`` object into ``result``."""
    if usage is None:
        return
    prompt = integer(field_of(usage, "prompt_tokens"))
    completion = integer(field_of(usage, "completion_tokens"))
    if prompt is not None:
        result.input_tokens = prompt
    if completion is not None:
        result.output_tokens = completion
    prompt_details = field_of(usage, "prompt_tokens_details")
    if prompt_details is not None:
        cached = integer(field_of(prompt_details, "cached_tokens"))
        if cached is not None:
            result.cache_read_tokens = cached
        written = integer(field_of(prompt_details, "cache_write_tokens"))
        if written is not None:
            result.cache_creation_tokens = written
    completion_details = field_of(usage, "completion_tokens_details")
    if completion_details is not None:
        reasoning = integer(field_of(completion_details, "reasoning_tokens"))
        if reasoning is not None:
            result.reasoning_tokens = reasoning


def _tool_names(calls: object) -> list[str]:
    if not isinstance(calls, list):
        return []
    return [str(field_of(field_of(c, "function"), "name") or "?") for c in calls]


def message_preview(message: object) -> str | None:
    """Return the text of an answer: its content, else its refusal, else its tool calls."""
    text = content_text(field_of(message, "content"))
    if text is None:
        refusal = field_of(message, "refusal")
        if isinstance(refusal, str) and refusal:
            text = refusal
    if text is None:
        names = _tool_names(field_of(message, "tool_calls"))
        if names:
            text = "[tool_calls: " + ", ".join(names) + "]"
    return cap(text) if text is not None else None


def _message_content(message: object) -> dict[str, object]:
    out: dict[str, object] = {"role": "assistant"}
    for key in ("content", "refusal", "tool_calls", "audio"):
        value = field_of(message, key)
        if value is not None:
            out[key] = value
    return out


def result_from_completion(completion: object, capture: CaptureContent = "preview") -> Result:
    """Read a ``ChatCompletion`` (or ``ParsedChatCompletion``) into a ``Result``."""
    result = Result(responded=True)
    model = field_of(completion, "model")
    if isinstance(model, str):
        result.response_model = model
    response_id = field_of(completion, "id")
    if isinstance(response_id, str):
        result.response_id = response_id
    choices = field_of(completion, "choices")
    if isinstance(choices, list):
        for choice in choices:
            reason = field_of(choice, "finish_reason")
            if isinstance(reason, str):
                result.finish_reasons.append(reason)
            refusal = field_of(field_of(choice, "message"), "refusal")
            if isinstance(refusal, str) and refusal:
                result.refusal = True
        if choices and capture != "none":
            result.output_preview = message_preview(field_of(choices[0], "message"))
        if capture == "full":
            result.output_content = [_message_content(field_of(c, "message")) for c in choices]
    read_usage(result, field_of(completion, "usage"))
    return result


@dataclass(slots=True)
class _ToolCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Choice:
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tools: dict[int, _ToolCall] = field(default_factory=dict)


class ChatStream:
    """Builds a ``Result`` from ``ChatCompletionChunk`` objects as the app reads them.

    With capture ``preview`` it keeps the first ``PREVIEW_BUFFER`` characters of the
    first choice and its tool names; with ``full`` it keeps every choice's text, refusal
    and tool calls (arguments included) up to ``CONTENT_MAX_CHARS`` in all; with
    ``none`` no text at all.
    """

    def __init__(self, call: Call) -> None:
        self._call = call
        self._result = Result()
        self._reasons: dict[int, str] = {}
        self._choices: dict[int, _Choice] = {}
        self._kept = 0
        self._limit = (
            attr.CONTENT_MAX_CHARS if call.full else PREVIEW_BUFFER if call.previews else 0
        )

    def _keep(self, parts: list[str], text: str) -> None:
        if self._kept < self._limit:
            piece = text[: self._limit - self._kept]
            parts.append(piece)
            self._kept += len(piece)

    def on_item(self, chunk: object) -> None:
        """Read one chunk."""
        result = self._result
        result.responded = True
        model = field_of(chunk, "model")
        if isinstance(model, str) and model:
            result.response_model = model
        chunk_id = field_of(chunk, "id")
        if isinstance(chunk_id, str) and chunk_id:
            result.response_id = chunk_id
        usage = field_of(chunk, "usage")
        if usage is not None:
            read_usage(result, usage)
        choices = field_of(chunk, "choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            index = integer(field_of(choice, "index")) or 0
            reason = field_of(choice, "finish_reason")
            if isinstance(reason, str):
                self._reasons[index] = reason
            delta = field_of(choice, "delta")
            if delta is None:
                continue
            self._read_delta(index, delta)

    def _read_delta(self, index: int, delta: object) -> None:
        result = self._result
        text = content_text(field_of(delta, "content"))
        refusal = field_of(delta, "refusal")
        calls = field_of(delta, "tool_calls")
        if result.time_to_first_chunk_s is None and (text or refusal or calls):
            result.time_to_first_chunk_s = time.perf_counter() - self._call.start
        if isinstance(refusal, str) and refusal:
            result.refusal = True
        if not self._limit or (index != 0 and not self._call.full):
            return
        choice = self._choices.setdefault(index, _Choice())
        if text:
            self._keep(choice.text, text)
        if isinstance(refusal, str) and refusal:
            self._keep(choice.refusal, refusal)
        if isinstance(calls, list):
            for call in calls:
                position = integer(field_of(call, "index")) or 0
                tool = choice.tools.setdefault(position, _ToolCall())
                call_id = field_of(call, "id")
                if isinstance(call_id, str) and call_id:
                    tool.id = call_id
                function = field_of(call, "function")
                name = field_of(function, "name")
                if isinstance(name, str) and name:
                    tool.name = name
                arguments = field_of(function, "arguments")
                if self._call.full and isinstance(arguments, str) and arguments:
                    self._keep(tool.arguments, arguments)

    def result(self) -> Result:
        """The ``Result`` of what was read so far."""
        result = self._result
        result.finish_reasons = [self._reasons[i] for i in sorted(self._reasons)]
        first = self._choices.get(0)
        if first is not None and self._call.previews:
            if first.text:
                result.output_preview = cap("".join(first.text))
            elif first.refusal:
                result.output_preview = cap("".join(first.refusal))
            elif first.tools:
                names = [t.name or "?" for _, t in sorted(first.tools.items())]
                result.output_preview = cap("[tool_calls: " + ", ".join(names) + "]")
        if self._call.full:
            result.output_content = [
                self._choice_content(self._choices[i]) for i in sorted(self._choices)
            ]
        return result

    @staticmethod
    def _choice_content(choice: _Choice) -> dict[str, object]:
        out: dict[str, object] = {"role": "assistant"}
        if choice.text:
            out["content"] = "".join(choice.text)
        if choice.refusal:
            out["refusal"] = "".join(choice.refusal)
        if choice.tools:
            out["tool_calls"] = [
                {
                    "id": tool.id,
                    "type": "function",
                    "function": {"name": tool.name, "arguments": "".join(tool.arguments)},
                }
                for _, tool in sorted(choice.tools.items())
            ]
        return out
