"""A backend stopped for a minute while traffic flows loses nothing: the collector's
on-disk sending queue holds the data and retries until the backend is back.

For VictoriaLogs and then Jaeger: a few records go through, the backend is stopped
(SIGTERM, as an outage or a redeploy would), records keep arriving every half second
for 60 s, the backend is started again, a few more records follow. Every record sent
must then be in the backend, and the overview dashboard's queue-fill panel, queried in
the real Prometheus, must show the backend's queue filling and then draining.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from conftest import ROOT, poll_until
from stack import NativeStack
from test_collector_support import (
    get_json,
    log_record,
    logs_payload,
    new_span_id,
    new_trace_id,
    prometheus_values,
    send,
    span,
    traces_payload,
    victorialogs,
)

pytestmark = pytest.mark.stack

# 30 s: two Prometheus scrapes see the queue fill. make test-faults sets the 5 minutes.
OUTAGE_S = float(os.environ.get("LLMTEL_FAULT_BACKEND_DOWN_S", "30"))
INTERVAL_S = 0.5
AROUND = 10  # records before and after the outage

QUEUE_FILL_PANEL = ("Collector sending queue fill by exporter", "A")


def queue_fill_expr() -> str:
    dashboard = json.loads((ROOT / "grafana/dashboards/llm-overview.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["title"] == QUEUE_FILL_PANEL[0])
    return next(t["expr"] for t in panel["targets"] if t["refId"] == QUEUE_FILL_PANEL[1])


def queue_fill(stack: NativeStack) -> dict[str, float]:
    """The queue-fill panel's values now, by exporter."""
    values = prometheus_values(stack, queue_fill_expr())
    return {dict(labels)["exporter"]: value for labels, value in values.items()}


@contextmanager
def queue_fill_peaks(stack: NativeStack) -> Iterator[dict[str, float]]:
    """Sample the queue-fill panel every 2 s while the block runs; yields the peaks."""
    peaks: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(2):
            for exporter, value in queue_fill(stack).items():
                peaks[exporter] = max(peaks.get(exporter, 0.0), value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peaks
    finally:
        done.set()
        sampler.join()


def run_outage(
    stack: NativeStack, service_name: str, send_one: Callable[[int], None]
) -> tuple[int, float]:
    """Send AROUND records, stop the backend, keep sending for OUTAGE_S, start it, send
    AROUND more. Returns (records sent, seconds the backend was down)."""
    seq = 0
    for _ in range(AROUND):
        send_one(seq)
        seq += 1
    stack.stop_service(service_name)
    down_at = time.monotonic()
    try:
        while time.monotonic() - down_at < OUTAGE_S:
            send_one(seq)
            seq += 1
            time.sleep(INTERVAL_S)
    finally:
        stack.start_service(service_name)
    down_s = time.monotonic() - down_at
    for _ in range(AROUND):
        send_one(seq)
        seq += 1
    return seq, down_s


def test_victorialogs_outage_loses_no_log_record(stack: NativeStack) -> None:
    """Verify that every log record sent while VictoriaLogs was down for a minute arrives."""
    service = f"llmtel-outage-logs-{uuid.uuid4().hex[:8]}"

    def send_one(seq: int) -> None:
        record = log_record(
            {"outage.seq": seq, "gen_ai.request.model": "gpt-4o-mini"},
            body=f"call {seq}",
            event_name="llmtel.call",
            trace_id=new_trace_id(),
            span_id=new_span_id(),
        )
        send(stack.ports.collector_otlp_http, "logs", logs_payload(service, [record]))

    with queue_fill_peaks(stack) as peaks:
        sent, down_s = run_outage(stack, "victorialogs", send_one)
    back_at = time.monotonic()

    def all_arrived() -> Counter[int]:
        seqs = Counter(
            int(r["outage.seq"]) for r in victorialogs(stack, f'service.name:"{service}"')
        )
        missing = set(range(sent)) - set(seqs)
        assert not missing, f"{len(missing)} of {sent} missing"
        return seqs

    seqs = poll_until(all_arrived, f"all {sent} log records in VictoriaLogs", timeout=120)
    duplicates = sum(seqs.values()) - sent

    def drained() -> float:
        fill = queue_fill(stack)["otlp_http/victorialogs"]
        assert fill == 0, f"the queue is still {fill:.2%} full"
        return fill

    poll_until(drained, "the queue-fill panel back at 0 for VictoriaLogs", timeout=60)
    print(
        f"\n[outage] VictoriaLogs down {down_s:.0f} s: {sent} records sent, 0 missing, "
        f"{duplicates} duplicated, all in {time.monotonic() - back_at:.1f} s after restart; "
        f"queue-fill panel peaked at {peaks['otlp_http/victorialogs']:.2%}"
    )
    assert set(seqs) == set(range(sent))
    assert peaks["otlp_http/victorialogs"] > 0


def jaeger_trace_ids(stack: NativeStack, service: str, since_us: int) -> set[str]:
    query = urllib.parse.urlencode(
        {
            "service": service,
            "limit": "5000",
            "start": str(since_us),
            "end": str(int(time.time() * 1e6) + 60_000_000),
        }
    )
    body = get_json(f"http://127.0.0.1:{stack.ports.jaeger_query}/api/traces?{query}")
    return {trace["traceID"] for trace in body.get("data") or []}


def test_jaeger_outage_loses_no_span(stack: NativeStack) -> None:
    """Verify that every span sent while Jaeger was down for a minute arrives."""
    service = f"llmtel-outage-traces-{uuid.uuid4().hex[:8]}"
    since_us = int(time.time() * 1e6) - 60_000_000
    trace_ids: list[str] = []

    def send_one(seq: int) -> None:
        trace_id = new_trace_id()
        trace_ids.append(trace_id)
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
        attributes["outage.seq"] = seq
        payload = traces_payload(service, [span(trace_id, new_span_id(), "chat", attributes)])
        send(stack.ports.collector_otlp_http, "traces", payload)

    sent, down_s = run_outage(stack, "jaeger", send_one)
    back_at = time.monotonic()

    def all_arrived() -> set[str]:
        found = jaeger_trace_ids(stack, service, since_us)
        missing = set(trace_ids) - found
        assert not missing, f"{len(missing)} of {sent} traces missing"
        return found

    found = poll_until(all_arrived, f"all {sent} traces in Jaeger", timeout=120)
    print(
        f"\n[outage] Jaeger down {down_s:.0f} s: {sent} spans sent, 0 missing, "
        f"all in {time.monotonic() - back_at:.1f} s after restart"
    )
    assert found == set(trace_ids)
