"""One instrumented chat call: its span, its log record and its metric points.

A ``Call`` is started before the SDK sends the request and finished exactly once,
when the response (or the end of a stream, or an exception) is known. Every method
that runs on the app's call path swallows and logs its own failures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

import openai
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llmtel import _attributes as attr
from llmtel import _context
from llmtel._state import Telemetry

_log = logging.getLogger("llmtel")

_Attrs = dict[str, AttributeValue]

_SYSTEM_ROLES = ("system", "developer")

# The request attributes that are also metric attributes (low cardinality only).
_METRIC_REQUEST_KEYS = (
    attr.GEN_AI_OPERATION_NAME,
    attr.GEN_AI_PROVIDER_NAME,
    attr.GEN_AI_REQUEST_MODEL,
)


def cap(text: str, limit: int = attr.PREVIEW_MAX_CHARS) -> str:
    """Return ``text`` cut to at most ``limit`` characters, marking a cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


@dataclass(slots=True)
class Result:
    """What is known about a call when it ends."""

    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    output_preview: str | None = None
    refusal: bool = False
    time_to_first_chunk_s: float | None = None
    error: BaseException | None = None


def classify_error(exc: BaseException) -> attr.Outcome:
    """Map an exception raised by the SDK to a low-cardinality outcome."""
    if isinstance(exc, openai.APITimeoutError):  # before its base class APIConnectionError
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        if code == 429:
            return "rate_limit"
        if code in (401, 403):
            return "auth"
        if code >= 500:
            return "server_error"
        if 400 <= code < 500:
            return "bad_request"
    return "error"


def _outcome(result: Result) -> attr.Outcome:
    if result.error is not None:
        return classify_error(result.error)
    if "content_filter" in result.finish_reasons:
        return "content_filter"
    if result.refusal:
        return "refusal"
    return "ok"


def field_of(obj: object, name: str) -> object:
    """Read ``name`` from a TypedDict-style mapping or from a model object."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def content_text(content: object) -> str | None:
    """Return the text of a message ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list | tuple):
        return None
    texts: list[str] = []
    for part in content:
        kind = field_of(part, "type")
        if kind == "text":
            text = field_of(part, "text")
            if isinstance(text, str):
                texts.append(text)
        elif kind == "refusal":
            text = field_of(part, "refusal")
            if isinstance(text, str):
                texts.append(text)
        elif isinstance(kind, str):
            texts.append(f"[{kind}]")
    return " ".join(texts) if texts else None


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


