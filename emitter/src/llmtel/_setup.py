"""``init``, ``shutdown`` and ``force_flush``: the OpenTelemetry SDK pipeline llmtel owns."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.util.types import AttributeValue

from llmtel import _cost
from llmtel._instrumentor import (
    CAPTURE_CONTENT_ENV,
    VERSION,
    OpenAIInstrumentor,
    resolve_capture_content,
)
from llmtel._state import CaptureContent

_log = logging.getLogger("llmtel")

__all__ = ["CAPTURE_CONTENT_ENV", "init", "resolve_capture_content", "shutdown"]

DEFAULT_METRIC_EXPORT_INTERVAL_MS = 10_000.0
_VERSION = VERSION


@dataclass(frozen=True, slots=True)
class _Pipeline:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    meter_provider: MeterProvider


_lock = threading.RLock()
_pipeline: _Pipeline | None = None
_atexit_registered = False
# At interpreter exit llmtel waits at most this long for the collector, so that with
# the collector unreachable the process still exits within 5 s (interpreter teardown
# and the final export attempt take the rest).
EXIT_TIMEOUT_S = 3.5
_SDK_INTERNAL_METRICS_ENV = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"


@contextmanager
def _counting_drops() -> Iterator[None]:
    """Turn on the SDK's own counts for the batch processors and exporters built inside.

    The SDK counts what its bounded queues drop (``otel_sdk_processor_*_processed``
    with ``error_type="queue_full"``) and what its exporters fail to send only when
    ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`` is true, read as they are built. Lost
    telemetry must be visible by default, so llmtel turns it on for its own processors
    unless the app set the variable, and leaves the process environment as it was.
    """
    if os.environ.get(_SDK_INTERNAL_METRICS_ENV) is not None:
        yield
        return
    os.environ[_SDK_INTERNAL_METRICS_ENV] = "true"
    try:
        yield
    finally:
        os.environ.pop(_SDK_INTERNAL_METRICS_ENV, None)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def resolve_metric_interval_ms(explicit: float | None) -> float:
    """Return the metric export interval: the argument, else the env variable, else 10 s."""
    if explicit is not None:
        return float(explicit)
    raw = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_METRIC_EXPORT_INTERVAL_MS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        _log.warning(
            "llmtel: invalid OTEL_METRIC_EXPORT_INTERVAL %r, using %.0f ms",
            raw,
            DEFAULT_METRIC_EXPORT_INTERVAL_MS,
        )
        return DEFAULT_METRIC_EXPORT_INTERVAL_MS
    return value


def signal_endpoint(endpoint: str | None, signal: str) -> str | None:
    """Return the OTLP/HTTP URL for ``signal`` under a base ``endpoint`` (None: let env decide)."""
    if endpoint is None:
        return None
    return f"{endpoint.rstrip('/')}/v1/{signal}"


def _signal_enabled(signal: str) -> bool:
    raw = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower()
    exporters = {part.strip() for part in raw.split(",") if part.strip()}
    if exporters == {"none"}:
        return False
    if exporters - {"otlp"}:
        _log.warning(
            "llmtel: OTEL_%s_EXPORTER=%s is not supported, exporting %s with otlp",
            signal.upper(),
            raw,
            signal,
        )
    return True


def _check_protocol() -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ):
        value = os.environ.get(name, "").strip()
        if value and value != "http/protobuf":
            _log.warning("llmtel: %s=%s ignored, llmtel exports http/protobuf", name, value)


def build_resource(
    service_name: str | None, resource_attributes: Mapping[str, AttributeValue] | None
) -> Resource:
    """Return the SDK resource: OTEL_* variables, overridden by the explicit arguments."""
    attributes: dict[str, AttributeValue] = dict(resource_attributes or {})
    if service_name is not None:
        attributes[SERVICE_NAME] = service_name
    distro = Resource({"telemetry.distro.name": "llmtel", "telemetry.distro.version": _VERSION})
    return distro.merge(Resource.create(attributes))


def _is_unset(provider: object) -> bool:
    # The API hands out proxy providers until an SDK provider is set globally.
    return type(provider).__name__ in {
        "ProxyTracerProvider",
        "ProxyLoggerProvider",
        "_ProxyMeterProvider",
    }


def _set_globals(pipeline: _Pipeline) -> None:
    if _is_unset(trace.get_tracer_provider()):
        trace.set_tracer_provider(pipeline.tracer_provider)
    if _is_unset(_logs.get_logger_provider()):
        _logs.set_logger_provider(pipeline.logger_provider)
    if _is_unset(metrics.get_meter_provider()):
        metrics.set_meter_provider(pipeline.meter_provider)


def install(
    *,
    resource: Resource,
    span_processors: Sequence[SpanProcessor],
    log_processors: Sequence[LogRecordProcessor],
    metric_readers: Sequence[MetricReader],
    capture_content: CaptureContent,
    set_global_providers: bool,
    pricer: _cost.Pricer | None = None,
) -> None:
    """Build the three providers around the given processors and patch the SDK.

    Raises:
        RuntimeError: llmtel is already initialised, or its instrumentor is already
            active on other providers (``opentelemetry-instrument``).
    """
    with _lock:
        if _pipeline is not None:
            raise RuntimeError("llmtel is already initialised; call llmtel.shutdown() first")
        if OpenAIInstrumentor().is_instrumented_by_opentelemetry:
            raise RuntimeError(
                "llmtel's OpenAIInstrumentor is already active (opentelemetry-instrument?)"
            )
        _install(
            resource=resource,
            span_processors=span_processors,
            log_processors=log_processors,
            metric_readers=metric_readers,
            capture_content=capture_content,
            set_global_providers=set_global_providers,
            pricer=pricer or _cost.Pricer(),
        )


def _install(
    *,
    resource: Resource,
    span_processors: Sequence[SpanProcessor],
    log_processors: Sequence[LogRecordProcessor],
    metric_readers: Sequence[MetricReader],
    capture_content: CaptureContent,
    set_global_providers: bool,
    pricer: _cost.Pricer,
) -> None:
    global _pipeline, _atexit_registered
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for span_processor in span_processors:
        tracer_provider.add_span_processor(span_processor)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for log_processor in log_processors:
        logger_provider.add_log_record_processor(log_processor)
    meter_provider = MeterProvider(
        resource=resource, metric_readers=list(metric_readers), shutdown_on_exit=False
    )
    pipeline = _Pipeline(tracer_provider, logger_provider, meter_provider)

    _pipeline = pipeline
    OpenAIInstrumentor().instrument(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
        pricer=pricer,
    )
    if set_global_providers:
        _set_globals(pipeline)
    if not _atexit_registered:
        atexit.register(shutdown, EXIT_TIMEOUT_S)
        _atexit_registered = True


def is_initialised() -> bool:
    """Return True between ``init`` and ``shutdown``."""
    return _pipeline is not None


def init(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    capture_content: CaptureContent | None = None,
    prices_file: str | os.PathLike[str] | None = None,
    metric_export_interval_ms: float | None = None,
    set_global_providers: bool = True,
) -> None:
    """Start sending traces, logs and metrics of every OpenAI SDK call over OTLP.

    Sets up a tracer, logger and meter provider that batch in memory and export
    OTLP http/protobuf from background threads, then instruments the ``openai``
    SDK (``OpenAIInstrumentor``) so every call of ``chat.completions.create`` and
    ``.parse``, ``responses.create``, ``.parse`` and ``.stream`` and
    ``embeddings.create`` (sync or async, streamed or not, raw or not, on clients
    made before or after this call) emits one span, one ``llmtel.call`` log record
    (plus one ``llmtel.content`` record with capture ``"full"``) and two histograms.
    Each span carries ``llmtel.cost.usd`` when the model's price is known.

    The standard ``OTEL_*`` variables apply (``OTEL_SERVICE_NAME``,
    ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the
    per-signal ``OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_ENDPOINT``, headers,
    timeouts, ``OTEL_{TRACES,LOGS,METRICS}_EXPORTER=none``, ``OTEL_SDK_DISABLED``,
    ``OTEL_METRIC_EXPORT_INTERVAL``); explicit arguments win over them.
    Calling ``init`` again logs a warning and does nothing. ``init`` never raises:
    a failure is logged on the ``llmtel`` logger and the app runs uninstrumented.

    Args:
        service_name: ``service.name`` of the resource (else ``OTEL_SERVICE_NAME``).
        endpoint: Base URL of the collector's OTLP/HTTP receiver, such as
            ``http://localhost:4318``; ``/v1/traces``, ``/v1/logs`` and
            ``/v1/metrics`` are appended. Overrides every ``OTEL_EXPORTER_OTLP_*ENDPOINT``.
        resource_attributes: Extra resource attributes (over ``OTEL_RESOURCE_ATTRIBUTES``).
        capture_content: ``"full"``, ``"preview"`` (default) or ``"none"``; else
            ``LLMTEL_CAPTURE_CONTENT``. See ``CaptureContent``.
        prices_file: A YAML price file for models genai-prices does not know, or
            whose price you pay differently; else ``LLMTEL_PRICES_FILE``. Its entries
            win over the bundled prices. Read once, here.
        metric_export_interval_ms: Metric export period; else
            ``OTEL_METRIC_EXPORT_INTERVAL``, else 10 000 ms.
        set_global_providers: Also install the providers as the OpenTelemetry globals
            when none are set yet, so the app's own spans share the pipeline.

    Example:
        >>> import llmtel
        >>> llmtel.init("support-bot", endpoint="http://localhost:4318")  # doctest: +SKIP
    """
    try:
        with _lock:
            if _pipeline is not None:
                _log.warning("llmtel: init() called again; keeping the first configuration")
                return
            if _env_flag("OTEL_SDK_DISABLED"):
                _log.info("llmtel: OTEL_SDK_DISABLED=true, not instrumenting")
                return
            if OpenAIInstrumentor().is_instrumented_by_opentelemetry:
                _log.info(
                    "llmtel: the openai SDK is already instrumented by llmtel's "
                    "OpenAIInstrumentor (opentelemetry-instrument?); init() keeps that"
                )
                return
            _check_protocol()
            span_processors: list[SpanProcessor] = []
            log_processors: list[LogRecordProcessor] = []
            metric_readers: list[MetricReader] = []
            with _counting_drops():
                if _signal_enabled("traces"):
                    span_processors.append(
                        BatchSpanProcessor(
                            OTLPSpanExporter(endpoint=signal_endpoint(endpoint, "traces"))
                        )
                    )
                if _signal_enabled("logs"):
                    log_processors.append(
                        BatchLogRecordProcessor(
                            OTLPLogExporter(endpoint=signal_endpoint(endpoint, "logs"))
                        )
                    )
            if _signal_enabled("metrics"):
                metric_readers.append(
                    PeriodicExportingMetricReader(
                        OTLPMetricExporter(endpoint=signal_endpoint(endpoint, "metrics")),
                        export_interval_millis=resolve_metric_interval_ms(
                            metric_export_interval_ms
                        ),
                    )
                )
            install(
                resource=build_resource(service_name, resource_attributes),
                span_processors=span_processors,
                log_processors=log_processors,
                metric_readers=metric_readers,
                capture_content=resolve_capture_content(capture_content),
                set_global_providers=set_global_providers,
                pricer=_cost.build_pricer(prices_file),
            )
    except Exception:
        _log.exception("llmtel: init() failed; the app runs uninstrumented")


def _run_bounded(action: str, pipeline: _Pipeline, timeout_s: float) -> bool:
    """Run ``action`` (shutdown or force_flush) on the three providers in parallel.

    The SDK's batch processors ignore flush timeouts and retry an unreachable collector
    for up to the export timeout (10 s) per signal, one signal after the other. Running
    them side by side on daemon threads and waiting at most ``timeout_s`` keeps
    ``shutdown`` (and so interpreter exit) and ``force_flush`` bounded.
    """
    timeout_ms = max(0, int(timeout_s * 1000))
    providers: dict[str, TracerProvider | LoggerProvider | MeterProvider] = {
        "traces": pipeline.tracer_provider,
        "logs": pipeline.logger_provider,
        "metrics": pipeline.meter_provider,
    }
    results: dict[str, bool] = {}

    def run(signal: str, provider: TracerProvider | LoggerProvider | MeterProvider) -> None:
        try:
            if action == "shutdown":
                if isinstance(provider, MeterProvider):
                    provider.shutdown(timeout_millis=timeout_ms)
                else:
                    provider.shutdown()
                results[signal] = True
            else:
                results[signal] = bool(provider.force_flush(timeout_millis=timeout_ms))
        except Exception as exc:  # the SDK raises on a metric flush timeout
            _log.warning("llmtel: %s of %s failed: %s", action, signal, exc)
            results[signal] = False

    threads = [
        threading.Thread(target=run, args=item, name=f"llmtel-{action}-{item[0]}", daemon=True)
        for item in providers.items()
    ]
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = [signal for signal in providers if signal not in results]
    if late:
        _log.warning(
            "llmtel: %s of %s did not finish within %.1f s; is the collector reachable?",
            action,
            ", ".join(late),
            timeout_s,
        )
    return not late and all(results.values())


def shutdown(timeout_s: float = 5) -> None:
    """Flush what is buffered, stop exporting and remove the instrumentation.

    Registered with ``atexit`` by ``init`` (with ``timeout_s=3.5``, so an app exits
    within 5 s even with the collector unreachable), so most apps never call it. Waits at most
    ``timeout_s`` for the collector; what is not exported by then is dropped, so an
    unreachable collector never holds up the app's exit. After it, ``init`` may be
    called again. Never raises.

    Example:
        >>> import llmtel
        >>> llmtel.shutdown()
    """
    global _pipeline
    with _lock:
        pipeline, _pipeline = _pipeline, None
        if pipeline is not None:
            OpenAIInstrumentor().uninstrument()
    if pipeline is not None:
        _run_bounded("shutdown", pipeline, timeout_s)


def force_flush(timeout_s: float = 5) -> bool:
    """Export everything buffered now; return True if it all went out within ``timeout_s``.

    Useful before a short-lived process exits or in tests against a real collector.
    Returns True when llmtel is not initialised (nothing is buffered). Never raises.

    Example:
        >>> import llmtel
        >>> llmtel.force_flush(timeout_s=2)
        True
    """
    pipeline = _pipeline
    if pipeline is None:
        return True
    return _run_bounded("force_flush", pipeline, timeout_s)
