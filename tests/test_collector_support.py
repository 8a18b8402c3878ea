"""Helpers shared by the collector tests (this module holds no tests).

The collector tests speak raw OTLP/HTTP JSON to the real collector, so they control
every field (trace ids, event names, span kinds, status) and do not depend on the
emitter. They read back what each backend received over its own HTTP API, and what
the file exporters wrote.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import zstandard
from stack import NativeStack

# The collector's own files, under the native stack's state directory
# (NativeStack.collector_env sets these directories).
BLOB_FILE = "content.otlp"
EVAL_QUEUE_FILE = "eval-queue.jsonl"


# -- building OTLP/JSON ------------------------------------------------------------------


def otlp_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    raise TypeError(f"no OTLP value for {value!r}")


def otlp_attributes(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": otlp_value(value)} for key, value in attributes.items()]


def resource(service: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"attributes": otlp_attributes({"service.name": service, **(extra or {})})}


def span(
    trace_id: str,
    span_id: str,
    name: str,
    attributes: dict[str, Any],
    *,
    kind: int = 3,  # SPAN_KIND_CLIENT
    duration_s: float = 1.0,
    end_ns: int | None = None,
    events: list[tuple[str, dict[str, Any]]] | None = None,
    status: tuple[int, str] | None = None,
) -> dict[str, Any]:
    end = end_ns if end_ns is not None else time.time_ns()
    start = end - int(duration_s * 1e9)
    body: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": otlp_attributes(attributes),
    }
    if events:
        body["events"] = [
            {"timeUnixNano": str(start + 1000), "name": event, "attributes": otlp_attributes(a)}
            for event, a in events
        ]
    if status is not None:
        body["status"] = {"code": status[0], "message": status[1]}
    return body


def traces_payload(
    service: str, spans: list[dict[str, Any]], resource_extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": resource(service, resource_extra),
                "scopeSpans": [{"scope": {"name": "llmtel-collector-tests"}, "spans": spans}],
            }
        ]
    }


def log_record(
    attributes: dict[str, Any],
    *,
    body: str | None = None,
    event_name: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> dict[str, Any]:
    now = str(time.time_ns())
    record: dict[str, Any] = {
        "timeUnixNano": now,
        "observedTimeUnixNano": now,
        "severityNumber": 9,
        "severityText": "INFO",
        "attributes": otlp_attributes(attributes),
    }
    if body is not None:
        record["body"] = {"stringValue": body}
    if event_name is not None:
        record["eventName"] = event_name
    if trace_id is not None:
        record["traceId"] = trace_id
    if span_id is not None:
        record["spanId"] = span_id
    return record


def logs_payload(
    service: str, records: list[dict[str, Any]], resource_extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": resource(service, resource_extra),
                "scopeLogs": [{"scope": {"name": "llmtel-collector-tests"}, "logRecords": records}],
            }
        ]
    }


def gauge_payload(
    service: str, name: str, points: list[tuple[dict[str, Any], float]]
) -> dict[str, Any]:
    now = str(time.time_ns())
    return {
        "resourceMetrics": [
            {
                "resource": resource(service),
                "scopeMetrics": [
                    {
                        "scope": {"name": "llmtel-collector-tests"},
                        "metrics": [
                            {
                                "name": name,
                                "gauge": {
                                    "dataPoints": [
                                        {
                                            "attributes": otlp_attributes(a),
                                            "timeUnixNano": now,
                                            "asDouble": value,
                                        }
                                        for a, value in points
                                    ]
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }


def send(port: int, signal: str, payload: dict[str, Any]) -> None:
    """POST one OTLP/JSON request to the collector; fail unless it is accepted."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/{signal}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.read()


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