def _number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def request_attributes(kwargs: Mapping[str, Any]) -> _Attrs:
    """Return the ``gen_ai.request.*`` attributes for the keyword arguments of ``create``."""
    attrs: _Attrs = {
        attr.GEN_AI_OPERATION_NAME: attr.OPERATION_CHAT,
        attr.GEN_AI_PROVIDER_NAME: attr.PROVIDER_OPENAI,
    }
    model = kwargs.get("model")
    if isinstance(model, str):
        attrs[attr.GEN_AI_REQUEST_MODEL] = model
    for key, name in (
        ("temperature", attr.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", attr.GEN_AI_REQUEST_TOP_P),
        ("frequency_penalty", attr.GEN_AI_REQUEST_FREQUENCY_PENALTY),
        ("presence_penalty", attr.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ):
        number = _number(kwargs.get(key))
        if number is not None:
            attrs[name] = float(number)
    max_tokens = _number(kwargs.get("max_completion_tokens"))
    if max_tokens is None:
        max_tokens = _number(kwargs.get("max_tokens"))
    if isinstance(max_tokens, int):
        attrs[attr.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    seed = _number(kwargs.get("seed"))
    if isinstance(seed, int):
        attrs[attr.GEN_AI_REQUEST_SEED] = seed
    n = _number(kwargs.get("n"))
    if isinstance(n, int) and n != 1:
        attrs[attr.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attrs[attr.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop):
        attrs[attr.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    attrs[attr.GEN_AI_REQUEST_STREAM] = kwargs.get("stream") is True
    return attrs


def server_attributes(client: object) -> _Attrs:
    """Return ``server.address`` and ``server.port`` for an OpenAI client's base URL."""
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if not isinstance(host, str) or not host:
        return {}
    port = getattr(url, "port", None)
    if not isinstance(port, int):
        port = 443 if getattr(url, "scheme", "https") == "https" else 80
    return {attr.SERVER_ADDRESS: host, attr.SERVER_PORT: port}


def read_usage(result: Result, usage: object) -> None:
    """Copy the token counts of an SDK ``usage`` object into ``result``."""
    if usage is None:
        return
    prompt = field_of(usage, "prompt_tokens")
    completion = field_of(usage, "completion_tokens")
    if isinstance(prompt, int):
        result.input_tokens = prompt
    if isinstance(completion, int):
        result.output_tokens = completion
    prompt_details = field_of(usage, "prompt_tokens_details")
    if prompt_details is not None:
        cached = field_of(prompt_details, "cached_tokens")
        if isinstance(cached, int):
            result.cache_read_tokens = cached
        written = field_of(prompt_details, "cache_write_tokens")
        if isinstance(written, int):
            result.cache_creation_tokens = written
    completion_details = field_of(usage, "completion_tokens_details")
    if completion_details is not None:
        reasoning = field_of(completion_details, "reasoning_tokens")
        if isinstance(reasoning, int):
            result.reasoning_tokens = reasoning


def message_preview(message: object) -> str | None:
    """Return the text of an answer: its content, else its refusal, else its tool calls."""
    text = content_text(field_of(message, "content"))
    if text is None:
        refusal = field_of(message, "refusal")
        if isinstance(refusal, str) and refusal:
            text = refusal
    if text is None:
        calls = field_of(message, "tool_calls")
        if isinstance(calls, list) and calls:
            names = [str(field_of(field_of(c, "function"), "name") or "?") for c in calls]
            text = "[tool_calls: " + ", ".join(names) + "]"
    return cap(text) if text is not None else None


def result_from_completion(completion: object) -> Result:
    """Read a ``ChatCompletion`` into a ``Result``."""
    result = Result()
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
        if choices:
            message = field_of(choices[0], "message")
            refusal = field_of(message, "refusal")
            result.refusal = isinstance(refusal, str) and bool(refusal)
            result.output_preview = message_preview(message)
    read_usage(result, field_of(completion, "usage"))
    return result


class Call:
    """A started chat call. The first ``finish`` ends it; later ones do nothing."""

    def __init__(self, telemetry: Telemetry, client: object, kwargs: Mapping[str, Any]) -> None:
        self._telemetry = telemetry
        self._lock = threading.Lock()
        self._finished = False
        self.previews = telemetry.capture_content == "preview"
        request = request_attributes(kwargs)
        model = request.get(attr.GEN_AI_REQUEST_MODEL)
        self._model = model if isinstance(model, str) and model else None
        self._metric_attributes: _Attrs = {
            key: request[key] for key in _METRIC_REQUEST_KEYS if key in request
        }
        self._attributes: _Attrs = {**request, **server_attributes(client)}
        self._attributes.update(_context.current())
        self._input_preview: str | None = None
        self._system_preview: str | None = None
        if self.previews:
            self._input_preview, self._system_preview = input_previews(kwargs.get("messages"))
        self.start = time.perf_counter()
        self._span = telemetry.tracer.start_span(
            f"{attr.OPERATION_CHAT} {self._model}" if self._model else attr.OPERATION_CHAT,
            kind=SpanKind.CLIENT,
            attributes=self._attributes,
        )
        self._span_context = trace.set_span_in_context(self._span)

    def activate(self) -> Token[Context] | None:
        """Make the call's span current (for spans the SDK's transport may start)."""
        try:
            return otel_context.attach(self._span_context)
        except Exception:
            _log.exception("llmtel: could not attach the call context")
            return None

    def deactivate(self, token: Token[Context] | None) -> None:
        """Undo ``activate``."""
        if token is None:
            return
        try:
            otel_context.detach(token)
        except Exception:
            _log.exception("llmtel: could not detach the call context")

    def finish(self, result: Result) -> None:
        """End the call: span attributes and status, log record, metrics. Never raises."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        try:
            self._record(result)
        except Exception:
            _log.exception("llmtel: failed to record a chat call")
        finally:
            try:
                if self._span.is_recording():
                    self._span.end()
            except Exception:
                _log.exception("llmtel: failed to end a span")

    def _record(self, result: Result) -> None:
        latency_s = time.perf_counter() - self.start
        outcome = _outcome(result)
        error_type = type(result.error).__name__ if result.error is not None else None

        response: _Attrs = {}
        if result.response_model is not None:
            response[attr.GEN_AI_RESPONSE_MODEL] = result.response_model
        if result.response_id is not None:
            response[attr.GEN_AI_RESPONSE_ID] = result.response_id
        if result.finish_reasons:
            response[attr.GEN_AI_RESPONSE_FINISH_REASONS] = list(result.finish_reasons)
        for name, value in (
            (attr.GEN_AI_USAGE_INPUT_TOKENS, result.input_tokens),
            (attr.GEN_AI_USAGE_OUTPUT_TOKENS, result.output_tokens),
            (attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, result.cache_read_tokens),
            (attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, result.cache_creation_tokens),
            (attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, result.reasoning_tokens),
        ):
            if value is not None:
                response[name] = value
        if result.time_to_first_chunk_s is not None:
            response[attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = result.time_to_first_chunk_s
        response[attr.LLMTEL_OUTCOME] = outcome
        if error_type is not None:
            response[attr.ERROR_TYPE] = error_type
            status_code = getattr(result.error, "status_code", None)
            if isinstance(status_code, int):
                response[attr.HTTP_RESPONSE_STATUS_CODE] = status_code

        span = self._span
        span.set_attributes(response)
        if result.error is not None:
            span.record_exception(result.error)
            span.set_status(Status(StatusCode.ERROR, error_type))

        self._emit_log(result, outcome, latency_s, response)
        self._record_metrics(result, outcome, error_type, latency_s)

    def _emit_log(self, result: Result, outcome: str, latency_s: float, response: _Attrs) -> None:
        latency_ms = latency_s * 1000.0
        attributes: _Attrs = {**self._attributes, **response, attr.LLMTEL_LATENCY_MS: latency_ms}
        if self.previews:
            for name, value in (
                (attr.LLMTEL_INPUT_PREVIEW, self._input_preview),
                (attr.LLMTEL_SYSTEM_PREVIEW, self._system_preview),
                (attr.LLMTEL_OUTPUT_PREVIEW, result.output_preview),
            ):
                if value is not None:
                    attributes[name] = value
        if result.error is not None:
            severity = SeverityNumber.ERROR
        elif outcome == "ok":
            severity = SeverityNumber.INFO
        else:
            severity = SeverityNumber.WARN
        self._telemetry.logger.emit(
            timestamp=time.time_ns(),
            context=self._span_context,
            severity_number=severity,
            severity_text=severity.name,
            body=f"{attr.OPERATION_CHAT} {self._model or '-'} {outcome} {latency_ms:.0f} ms",
            attributes=attributes,
            event_name=attr.CALL_EVENT_NAME,
        )

    def _record_metrics(
        self, result: Result, outcome: str, error_type: str | None, latency_s: float
    ) -> None:
        attributes: _Attrs = dict(self._metric_attributes)
        if result.response_model is not None:
            attributes[attr.GEN_AI_RESPONSE_MODEL] = result.response_model
        if error_type is not None:
            attributes[attr.ERROR_TYPE] = error_type
        attributes[attr.LLMTEL_OUTCOME] = outcome
        self._telemetry.duration.record(latency_s, attributes)
        for token_type, count in (("input", result.input_tokens), ("output", result.output_tokens)):
            if count is not None:
                self._telemetry.token_usage.record(
                    count, {**attributes, attr.GEN_AI_TOKEN_TYPE: token_type}
                )


def start(telemetry: Telemetry, client: object, kwargs: Mapping[str, Any]) -> Call | None:
    """Start a call, or return None (and log why) if that fails."""
    try:
        return Call(telemetry, client, kwargs)
    except Exception:
        _log.exception("llmtel: failed to start recording a chat call")
        return None
