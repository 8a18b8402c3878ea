"""Responses API (``responses.create``, ``.parse`` and ``.stream``): request, answer, stream.

A Responses call is a ``chat`` operation (GenAI semconv). The API has no finish
reasons; llmtel reports them as Chat Completions would: ``stop`` for a completed
response, ``tool_calls`` when it asks for function calls, ``length`` or
``content_filter`` for an incomplete one (``incomplete_details.reason``), ``error``
for a failed one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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
from llmtel._chat import PREVIEW_BUFFER
from llmtel._state import CaptureContent

_SYSTEM_ROLES = ("system", "developer")
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
_FUNCTION_CALL = "function_call"


def request_attributes(kwargs: Mapping[str, Any]) -> Attrs:
    """Return the ``gen_ai.request.*`` attributes for ``responses.create`` arguments."""
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
    ):
        value = number(read_kwargs(kwargs, key))
        if value is not None:
            attrs[name] = float(value)
    max_tokens = integer(read_kwargs(kwargs, "max_output_tokens"))
    if max_tokens is not None:
        attrs[attr.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    attrs[attr.GEN_AI_REQUEST_STREAM] = read_kwargs(kwargs, "stream") is True
    return attrs


def _messages(kwargs: Mapping[str, Any]) -> list[object] | None:
    """The request as chat-style messages: instructions as system, then the input."""
    instructions = read_kwargs(kwargs, "instructions")
    input_ = read_kwargs(kwargs, "input")
    messages: list[object] = []
    if isinstance(instructions, str):
        messages.append({"role": "system", "content": instructions})
    if isinstance(input_, str):
        messages.append({"role": "user", "content": input_})
    elif isinstance(input_, list | tuple):
        messages.extend(input_)
    elif input_ is not None:  # a generator or another iterable: not ours to consume
        return None
    return messages


def request(kwargs: Mapping[str, Any], capture: CaptureContent) -> Request:
    """Describe a Responses API request from the keyword arguments of ``create``."""
    result = Request(attr.OPERATION_CHAT, request_attributes(kwargs))
    if capture == "none":
        return result
    messages = _messages(kwargs)
    if messages is None:
        return result
    user: str | None = None
    system: str | None = None
    for message in messages:
        role = field_of(message, "role")
        if role == "user":
            user = content_text(field_of(message, "content"))
        elif role in _SYSTEM_ROLES and system is None:
            system = content_text(field_of(message, "content"))
    result.input_preview = cap(user) if user is not None else None
    result.system_preview = cap(system) if system is not None else None
    if capture == "full":
        result.input_content = to_json(messages)
    return result


def read_usage(result: Result, usage: object) -> None:
    """Copy the token counts of a Responses API ``usage`` object into ``result``."""
    if usage is None:
        return
    result.input_tokens = integer(field_of(usage, "input_tokens"))
    result.output_tokens = integer(field_of(usage, "output_tokens"))
    result.cache_read_tokens = integer(
        field_of(field_of(usage, "input_tokens_details"), "cached_tokens")
    )
    result.reasoning_tokens = integer(
        field_of(field_of(usage, "output_tokens_details"), "reasoning_tokens")
    )


def _finish_reason(response: object, output: list[object]) -> str | None:
    status = field_of(response, "status")
    if status == "completed":
        if any(field_of(item, "type") == _FUNCTION_CALL for item in output):
            return "tool_calls"
        return "stop"
    if status == "incomplete":
        reason = field_of(field_of(response, "incomplete_details"), "reason")
        return _INCOMPLETE_REASONS.get(str(reason), str(reason) if reason else "incomplete")
    if status == "failed":
        return "error"
    return None


def _output_text(output: list[object]) -> tuple[str | None, str | None, list[str]]:
    """Return (answer text, refusal text, function names) of the output items."""
    texts: list[str] = []
    refusals: list[str] = []
    names: list[str] = []
    for item in output:
        kind = field_of(item, "type")
        if kind == "message":
            content = field_of(item, "content")
            for part in content if isinstance(content, list) else []:
                part_type = field_of(part, "type")
                if part_type == "output_text":
                    text = field_of(part, "text")
                    if isinstance(text, str):
                        texts.append(text)
                elif part_type == "refusal":
                    refusal = field_of(part, "refusal")
                    if isinstance(refusal, str):
                        refusals.append(refusal)
        elif kind == _FUNCTION_CALL:
            names.append(str(field_of(item, "name") or "?"))
    return ("".join(texts) or None, "".join(refusals) or None, names)


def result_from_response(response: object, capture: CaptureContent = "preview") -> Result:
    """Read a ``Response`` (or ``ParsedResponse``) into a ``Result``."""
    result = Result(responded=True)
    model = field_of(response, "model")
    if isinstance(model, str):
        result.response_model = model
    response_id = field_of(response, "id")
    if isinstance(response_id, str):
        result.response_id = response_id
    raw_output = field_of(response, "output")
    output: list[object] = list(raw_output) if isinstance(raw_output, list) else []
    reason = _finish_reason(response, output)
    if reason is not None:
        result.finish_reasons.append(reason)
    if field_of(response, "status") == "failed":
        code = field_of(field_of(response, "error"), "code")
        result.failure = str(code) if code else "response_failed"
    text, refusal, names = _output_text(output)
    result.refusal = refusal is not None
    if capture != "none":
        preview = text or refusal or ("[tool_calls: " + ", ".join(names) + "]" if names else None)
        result.output_preview = cap(preview) if preview is not None else None
    if capture == "full":
        result.output_content = output
    read_usage(result, field_of(response, "usage"))
    return result


class ResponsesStream:
    """Builds a ``Result`` from Responses API stream events as the app reads them.

    The final event (``response.completed``, ``.incomplete`` or ``.failed``) carries the
    whole response, usage included; until it arrives, text and function names are kept
    from the delta events (as much as the capture setting allows).
    """

    def __init__(self, call: Call) -> None:
        self._call = call
        self._final: Result | None = None
        self._result = Result()
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._names: list[str] = []
        self._kept = 0
        self._limit = PREVIEW_BUFFER if call.previews else 0
        if call.full:
            self._limit = attr.CONTENT_MAX_CHARS

    def _keep(self, parts: list[str], text: str) -> None:
        if self._kept < self._limit:
            piece = text[: self._limit - self._kept]
            parts.append(piece)
            self._kept += len(piece)

    def _first_output(self) -> None:
        if self._result.time_to_first_chunk_s is None:
            self._result.time_to_first_chunk_s = time.perf_counter() - self._call.start

    def on_item(self, event: object) -> None:
        """Read one stream event."""
        result = self._result
        result.responded = True
        kind = field_of(event, "type")
        if kind in ("response.created", "response.in_progress", "response.queued"):
            response = field_of(event, "response")
            model = field_of(response, "model")
            if isinstance(model, str) and model:
                result.response_model = model
            response_id = field_of(response, "id")
            if isinstance(response_id, str) and response_id:
                result.response_id = response_id
        elif kind == "response.output_text.delta":
            self._first_output()
            delta = field_of(event, "delta")
            if isinstance(delta, str):
                self._keep(self._text, delta)
        elif kind == "response.refusal.delta":
            self._first_output()
            result.refusal = True
            delta = field_of(event, "delta")
            if isinstance(delta, str):
                self._keep(self._refusal, delta)
        elif kind == "response.output_item.added":
            item = field_of(event, "item")
            if field_of(item, "type") == _FUNCTION_CALL:
                self._first_output()
                self._names.append(str(field_of(item, "name") or "?"))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self._final = result_from_response(field_of(event, "response"), self._call.capture)
        elif kind == "error":
            code = field_of(event, "code")
            result.failure = str(code) if code else "stream_error"

    def result(self) -> Result:
        """The ``Result`` of what was read so far."""
        partial = self._result
        final = self._final
        if final is not None:
            final.time_to_first_chunk_s = partial.time_to_first_chunk_s
            final.failure = final.failure or partial.failure
            return final
        if self._call.previews:
            preview = (
                "".join(self._text)
                or "".join(self._refusal)
                or ("[tool_calls: " + ", ".join(self._names) + "]" if self._names else "")
            )
            partial.output_preview = cap(preview) if preview else None
        if self._call.full and (self._text or self._refusal):
            partial.output_content = "".join(self._text) or "".join(self._refusal)
        return partial
