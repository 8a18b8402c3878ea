"""One instrumented call: its span, its log records and its metric points.

A ``Call`` is started before the SDK sends the request and finished exactly once,
when the response (or the end of a stream, or an exception) is known. Every method
that runs on the app's call path swallows, logs and counts its own failures.

What a call emits:

- a CLIENT span ``{operation} {model}`` with the request, response, usage, cost,
  outcome and app context attributes;
- an ``llmtel.call`` log record with the same attributes plus latency and (unless
  capture is ``none``) previews, carrying the span's trace and span ids;
- with capture ``full``, an ``llmtel.content`` log record with the whole prompt and
  answer, carrying the same ids;
- the semconv histograms ``gen_ai.client.operation.duration`` and
  ``gen_ai.client.token.usage``, labelled with bounded attributes only.
"""

from __future__ import annotations

import json
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
from llmtel import _context, _registry
from llmtel._cost import Tokens
from llmtel._state import Telemetry, report_error

Attrs = dict[str, AttributeValue]

# The request attributes that are also metric attributes (low cardinality only).
_METRIC_REQUEST_KEYS = (
    attr.GEN_AI_OPERATION_NAME,
    attr.GEN_AI_PROVIDER_NAME,
    attr.GEN_AI_REQUEST_MODEL,
)

# Part types whose text is the text of a message (Chat and Responses APIs).
_TEXT_PART_TYPES = ("text", "input_text", "output_text")


def cap(text: str, limit: int = attr.PREVIEW_MAX_CHARS) -> str:
    """Return ``text`` cut to at most ``limit`` characters, marking a cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


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
        if kind in _TEXT_PART_TYPES:
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


def jsonable(value: object) -> object:
    """Return ``value`` as plain JSON data (SDK models dumped, unknown objects as text)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:
            return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def to_json(value: object) -> str:
    """Serialise ``value`` (SDK models, TypedDicts, lists) as compact JSON text."""
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))


def number(value: object) -> float | int | None:
    """Return ``value`` if it is a real int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def integer(value: object) -> int | None:
    """Return ``value`` if it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(slots=True)
class Request:
    """What is known about a call before it is sent."""

    operation: str
    attributes: Attrs
    input_preview: str | None = None
    system_preview: str | None = None
    input_content: str | None = None  # JSON, only with capture "full"

    @property
    def model(self) -> str | None:
        """The requested model, if any."""
        model = self.attributes.get(attr.GEN_AI_REQUEST_MODEL)
        return model if isinstance(model, str) and model else None


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
    output_content: object = None  # JSON-able, only with capture "full"
    refusal: bool = False
    failure: str | None = None  # an error the provider reported in a 200 answer
    time_to_first_chunk_s: float | None = None
    error: BaseException | None = None
    stream_end: attr.StreamEnd | None = None
    responded: bool = False  # the provider answered (a body or a first chunk arrived)


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
            return "content_filter" if exc.code == "content_filter" else "bad_request"
    return "error"


def outcome_of(result: Result) -> attr.Outcome:
    """Return the outcome of a finished call."""
    if result.error is not None:
        return classify_error(result.error)
    if result.failure is not None:
        return "error"
    if "content_filter" in result.finish_reasons:
        return "content_filter"
    if result.refusal:
        return "refusal"
    return "ok"


def server_attributes(client: object) -> Attrs:
    """Return ``server.address`` and ``server.port`` for an OpenAI client's base URL."""
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if not isinstance(host, str) or not host:
        return {}
    port = getattr(url, "port", None)
    if not isinstance(port, int):
        port = 443 if getattr(url, "scheme", "https") == "https" else 80
    return {attr.SERVER_ADDRESS: host, attr.SERVER_PORT: port}


def _qualified_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _cut_content(text: str) -> tuple[str, bool]:
    if len(text) <= attr.CONTENT_MAX_CHARS:
        return text, False
    return text[: attr.CONTENT_MAX_CHARS], True


