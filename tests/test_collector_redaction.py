"""PII never leaves the collector: the redaction corpus, through the real binary, read back
from every place the data lands.

Each case of tests/data/redaction-corpus.yaml is sent once as OTLP/JSON to the real
collector on the repo's config: in a span attribute, a span event, a span status
message, a log body, a log attribute, a full-content record, a metric data point
attribute, and wrapped in a JSON tool-call argument string. Jaeger, VictoriaLogs, the
blob store and Prometheus must then hold exactly the expected text.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, poll_until
from stack import NativeStack
from test_collector_support import (
    collector_dir,
    gauge_payload,
    jaeger_span_tags,
    jaeger_trace,
    log_record,
    logs_payload,
    new_span_id,
    new_trace_id,
    prometheus,
    read_blob_store,
    send,
    span,
    traces_payload,
    victorialogs,
)

pytestmark = pytest.mark.stack

CORPUS = yaml.safe_load((ROOT / "tests" / "data" / "redaction-corpus.yaml").read_text())
CASES: list[tuple[str, str, str]] = [
    (case["id"], case["input"], case["expected"]) for case in CORPUS["positive"]
] + [(case["id"], case["input"], case["input"]) for case in CORPUS["negative"]]

# Resource attributes every probe carries: an IP to mask, and values that must survive.
INSTANCE_ID = str(uuid.uuid4())
RESOURCE = {"host.ip": "10.1.2.3", "service.version": "1.2.3", "service.instance.id": INSTANCE_ID}
RESOURCE_EXPECTED = {
    "host.ip": "[REDACTED:IP]",
    "service.version": "1.2.3",
    "service.instance.id": INSTANCE_ID,
}


def tool_arguments(text: str) -> str:
    """The case as a JSON tool-call argument string, the shape LLM tool calls carry."""
    return json.dumps({"tool": "lookup", "arguments": text, "limit": 5})


@dataclass
class Probe:
    case_id: str
    text: str
    expected: str
    trace_id: str
    span_id: str


@dataclass
class Sent:
    service: str
    probes: list[Probe]


@pytest.fixture(scope="module")
def sent(stack: NativeStack) -> Sent:
    """Send every corpus case through the collector once, in every signal."""
    service = f"llmtel-redaction-{uuid.uuid4().hex[:8]}"
    probes = [
        Probe(case_id, text, expected, new_trace_id(), new_span_id())
        for case_id, text, expected in CASES
    ]
    port = stack.ports.collector_otlp_http
    spans = [
        span(
            p.trace_id,
            p.span_id,
            "redaction probe",
            {
                "probe.case": p.case_id,
                "probe.text": p.text,
                "gen_ai.tool.call.arguments": tool_arguments(p.text),
            },
            kind=1,  # INTERNAL: no gen_ai.* attributes, so no llm_* metrics either
            events=[("probe", {"probe.text": p.text})],
            status=(2, p.text),
        )
        for p in probes
    ]
    send(port, "traces", traces_payload(service, spans, RESOURCE))
    previews = [
        log_record(
            {"probe.case": p.case_id, "probe.text": p.text, "probe.json": tool_arguments(p.text)},
            body=p.text,
            event_name="llmtel.redaction_probe",
            trace_id=p.trace_id,
            span_id=p.span_id,
        )
        for p in probes
    ]
    content = [
        log_record(
            {
                "probe.case": p.case_id,
                "llmtel.content.input": p.text,
                "llmtel.content.output": tool_arguments(p.text),
            },
            event_name="llmtel.content",
            trace_id=p.trace_id,
            span_id=p.span_id,
        )
        for p in probes
    ]
    send(port, "logs", logs_payload(service, previews + content, RESOURCE))
    points = [({"probe.case": p.case_id, "probe.text": p.text}, 1.0) for p in probes]
    send(port, "metrics", gauge_payload(service, "llmtel_redaction_probe", points))
    return Sent(service, probes)


def mismatches(found: dict[str, Any], probes: list[Probe], expect: Any) -> list[str]:
    """Human-readable differences between what a backend holds and the corpus."""
    problems = []
    for p in probes:
        if p.case_id not in found:
            problems.append(f"{p.case_id}: missing")
            continue
        want = expect(p)
        if found[p.case_id] != want:
            problems.append(f"{p.case_id}: got {found[p.case_id]!r}, expected {want!r}")
    return problems


def test_corpus_is_large_enough_and_well_formed() -> None:
    """Verify that the corpus has at least 40 positive and 20 negative cases with unique ids."""
    assert len(CORPUS["positive"]) >= 40
    assert len(CORPUS["negative"]) >= 20
    ids = [case_id for case_id, _, _ in CASES]
    assert len(ids) == len(set(ids))
    for case in CORPUS["positive"]:
        assert case["input"] != case["expected"], case["id"]
        assert "[REDACTED:" in case["expected"], case["id"]
    assert all("expected" not in case for case in CORPUS["negative"])


def test_jaeger_holds_redacted_span_attributes_events_and_status(
    stack: NativeStack, sent: Sent
) -> None:
    """Verify that Jaeger received every case redacted in attributes, events, status and JSON."""
    found: dict[str, tuple[str, str, str, str]] = {}
    resources = []
    for p in sent.probes:
        trace = poll_until(
            lambda p=p: jaeger_trace(stack, p.trace_id), f"trace of {p.case_id} in Jaeger"
        )
        tags = jaeger_span_tags(trace, p.span_id)
        (stored,) = trace["spans"]
        (event,) = stored["logs"]
        event_fields = {field["key"]: field["value"] for field in event["fields"]}
        found[p.case_id] = (
            tags["probe.text"],
            tags["gen_ai.tool.call.arguments"],
            event_fields["probe.text"],
            tags["otel.status_description"],
        )
        process = trace["processes"][stored["processID"]]
        resources.append({tag["key"]: tag["value"] for tag in process["tags"]})
    expect = lambda p: (p.expected, tool_arguments(p.expected), p.expected, p.expected)  # noqa: E731
    assert mismatches(found, sent.probes, expect) == []
    assert all(r == RESOURCE_EXPECTED for r in resources), resources[0]


def test_victorialogs_holds_redacted_bodies_and_attributes(stack: NativeStack, sent: Sent) -> None:
    """Verify that VictoriaLogs received every case redacted in the body, attributes and JSON."""

    def records() -> list[dict[str, Any]]:
        got = victorialogs(stack, f'service.name:"{sent.service}"')
        assert len(got) == len(sent.probes), f"{len(got)} records"
        return got

    stored = poll_until(records, f"{len(sent.probes)} probe records in VictoriaLogs")
    found = {r["probe.case"]: (r["_msg"], r["probe.text"], r["probe.json"]) for r in stored}
    expect = lambda p: (p.expected, p.expected, tool_arguments(p.expected))  # noqa: E731
    assert mismatches(found, sent.probes, expect) == []
    for record in stored:
        assert {key: record[key] for key in RESOURCE_EXPECTED} == RESOURCE_EXPECTED
        assert "llmtel.redact.tmp" not in record


def test_blob_store_holds_redacted_content(stack: NativeStack, sent: Sent) -> None:
    """Verify that the blob store received every full-content record redacted."""
    blob_dir = collector_dir(stack, "LLMTEL_BLOB_DIR")

    def records() -> list[dict[str, Any]]:
        got = [
            r for r in read_blob_store(blob_dir) if r["resource"]["service.name"] == sent.service
        ]
        assert len(got) == len(sent.probes), f"{len(got)} content records"
        return got

    stored = poll_until(records, f"{len(sent.probes)} content records in the blob store")
    found = {
        r["attributes"]["probe.case"]: (
            r["attributes"]["llmtel.content.input"],
            r["attributes"]["llmtel.content.output"],
        )
        for r in stored
    }
    assert mismatches(found, sent.probes, lambda p: (p.expected, tool_arguments(p.expected))) == []
    assert all(r["resource"]["host.ip"] == "[REDACTED:IP]" for r in stored)


def test_prometheus_holds_redacted_metric_attributes(stack: NativeStack, sent: Sent) -> None:
    """Verify that metric data point attributes reach Prometheus redacted."""

    def series() -> list[dict[str, Any]]:
        got = prometheus(stack, f'llmtel_redaction_probe{{job="{sent.service}"}}')
        assert len(got) == len(sent.probes), f"{len(got)} series"
        return got

    stored = poll_until(series, f"{len(sent.probes)} probe series in Prometheus", timeout=90)
    found = {s["metric"]["probe_case"]: s["metric"]["probe_text"] for s in stored}
    assert mismatches(found, sent.probes, lambda p: p.expected) == []


# -- keyed hashing of user.id ----------------------------------------------------------

HASH_KEY = "k3y0fTheTestSuite"


def keyed_hash(key: str, user_id: str) -> str:
    """The collector's keyed hash: sha256(key ":" sha256(key ":" user.id)), hex."""
    inner = hashlib.sha256(f"{key}:{user_id}".encode()).hexdigest()
    return hashlib.sha256(f"{key}:{inner}".encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SecondCollector:
    otlp_http_port: int


@pytest.fixture(scope="module")
def hashing_collector(
    stack: NativeStack, bins: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecondCollector]:
    """A second collector on the same config and backends, with LLMTEL_USER_ID_HASH_KEY set."""
    state = tmp_path_factory.mktemp("hashing-collector")
    ports = {name: free_port() for name in ("grpc", "http", "health", "telemetry")}
    env = {
        **os.environ,
        **stack.collector_env(),
        "LLMTEL_USER_ID_HASH_KEY": HASH_KEY,
        "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "OTELCOL_TELEMETRY_PORT": str(ports["telemetry"]),
        "OTELCOL_QUEUE_DIR": str(state / "queue"),
        "LLMTEL_BLOB_DIR": str(state / "blob"),
        "LLMTEL_EVAL_QUEUE_DIR": str(state / "eval-queue"),
    }
    config = ROOT / "collector-config" / "otelcol-config.yaml"
    with (state / "otelcol.log").open("wb") as log:
        process = subprocess.Popen(
            [str(bins["otelcol"]), f"--config={config}"], env=env, stdout=log, stderr=log
        )

    def healthy() -> None:
        assert process.poll() is None, (state / "otelcol.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['health']}/", timeout=2):
                pass
        except (urllib.error.URLError, OSError) as error:
            raise AssertionError(str(error)) from error

    poll_until(healthy, "the hashing collector to be healthy", timeout=60, interval=0.3)
    yield SecondCollector(ports["http"])
    process.terminate()
    process.wait(timeout=20)


def send_user_ids(port: int, service: str, user_ids: list[str]) -> list[tuple[str, str]]:
    ids = [(new_trace_id(), new_span_id()) for _ in user_ids]
    spans = [
        span(t, s, "chat gpt-4o", {"user.id": u, "session.id": "s-77"})
        for (t, s), u in zip(ids, user_ids, strict=True)
    ]
    send(port, "traces", traces_payload(service, spans))
    records = [
        log_record({"user.id": u}, body="call", event_name="llmtel.call", trace_id=t, span_id=s)
        for (t, s), u in zip(ids, user_ids, strict=True)
    ]
    send(port, "logs", logs_payload(service, records))
    return ids


USER_IDS = ["u-1234", "alice@example.com"]


def stored_user_ids(stack: NativeStack, service: str, ids: list[tuple[str, str]]) -> list[Any]:
    spans = [
        jaeger_span_tags(poll_until(lambda t=t: jaeger_trace(stack, t), f"trace {t}"), s)
        for t, s in ids
    ]

    def logs() -> list[dict[str, Any]]:
        got = victorialogs(stack, f'service.name:"{service}"')
        assert len(got) == len(ids), f"{len(got)} records"
        return got

    by_trace = {r["trace_id"]: r for r in poll_until(logs, f"{service} logs in VictoriaLogs")}
    return [
        (tags["user.id"], tags["session.id"], by_trace[t]["user.id"])
        for tags, (t, _) in zip(spans, ids, strict=True)
    ]


def test_user_id_is_kept_when_hashing_is_off(stack: NativeStack) -> None:
    """Verify that, by default, user.id passes unchanged unless it is itself PII."""
    service = f"llmtel-userid-plain-{uuid.uuid4().hex[:8]}"
    ids = send_user_ids(stack.ports.collector_otlp_http, service, USER_IDS)
    assert stored_user_ids(stack, service, ids) == [
        ("u-1234", "s-77", "u-1234"),
        ("[REDACTED:EMAIL]", "s-77", "[REDACTED:EMAIL]"),
    ]


def test_user_id_is_keyed_hashed_when_a_key_is_set(
    stack: NativeStack, hashing_collector: SecondCollector
) -> None:
    """Verify that LLMTEL_USER_ID_HASH_KEY turns user.id into the documented keyed hash."""
    service = f"llmtel-userid-hashed-{uuid.uuid4().hex[:8]}"
    ids = send_user_ids(hashing_collector.otlp_http_port, service, USER_IDS)
    hashed = [keyed_hash(HASH_KEY, u) for u in USER_IDS]
    assert stored_user_ids(stack, service, ids) == [(h, "s-77", h) for h in hashed]
