"""Eval queue lines (OTLP/JSON logs requests) into call and content records, and back to text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

CALL_EVENT = "llmtel.call"
CONTENT_EVENT = "llmtel.content"
CONTENT_INPUT = "llmtel.content.input"
CONTENT_OUTPUT = "llmtel.content.output"

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")

Kind = Literal["call", "content"]
Value = str | int | float | bool | list[Any] | dict[str, Any] | None


class MalformedLine(ValueError):
    """A queue line that is not an OTLP/JSON logs request."""


@dataclass(frozen=True)
class QueueRecord:
    """One ``llmtel.call`` or ``llmtel.content`` record from the eval queue."""

    kind: Kind
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    attributes: dict[str, Value]
    service_name: str | None


@dataclass(frozen=True)
class ParsedLine:
    """What one queue line held: its usable records, and how many records were unusable."""

    records: list[QueueRecord]
    bad_records: int
    other_records: int


def parse_line(line: bytes | str) -> ParsedLine:
    """Parse one line of the eval queue: an OTLP/JSON ``ExportLogsServiceRequest``.

    Records without a valid trace and span id are counted in ``bad_records``; records
    that are neither call nor content records in ``other_records``.

    Raises:
        MalformedLine: not JSON, or not shaped like an OTLP/JSON logs request.
    """
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedLine(f"not JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("resourceLogs"), list):
        raise MalformedLine("not an OTLP/JSON logs request (no resourceLogs list)")
    records: list[QueueRecord] = []
    bad = other = 0
    for resource_logs in request["resourceLogs"]:
        resource = _dict(resource_logs, "resourceLogs[]")
        resource_attributes = attributes_of(_dict(_get(resource, "resource", {}), "resource"))
        service = resource_attributes.get("service.name")
        for scope_logs in _list(_get(resource, "scopeLogs", []), "scopeLogs"):
            scope = _dict(scope_logs, "scopeLogs[]")
            for raw in _list(_get(scope, "logRecords", []), "logRecords"):
                record = _dict(raw, "logRecords[]")
                attributes = attributes_of(record)
                kind = _kind(str(record.get("eventName") or ""), attributes)
                if kind is None:
                    other += 1
                    continue
                trace_id = str(record.get("traceId") or "").lower()
                span_id = str(record.get("spanId") or "").lower()
                if not _TRACE_ID.match(trace_id) or not _SPAN_ID.match(span_id):
                    bad += 1
                    continue
                records.append(
                    QueueRecord(
                        kind=kind,
                        trace_id=trace_id,
                        span_id=span_id,
                        attributes=attributes,
                        service_name=service if isinstance(service, str) else None,
                    )
                )
    return ParsedLine(records, bad, other)


def _kind(event: str, attributes: Mapping[str, Value]) -> Kind | None:
    if event == CALL_EVENT:
        return "call"
    if event == CONTENT_EVENT or CONTENT_INPUT in attributes or CONTENT_OUTPUT in attributes:
        return "content"
    return None


def _get(holder: dict[str, Any], key: str, default: object) -> object:
    value = holder.get(key)
    return default if value is None else value


def _dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedLine(f"{where} is not an object")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedLine(f"{where} is not an array")
    return value


def attributes_of(holder: Mapping[str, Any]) -> dict[str, Value]:
    """The ``attributes`` of an OTLP/JSON resource or record as plain Python values.

    Example:
        >>> attributes_of({"attributes": [{"key": "n", "value": {"intValue": "3"}}]})
        {'n': 3}
    """
    out: dict[str, Value] = {}
    raw = holder.get("attributes")
    for item in _list([] if raw is None else raw, "attributes"):
        entry = _dict(item, "attribute")
        key = entry.get("key")
        if isinstance(key, str):
            out[key] = any_value(entry.get("value") or {})
    return out


def any_value(value: object) -> Value:
    """An OTLP/JSON ``AnyValue`` as a plain Python value (``intValue`` is a string there)."""
    if not isinstance(value, dict):
        raise MalformedLine("an attribute value is not an object")
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            raise MalformedLine(f"bad intValue {value['intValue']!r}") from None
    if "doubleValue" in value:
        raw = value["doubleValue"]
        if isinstance(raw, int | float | str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise MalformedLine(f"bad doubleValue {raw!r}")
    if "arrayValue" in value:
        items = _dict(value["arrayValue"], "arrayValue").get("values") or []
        return [any_value(v) for v in _list(items, "arrayValue.values")]
    if "kvlistValue" in value:
        kv = _dict(value["kvlistValue"], "kvlistValue")
        return {k: v for k, v in attributes_of({"attributes": kv.get("values") or []}).items()}
    return None


# -- turning captured content into text for the judge -----------------------------------


def render_conversation(content_input: str) -> str:
    """The prompt of a call (``llmtel.content.input``: JSON messages) as a readable transcript.

    Example:
        >>> print(render_conversation('[{"role": "system", "content": "Be brief."},'
        ...                           ' {"role": "user", "content": "Hi"}]'))
        [system]
        Be brief.
        <BLANKLINE>
        [user]
        Hi
    """
    try:
        messages = json.loads(content_input)
    except json.JSONDecodeError:
        return content_input
    if isinstance(messages, str):
        return f"[user]\n{messages}"
    if not isinstance(messages, list):
        return content_input
    blocks = []
    for message in messages:
        if isinstance(message, dict):
            role = str(message.get("role") or message.get("type") or "message")
            blocks.append(f"[{role}]\n{_message_text(message)}")
        else:
            blocks.append(f"[user]\n{_text(message)}")
    return "\n\n".join(blocks)


def render_answer(content_output: str) -> str:
    """The answer of a call (``llmtel.content.output``) as text: the first choice's content.

    Example:
        >>> render_answer('[{"role": "assistant", "content": "Paris."}]')
        'Paris.'
        >>> render_answer('[{"role": "assistant", "refusal": "I cannot help with that."}]')
        '[refusal] I cannot help with that.'
    """
    try:
        output = json.loads(content_output)
    except json.JSONDecodeError:
        return content_output
    if isinstance(output, str):
        return output
    if isinstance(output, list) and output and all(isinstance(o, dict) for o in output):
        if "role" in output[0]:  # Chat Completions: one message per choice
            return _message_text(output[0])
        return "\n".join(_message_text(item) for item in output)  # Responses output items
    return _text(output)


def _message_text(message: Mapping[str, Any]) -> str:
    parts: list[str] = []
    content = message.get("content")
    if content is not None:
        parts.append(_text(content))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(f"[refusal] {refusal}")
    for call in _tool_calls(message):
        parts.append(call)
    if message.get("type") == "function_call":
        parts.append(f"[tool call] {message.get('name')}({message.get('arguments', '')})")
    if message.get("type") == "function_call_output":
        parts.append(f"[tool result] {_text(message.get('output'))}")
    return "\n".join(p for p in parts if p)


def _tool_calls(message: Mapping[str, Any]) -> Iterator[str]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            yield f"[tool call] {function.get('name')}({function.get('arguments', '')})"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return "\n".join(t for t in (_part_text(part) for part in value) if t)
    if isinstance(value, Mapping):
        return _part_text(value)
    return str(value)


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping):
        for key in ("text", "refusal", "content", "output"):
            if isinstance(part.get(key), str):
                return str(part[key])
        if part.get("type") in ("image_url", "input_image"):
            return "[image]"
        return json.dumps(part, ensure_ascii=False)
    return str(part)