class Call:
    """A started call. The first ``finish`` ends it; later ones do nothing."""

    def __init__(self, telemetry: Telemetry, client: object, request: Request) -> None:
        self._telemetry = telemetry
        self._lock = threading.Lock()
        self._finished = False
        self.capture = telemetry.capture_content
        self.previews = self.capture != "none"
        self.full = self.capture == "full"
        self._request = request
        self._operation = request.operation
        self._model = request.model
        base_url = getattr(client, "base_url", None)
        self._base_url = str(base_url) if base_url is not None else None
        app = _context.current()
        requested = request.attributes
        self._metric_attributes: Attrs = {
            key: requested[key] for key in _METRIC_REQUEST_KEYS if key in requested
        }
        self._metric_attributes.update({k: app[k] for k in _context.METRIC_KEYS if k in app})
        self._attributes: Attrs = {**request.attributes, **server_attributes(client), **app}
        self.start = time.perf_counter()
        self._span = telemetry.tracer.start_span(
            f"{self._operation} {self._model}" if self._model else self._operation,
            kind=SpanKind.CLIENT,
            attributes=self._attributes,
        )
        self._span_context = trace.set_span_in_context(self._span)
        span_context = self._span.get_span_context()
        self.ref = _registry.CallRef(
            span_context.trace_id,
            span_context.span_id,
            {
                key: value
                for key, value in self._attributes.items()
                if key
                in (
                    attr.GEN_AI_OPERATION_NAME,
                    attr.GEN_AI_REQUEST_MODEL,
                    attr.LLMTEL_ENDPOINT,
                    attr.LLMTEL_PROMPT_VERSION,
                )
            },
        )
        _registry.remember_call(self.ref)

    @property
    def finished(self) -> bool:
        """True once ``finish`` has run."""
        return self._finished

    def activate(self) -> Token[Context] | None:
        """Make the call's span current (for spans the SDK's transport may start)."""
        try:
            return otel_context.attach(self._span_context)
        except Exception:
            report_error("attach the call context")
            return None

    def deactivate(self, token: Token[Context] | None) -> None:
        """Undo ``activate``."""
        if token is None:
            return
        try:
            otel_context.detach(token)
        except Exception:
            report_error("detach the call context")

    def finish(self, result: Result) -> None:
        """End the call: span attributes and status, log records, metrics. Never raises."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        try:
            self._record(result)
        except Exception:
            report_error("record a call")
        finally:
            try:
                if self._span.is_recording():
                    self._span.end()
            except Exception:
                report_error("end a span")

    def _cost(self, result: Result) -> float | None:
        if result.input_tokens is None:
            return None
        try:
            return self._telemetry.pricer.cost(
                (result.response_model, self._model),
                Tokens(
                    input=result.input_tokens,
                    output=result.output_tokens or 0,
                    cache_read=result.cache_read_tokens,
                    cache_write=result.cache_creation_tokens,
                ),
                self._base_url,
            )
        except Exception:
            report_error("compute a cost")
            return None

    def _record(self, result: Result) -> None:
        latency_s = time.perf_counter() - self.start
        outcome = outcome_of(result)
        error_type: str | None = None
        if result.error is not None:
            error_type = type(result.error).__name__
        elif result.failure is not None:
            error_type = result.failure

        response: Attrs = {}
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
        if result.responded and result.input_tokens is None and result.output_tokens is None:
            response[attr.LLMTEL_USAGE_MISSING] = True
        cost = self._cost(result)
        if cost is not None:
            response[attr.LLMTEL_COST_USD] = cost
        if result.time_to_first_chunk_s is not None:
            response[attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = result.time_to_first_chunk_s
        if result.stream_end is not None:
            response[attr.LLMTEL_STREAM_END] = result.stream_end
        response[attr.LLMTEL_OUTCOME] = outcome
        if error_type is not None:
            response[attr.ERROR_TYPE] = error_type
            status_code = getattr(result.error, "status_code", None)
            if isinstance(status_code, int):
                response[attr.HTTP_RESPONSE_STATUS_CODE] = status_code

        if result.response_id is not None:
            self.ref.attributes[attr.GEN_AI_RESPONSE_ID] = result.response_id
            _registry.remember_response_id(result.response_id, self.ref)
        span = self._span
        span.set_attributes(response)
        if result.error is not None:
            if self.previews:
                span.record_exception(result.error)
            else:  # the message and stack can quote the prompt
                span.add_event("exception", {"exception.type": _qualified_name(result.error)})
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR, error_type))

        self._emit_log(result, outcome, latency_s, response)
        if self.full:
            self._emit_content(result, response)
        self._record_metrics(result, outcome, error_type, latency_s)

    def _emit_log(self, result: Result, outcome: str, latency_s: float, response: Attrs) -> None:
        latency_ms = latency_s * 1000.0
        attributes: Attrs = {
            **self._attributes,
            **response,
            attr.LLMTEL_LATENCY_MS: latency_ms,
            attr.LLMTEL_CALL_ID: self.ref.call_id,
        }
        if self.previews:
            for name, value in (
                (attr.LLMTEL_INPUT_PREVIEW, self._request.input_preview),
                (attr.LLMTEL_SYSTEM_PREVIEW, self._request.system_preview),
                (attr.LLMTEL_OUTPUT_PREVIEW, result.output_preview),
            ):
                if value is not None:
                    attributes[name] = value
        if result.error is not None or result.failure is not None:
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
            body=f"{self._operation} {self._model or '-'} {outcome} {latency_ms:.0f} ms",
            attributes=attributes,
            event_name=attr.CALL_EVENT_NAME,
        )

    def _emit_content(self, result: Result, response: Attrs) -> None:
        attributes: Attrs = {
            key: value
            for key, value in {**self._attributes, **response}.items()
            if key
            in (
                attr.GEN_AI_OPERATION_NAME,
                attr.GEN_AI_PROVIDER_NAME,
                attr.GEN_AI_REQUEST_MODEL,
                attr.GEN_AI_RESPONSE_MODEL,
                attr.GEN_AI_RESPONSE_ID,
                attr.LLMTEL_ENDPOINT,
                attr.LLMTEL_PROMPT_VERSION,
            )
        }
        attributes[attr.LLMTEL_CALL_ID] = self.ref.call_id
        truncated = False
        if self._request.input_content is not None:
            text, cut = _cut_content(self._request.input_content)
            attributes[attr.LLMTEL_CONTENT_INPUT] = text
            truncated |= cut
        if result.output_content is not None:
            output = result.output_content
            text, cut = _cut_content(output if isinstance(output, str) else to_json(output))
            attributes[attr.LLMTEL_CONTENT_OUTPUT] = text
            truncated |= cut
        if truncated:
            attributes[attr.LLMTEL_CONTENT_TRUNCATED] = True
        self._telemetry.logger.emit(
            timestamp=time.time_ns(),
            context=self._span_context,
            severity_number=SeverityNumber.INFO,
            severity_text=SeverityNumber.INFO.name,
            body=f"{self._operation} {self._model or '-'} content",
            attributes=attributes,
            event_name=attr.CONTENT_EVENT_NAME,
        )

    def _record_metrics(
        self, result: Result, outcome: str, error_type: str | None, latency_s: float
    ) -> None:
        attributes: Attrs = dict(self._metric_attributes)
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


def start(telemetry: Telemetry, client: object, request: Request) -> Call | None:
    """Start a call, or return None (and log why) if that fails."""
    try:
        return Call(telemetry, client, request)
    except Exception:
        report_error("start recording a call")
        return None


def read_kwargs(kwargs: Mapping[str, Any], key: str) -> object:
    """Return ``kwargs[key]``, or None when absent or the SDK's ``omit``/``NOT_GIVEN``."""
    value = kwargs.get(key)
    if isinstance(value, openai.NotGiven | openai.Omit):
        return None
    return value