# -- reading back ------------------------------------------------------------------------


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def jaeger_trace(stack: NativeStack, trace_id: str) -> dict[str, Any]:
    """The trace as Jaeger's HTTP API returns it; AssertionError while it is not there."""
    url = f"http://127.0.0.1:{stack.ports.jaeger_query}/api/traces/{trace_id}"
    try:
        body = get_json(url)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"Jaeger: HTTP {error.code} for trace {trace_id}") from error
    assert body.get("data"), f"Jaeger has no trace {trace_id}"
    return body["data"][0]  # type: ignore[no-any-return]


def jaeger_span_tags(trace: dict[str, Any], span_id: str) -> dict[str, Any]:
    (found,) = [s for s in trace["spans"] if s["spanID"] == span_id]
    return {tag["key"]: tag["value"] for tag in found["tags"]}


def victorialogs(stack: NativeStack, query: str, limit: int = 100000) -> list[dict[str, Any]]:
    """Records matching a LogsQL query, one dict of fields each."""
    url = f"http://127.0.0.1:{stack.ports.victorialogs}/select/logsql/query?" + (
        urllib.parse.urlencode({"query": query, "limit": str(limit)})
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def prometheus(stack: NativeStack, query: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    body = get_json(url)
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def prometheus_values(stack: NativeStack, query: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Query result as {sorted label pairs: value}."""
    return {
        tuple(sorted(sample["metric"].items())): float(sample["value"][1])
        for sample in prometheus(stack, query)
    }


def collector_dir(stack: NativeStack, variable: str) -> Path:
    return Path(stack.collector_env()[variable])


def _flatten(value: dict[str, Any]) -> Any:
    """An OTLP/JSON AnyValue as a Python value (maps and arrays recursively)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return value["boolValue"]
    if "kvlistValue" in value:
        return {kv["key"]: _flatten(kv["value"]) for kv in value["kvlistValue"].get("values", [])}
    if "arrayValue" in value:
        return [_flatten(v) for v in value["arrayValue"].get("values", [])]
    return None


def flat_log_records(request: dict[str, Any]) -> list[dict[str, Any]]:
    """One OTLP/JSON logs request as flat records: resource and record attributes,
    plus body, event_name, trace_id and span_id."""
    records = []
    for resource_logs in request.get("resourceLogs", []):
        resource_attributes = {
            kv["key"]: _flatten(kv["value"])
            for kv in resource_logs.get("resource", {}).get("attributes", [])
        }
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                flat = {
                    "resource": resource_attributes,
                    "attributes": {
                        kv["key"]: _flatten(kv["value"]) for kv in record.get("attributes", [])
                    },
                    "body": _flatten(record["body"]) if "body" in record else None,
                    "event_name": record.get("eventName", ""),
                    "trace_id": record.get("traceId", ""),
                    "span_id": record.get("spanId", ""),
                }
                records.append(flat)
    return records


def zstd_decompress(frames: bytes) -> bytes:
    """One or more concatenated zstd frames, decompressed (frames need not state their size)."""
    out, rest = b"", frames
    while rest:
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        out += decompressor.decompress(rest)
        rest = decompressor.unused_data
    return out


def read_blob_store(directory: Path) -> list[dict[str, Any]]:
    """Every record in the blob store: each write is a 4-byte big-endian length, then a
    zstd frame holding one OTLP/JSON logs request (rotated files included)."""
    frames = b""
    for path in sorted(directory.glob("content*.otlp")):
        data = path.read_bytes()
        offset = 0
        while offset + 4 <= len(data):
            size = int.from_bytes(data[offset : offset + 4], "big")
            frames += data[offset + 4 : offset + 4 + size]
            offset += 4 + size
    if not frames:
        return []
    text = zstd_decompress(frames).decode()
    decoder, records, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        request, index = decoder.raw_decode(text, index)
        records.extend(flat_log_records(request))
    return records


def read_eval_queue(directory: Path) -> list[dict[str, Any]]:
    """Every record in the eval queue: one OTLP/JSON logs request per line."""
    records = []
    for path in sorted(directory.glob("eval-queue*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                records.extend(flat_log_records(json.loads(line)))
    return records
