"""What llmtel records for one call of each shape, as data for the ``floor`` variant.

Makes one call per shape under ``llmtel.testing.capture()`` and writes the span's name
and attributes, the log record and the histogram points to ``record.json`` beside the
bodies. A shape llmtel does not record (no span) is left out, and the floor has no
figure for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.overhead import transport
from llmtel.testing import capture

# Attributes known when the call starts (llmtel sets them on start_span); the rest
# are set when the answer is known.
_START_PREFIXES = (
    "gen_ai.operation.",
    "gen_ai.provider.",
    "gen_ai.request.",
    "gen_ai.conversation.",
    "server.",
    "user.",
    "session.",
    "llmtel.endpoint",
)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def write(bodies: Path) -> dict[str, Any]:
    """Record each shape once; write and return ``{shape: record}``."""
    shapes = json.loads((bodies / "index.json").read_text())["shapes"]
    client = transport.client(transport.load_bodies(bodies))
    records: dict[str, Any] = {}
    for shape, spec in shapes.items():
        with capture() as cap:
            transport.call(client, spec["api"], transport.request_kwargs(shape, spec))
            spans, logs, metrics = cap.spans(), cap.logs(), cap.metrics()
        if len(spans) != 1:
            continue
        span = spans[0]
        attributes = {k: _plain(v) for k, v in (span.attributes or {}).items()}
        points = [
            {
                "name": metric.name,
                "value": point.sum,  # type: ignore[union-attr]
                "attributes": dict(point.attributes or {}),
            }
            for metric in metrics
            for point in metric.data.data_points
        ]
        log: dict[str, Any] = {}
        if logs:
            record = logs[0].log_record
            log = {
                "severity_number": record.severity_number.value if record.severity_number else 9,
                "severity_text": record.severity_text,
                "body": record.body,
                "event_name": getattr(record, "event_name", None),
                "attributes": {
                    k: _plain(v)
                    for k, v in (record.attributes or {}).items()
                    if k != "llmtel.latency_ms"
                },
            }
        records[shape] = {
            "name": span.name,
            "start_attributes": {
                k: v for k, v in attributes.items() if k.startswith(_START_PREFIXES)
            },
            "end_attributes": {
                k: v for k, v in attributes.items() if not k.startswith(_START_PREFIXES)
            },
            "log": log,
            "points": points,
        }
    (bodies / "record.json").write_text(json.dumps(records, indent=1))
    return records
