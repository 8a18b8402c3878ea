"""One overhead measurement process: one variant, every call shape, JSON on stdout.

    python -m bench.overhead.worker --variant llmtel --bodies var/bench/bodies

Variants: ``bare`` (no telemetry), ``floor`` (the bare OpenTelemetry SDK recording,
by hand, exactly what llmtel records: same span attributes, log record and histogram
points, read from ``record.json``), ``llmtel``, ``official``
(opentelemetry-instrumentation-genai-openai) and ``openllmetry``
(opentelemetry-instrumentation-openai). Every telemetry variant gets the same SDK
pipeline: batch span and log processors and a periodic metric reader whose exporters
encode OTLP protobuf and throw the bytes away (no sockets anywhere).

CPU is ``time.process_time`` (every thread of the process, so the background export
threads count) over a window of calls, flushed at the end of the window. Each
instrumented window is paired with an uninstrumented one in the same process, next to
it in time (order alternating): the openai methods the instrumentation wrapped are
swapped back to the originals (``__wrapped__``) for that window, and the floor makes
the plain call. The added cost is the difference within the pair, so the machine's
load, which on a shared machine drifts by more than what is measured, mostly cancels.
Runs under any
interpreter that has ``openai``, ``httpx2`` and ``opentelemetry-sdk``; llmtel and the
comparators are imported only by their own variant.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openai import OpenAI
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from bench.overhead import transport

VARIANTS = ("bare", "floor", "llmtel", "official", "openllmetry")
DISTRIBUTIONS = {
    "llmtel": "llmtel",
    "official": "opentelemetry-instrumentation-genai-openai",
    "openllmetry": "opentelemetry-instrumentation-openai",
}


class SpanSink(SpanExporter):
    """Encodes spans as an OTLP exporter would, then drops the bytes."""

    def __init__(self) -> None:
        self.items = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.items += len(spans)
        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS


class LogSink(LogRecordExporter):
    """Encodes log records as an OTLP exporter would, then drops the bytes."""

    def __init__(self) -> None:
        self.items = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.items += len(batch)
        encode_logs(batch).SerializeToString()
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class MetricSink(MetricExporter):
    """Encodes metrics as an OTLP exporter would, then drops the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.items = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        for resource_metrics in metrics_data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    self.items += len(list(metric.data.data_points))
        encode_metrics(metrics_data).SerializeToString()
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


class Pipeline:
    """The SDK pipeline every telemetry variant records into (as llmtel.init builds it)."""

    def __init__(self) -> None:
        self.spans, self.logs, self.points = SpanSink(), LogSink(), MetricSink()
        self.span_processor = BatchSpanProcessor(self.spans)
        self.log_processor = BatchLogRecordProcessor(self.logs)
        self.reader = PeriodicExportingMetricReader(self.points, export_interval_millis=10_000)
        self.resource = Resource.create({"service.name": "bench-overhead"})

    def providers(self) -> tuple[TracerProvider, LoggerProvider, MeterProvider]:
        """Providers around the processors (llmtel builds its own around the same ones)."""
        tracer_provider = TracerProvider(resource=self.resource)
        tracer_provider.add_span_processor(self.span_processor)
        logger_provider = LoggerProvider(resource=self.resource)
        logger_provider.add_log_record_processor(self.log_processor)
        meter_provider = MeterProvider(resource=self.resource, metric_readers=[self.reader])
        return tracer_provider, logger_provider, meter_provider

    def flush(self) -> None:
        self.span_processor.force_flush()
        self.log_processor.force_flush()
        self.reader.force_flush()

    def counts(self) -> dict[str, int]:
        return {"spans": self.spans.items, "logs": self.logs.items, "points": self.points.items}


def _setup_llmtel(pipe: Pipeline) -> None:
    # llmtel.init() with the benchmark's exporters instead of OTLP/HTTP: the same
    # install() that init() and llmtel.testing.capture() call.
    setup = importlib.import_module("llmtel._setup")
    setup.install(
        resource=pipe.resource,
        span_processors=[pipe.span_processor],
        log_processors=[pipe.log_processor],
        metric_readers=[pipe.reader],
        capture_content="preview",
        set_global_providers=False,
    )


