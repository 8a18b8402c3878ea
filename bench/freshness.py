"""Freshness: from a call's end until Prometheus counts it, Jaeger returns its trace and
VictoriaLogs its log record, on the native stack with the export intervals llmtel ships.

Calls go through the real openai SDK (in-process transport) with ``llmtel.init`` pointed
at the stack's collector, one app span around each so its trace id is known. A poller
asks all three backends four times a second: ``sum(llm_calls_total{job=...})`` (the k-th
call is counted once the sum reaches k), ``GET /api/traces/{id}`` for every trace not yet
seen, and one LogsQL ``trace_id:in(...)`` query for the log records not yet seen.
A short warm-up first creates the series, and its delay is reported on its own.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import trace

import llmtel
from bench.overhead import transport

POLL_S = 0.25
WARMUP_CALLS = 3


@dataclass
class Freshness:
    """Seconds from each call's end until each backend showed it (None: never, in time)."""

    calls: int = 0
    metrics: list[float | None] = field(default_factory=list)
    traces: list[float | None] = field(default_factory=list)
    logs: list[float | None] = field(default_factory=list)
    # Seconds until the first calls of a brand-new series were counted (the warm-up).
    new_series_s: float | None = None
    error: str | None = None


def _get(url: str) -> Any:  # noqa: ANN401 - JSON
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read() or b"null")


class _Poller:
    def __init__(self, ports: Any, service: str) -> None:  # noqa: ANN401 - native.stack.Ports
        self.ports, self.service = ports, service
        self.ends: list[tuple[float, str]] = []  # (monotonic end, trace id), in call order
        self.lock = threading.Lock()
        self.metric_seen: dict[int, float] = {}
        self.trace_seen: dict[str, float] = {}
        self.log_seen: dict[str, float] = {}
        self.offset = 0  # calls counted before the measured ones (the warm-up)

    def count(self) -> int:
        query = urllib.parse.urlencode({"query": f'sum(llm_calls_total{{job="{self.service}"}})'})
        body = _get(f"http://127.0.0.1:{self.ports.prometheus}/api/v1/query?{query}")
        result = body["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def has_trace(self, trace_id: str) -> bool:
        try:
            body = _get(f"http://127.0.0.1:{self.ports.jaeger_query}/api/traces/{trace_id}")
        except urllib.error.HTTPError:
            return False
        return bool(body and body.get("data"))

    def logged(self, trace_ids: list[str]) -> set[str]:
        if not trace_ids:
            return set()
        ids = ", ".join(f'"{t}"' for t in trace_ids)
        query = urllib.parse.urlencode({"query": f"trace_id:in({ids}) | fields trace_id"})
        url = f"http://127.0.0.1:{self.ports.victorialogs}/select/logsql/query?{query}"
        with urllib.request.urlopen(url, timeout=5) as response:
            lines = response.read().splitlines()
        return {json.loads(line)["trace_id"] for line in lines if line.strip()}

    def tick(self) -> bool:
        """Poll once; return True when every call so far is seen everywhere."""
        now = time.monotonic()
        with self.lock:
            ends = list(self.ends)
        counted = min(self.count() - self.offset, len(ends))
        for k in range(counted):
            self.metric_seen.setdefault(k, now)
        for _end, trace_id in ends:
            if trace_id not in self.trace_seen and self.has_trace(trace_id):
                self.trace_seen[trace_id] = now
        for trace_id in self.logged([t for _, t in ends if t not in self.log_seen]):
            self.log_seen[trace_id] = now
        return len(self.metric_seen) == len(self.trace_seen) == len(self.log_seen) == len(ends)


def run(ports: Any, collector_url: str, bodies: Path, calls: int, rate: float) -> Freshness:  # noqa: ANN401
    """Make ``calls`` calls at ``rate``/s and time their arrival in the three backends."""
    service = f"bench-freshness-{int(time.time())}"
    shapes = json.loads((bodies / "index.json").read_text())["shapes"]
    kwargs = transport.request_kwargs("chat", shapes["chat"])
    client = transport.client(transport.load_bodies(bodies))
    poller = _Poller(ports, service)
    llmtel.init(service_name=service, endpoint=collector_url)
    tracer = trace.get_tracer("bench-freshness")
    done = threading.Event()

    def make_calls() -> None:
        start = time.monotonic()
        for i in range(calls):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with tracer.start_as_current_span("handle request") as span:
                client.chat.completions.create(**kwargs)
            end = time.monotonic()
            with poller.lock:
                poller.ends.append((end, format(span.get_span_context().trace_id, "032x")))
        done.set()

    result = Freshness(calls=calls)
    # Warm-up: a new label set is counted only from its second export on (the collector
    # and Prometheus see a series start), so the measured calls go to an existing series.
    print(f"[freshness] warm-up: {WARMUP_CALLS} calls as service {service}", flush=True)
    for _ in range(WARMUP_CALLS):
        with tracer.start_as_current_span("handle request"):
            client.chat.completions.create(**kwargs)
    warm_end = time.monotonic()
    while time.monotonic() < warm_end + 120:
        if poller.count() >= WARMUP_CALLS:
            result.new_series_s = time.monotonic() - warm_end
            break
        time.sleep(POLL_S)
    poller.offset = WARMUP_CALLS
    print(f"[freshness] {calls} calls at {rate:g}/s", flush=True)
    caller = threading.Thread(target=make_calls, name="bench-calls")
    caller.start()
    deadline: float | None = None
    try:
        while True:
            all_seen = poller.tick()
            if done.is_set():
                deadline = deadline or time.monotonic() + 90
                if all_seen or time.monotonic() > deadline:
                    break
            time.sleep(POLL_S)
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    caller.join()
    llmtel.shutdown()
    for k, (end, trace_id) in enumerate(poller.ends):
        metric = poller.metric_seen.get(k)
        result.metrics.append(None if metric is None else metric - end)
        seen = poller.trace_seen.get(trace_id)
        result.traces.append(None if seen is None else seen - end)
        logged = poller.log_seen.get(trace_id)
        result.logs.append(None if logged is None else logged - end)
    return result