def _setup_instrumentor(module: str, pipe: Pipeline) -> None:
    tracer_provider, logger_provider, meter_provider = pipe.providers()
    instrumentor = importlib.import_module(module).OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        meter_provider=meter_provider,
    )


class Floor:
    """The OpenTelemetry API calls llmtel makes per call, with precomputed values."""

    def __init__(self, pipe: Pipeline, record: dict[str, Any]) -> None:
        tracer_provider, logger_provider, meter_provider = pipe.providers()
        self._trace = trace
        self.record = record
        self._tracer = tracer_provider.get_tracer("bench-floor")
        self._logger = logger_provider.get_logger("bench-floor")
        meter = meter_provider.get_meter("bench-floor")
        self._histograms = {
            name: meter.create_histogram(name, unit=unit)
            for name, unit in (
                ("gen_ai.client.operation.duration", "s"),
                ("gen_ai.client.token.usage", "{token}"),
            )
        }

    def call(self, client: OpenAI, api: str, kwargs: dict[str, Any], shape: str) -> int:
        rec = self.record[shape]
        started = time.perf_counter()
        span = self._tracer.start_span(
            rec["name"], kind=SpanKind.CLIENT, attributes=rec["start_attributes"]
        )
        context = self._trace.set_span_in_context(span)
        items = transport.call(client, api, kwargs)
        span.set_attributes(rec["end_attributes"])
        latency = time.perf_counter() - started
        log = rec["log"]
        self._logger.emit(
            timestamp=time.time_ns(),
            context=context,
            severity_number=SeverityNumber(log["severity_number"]),
            severity_text=log["severity_text"],
            body=log["body"],
            attributes={**log["attributes"], "llmtel.latency_ms": latency * 1000},
            event_name=log["event_name"],
        )
        for point in rec["points"]:
            value = latency if point["name"].endswith("duration") else point["value"]
            self._histograms[point["name"]].record(value, point["attributes"])
        span.end()
        return items


class Toggle:
    """Switch the instrumentation off and on between windows, without re-instrumenting.

    Every wrapt wrapper found on the client's resource classes (llmtel, the official
    instrumentation and OpenLLMetry all wrap with wrapt) is replaced by the function it
    wraps while off, and put back while on.
    """

    def __init__(self, client: OpenAI) -> None:
        self.swaps: list[tuple[type, str, object, object]] = []
        classes = {type(client.chat.completions), type(client.responses), type(client.embeddings)}
        wrapt = importlib.import_module("wrapt")
        # wrapt 2 moved the C proxy base to BaseObjectProxy; wrapt 1 has ObjectProxy only.
        proxy = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)
        for cls in classes:
            for name, value in list(vars(cls).items()):
                if isinstance(value, proxy):
                    inner = value
                    while isinstance(inner, proxy):
                        inner = inner.__wrapped__
                    self.swaps.append((cls, name, value, inner))

    def set(self, on: bool) -> None:
        for cls, name, wrapped, original in self.swaps:
            setattr(cls, name, wrapped if on else original)


def _versions(variant: str) -> dict[str, str]:
    names = ["openai", "httpx2", "opentelemetry-sdk"]
    if variant in DISTRIBUTIONS:
        names.append(DISTRIBUTIONS[variant])
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "?"
    return found


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the warm-up and the measured windows; return the result document."""
    index = json.loads((args.bodies / "index.json").read_text())
    shapes: dict[str, Any] = index["shapes"]
    selected = [s for s in args.shapes.split(",") if s] or list(shapes)
    client = transport.client(transport.load_bodies(args.bodies))
    pipe = None if args.variant == "bare" else Pipeline()
    floor = None
    if pipe is not None:
        if args.variant == "llmtel":
            _setup_llmtel(pipe)
        elif args.variant == "official":
            _setup_instrumentor("opentelemetry.instrumentation.genai.openai", pipe)
        elif args.variant == "openllmetry":
            _setup_instrumentor("opentelemetry.instrumentation.openai", pipe)
        elif args.variant == "floor":
            floor = Floor(pipe, json.loads((args.bodies / "record.json").read_text()))

    def one(shape: str) -> Callable[[], int]:
        spec = shapes[shape]
        kwargs = transport.request_kwargs(shape, spec)
        if floor is not None:
            return lambda: floor.call(client, spec["api"], kwargs, shape)
        return lambda: transport.call(client, spec["api"], kwargs)

    def plain(shape: str) -> Callable[[], int]:
        spec = shapes[shape]
        kwargs = transport.request_kwargs(shape, spec)
        return lambda: transport.call(client, spec["api"], kwargs)

    # Paired windows: every telemetry variant also measures the plain call in-process.
    paired = pipe is not None and args.profile is None
    toggle = Toggle(client) if paired and floor is None else None
    if toggle is not None and not toggle.swaps:
        raise RuntimeError("no wrapped openai method found: the instrumentation did not patch")

    result: dict[str, Any] = {"variant": args.variant, "versions": _versions(args.variant)}
    if floor is not None:  # the floor mirrors llmtel: nothing to mirror where it records nothing
        result["skipped"] = [s for s in selected if s not in floor.record]
        selected = [s for s in selected if s in floor.record]
    calls = {shape: one(shape) for shape in selected}
    plains = {shape: plain(shape) for shape in selected}
    per_shape: dict[str, Any] = {}
    for shape in selected:  # warm-up, and the signals each call produces
        before = pipe.counts() if pipe else {}
        for _ in range(args.warmup):
            calls[shape]()
        if pipe is not None:
            pipe.flush()
            after = pipe.counts()
            produced = {k: (after[k] - before[k]) / args.warmup for k in after}
        else:
            produced = {}
        per_shape[shape] = {"per_call": produced, "cpu_us": [], "wall_us": [], "plain_cpu_us": []}
    if paired:  # warm the plain path too
        if toggle is not None:
            toggle.set(False)
        for shape in selected:
            for _ in range(args.warmup):
                plains[shape]()
        if toggle is not None:
            toggle.set(True)
    per_shape_calls = json.loads(args.calls_per_shape or "{}")
    profiler = cProfile.Profile() if args.profile else None
    for round_ in range(args.rounds):
        for index, shape in enumerate(selected):
            n = int(per_shape_calls.get(shape, args.calls))
            modes = [True]
            if paired:
                modes = [True, False] if (round_ + index) % 2 == 0 else [False, True]
            for instrumented in modes:
                if toggle is not None:
                    toggle.set(instrumented)
                call = calls[shape] if instrumented else plains[shape]
                gc.collect()
                if profiler is not None:
                    profiler.enable()
                cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
                for _ in range(n):
                    call()
                if pipe is not None:
                    pipe.flush()  # in both windows, so the fixed cost of a flush cancels
                cpu1, wall1 = time.process_time_ns(), time.perf_counter_ns()
                if profiler is not None:
                    profiler.disable()
                cpu_us = (cpu1 - cpu0) / n / 1000
                if instrumented:
                    per_shape[shape]["cpu_us"].append(cpu_us)
                    per_shape[shape]["wall_us"].append((wall1 - wall0) / n / 1000)
                else:
                    per_shape[shape]["plain_cpu_us"].append(cpu_us)
            if toggle is not None:
                toggle.set(True)
    result["shapes"] = per_shape
    if profiler is not None:
        profiler.dump_stats(str(args.profile))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--shapes", default="", help="comma-separated; default: all")
    parser.add_argument("--calls", type=int, default=300, help="calls per window")
    parser.add_argument("--calls-per-shape", default="", help='JSON, e.g. {"stream117": 60}')
    parser.add_argument("--rounds", type=int, default=3, help="windows per shape")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    args = parser.parse_args(argv)
    try:
        result = measure(args)
    except Exception as exc:  # reported, not raised: the runner goes on with the others
        result = {"variant": args.variant, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
