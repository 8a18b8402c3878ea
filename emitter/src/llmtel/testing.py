"""In-memory capture of what llmtel emits, for your tests and ours.

``capture()`` initialises llmtel with in-memory exporters (spans and log records are
exported synchronously, metrics are read on demand) and shuts it down afterwards, so
each block starts empty. Nothing leaves the process and the OpenTelemetry globals are
not touched.

Example, as a pytest fixture::

    import pytest
    from llmtel.testing import Capture, capture

    @pytest.fixture
    def telemetry():
        with capture() as cap:
            yield cap

    def test_answer_is_traced(telemetry: Capture, client):
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        (span,) = telemetry.spans()
        assert span.attributes["llmtel.outcome"] == "ok"
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.types import AttributeValue

from llmtel import _cost, _setup
from llmtel._state import CaptureContent

__all__ = ["Capture", "capture"]


class Capture:
    """What llmtel emitted inside one ``capture()`` block.

    Example:
        >>> from llmtel.testing import capture
        >>> with capture() as cap:
        ...     pass  # make OpenAI calls here
        >>> cap.spans(), cap.logs()
        ((), ())
    """

    def __init__(
        self,
        spans: InMemorySpanExporter,
        logs: InMemoryLogRecordExporter,
        metrics: InMemoryMetricReader,
    ) -> None:
        self._spans = spans
        self._logs = logs
        self._metrics = metrics
        self._closed_metrics: list[Metric] | None = None

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Return the ended spans, oldest first.

        Example:
            >>> from llmtel.testing import capture
            >>> with capture() as cap:
            ...     spans = cap.spans()
            >>> spans
            ()
        """
        return self._spans.get_finished_spans()

    def logs(self) -> tuple[ReadableLogRecord, ...]:
        """Return the emitted log records, oldest first (``record.log_record`` holds the data).

        Example:
            >>> from llmtel.testing import capture
            >>> with capture() as cap:
            ...     logs = cap.logs()
            >>> logs
            ()
        """
        return self._logs.get_finished_logs()

    def metrics(self) -> list[Metric]:
        """Return the metrics recorded so far (cumulative since the block started).

        Example:
            >>> from llmtel.testing import capture
            >>> with capture() as cap:
            ...     metrics = cap.metrics()
            >>> metrics
            []
        """
        if self._closed_metrics is not None:
            return list(self._closed_metrics)
        data = self._metrics.get_metrics_data()
        if data is None:
            return []
        return [
            metric
            for resource_metrics in data.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        ]

    def histogram(self, name: str) -> list[HistogramDataPoint]:
        """Return the data points of the histogram ``name`` (empty if never recorded).

        Example:
            >>> from llmtel.testing import capture
            >>> with capture() as cap:
            ...     points = cap.histogram("gen_ai.client.operation.duration")
            >>> points
            []
        """
        points: list[HistogramDataPoint] = []
        for metric in self.metrics():
            if metric.name == name:
                points.extend(
                    p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)
                )
        return points

    def clear(self) -> None:
        """Forget the spans and log records captured so far (metrics stay cumulative).

        Example:
            >>> from llmtel.testing import capture
            >>> with capture() as cap:
            ...     cap.clear()
        """
        self._spans.clear()
        self._logs.clear()

    def _close(self) -> None:
        self._closed_metrics = self.metrics()


@contextmanager
def capture(
    *,
    capture_content: CaptureContent = "preview",
    prices_file: str | os.PathLike[str] | None = None,
    service_name: str = "llmtel-test",
    resource_attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Capture]:
    """Initialise llmtel with in-memory exporters for the duration of the block.

    Spans and log records are exported as they end, so they can be asserted right
    after a call returns (or a stream is consumed). On exit llmtel is shut down and
    the captured data stays readable on the ``Capture``. ``capture_content`` and
    ``prices_file`` work as in ``llmtel.init`` (but the environment is not read).

    Raises:
        RuntimeError: llmtel is already initialised (by ``llmtel.init`` or another
            ``capture``), or ``OTEL_SDK_DISABLED=true`` would make the SDK record nothing.

    Example:
        >>> from llmtel.testing import capture
        >>> with capture(capture_content="none") as cap:
        ...     pass  # client.chat.completions.create(...)
        >>> len(cap.spans())
        0
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        raise RuntimeError("OTEL_SDK_DISABLED=true: the OpenTelemetry SDK would record nothing")
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    metrics = InMemoryMetricReader()
    _setup.install(
        resource=_setup.build_resource(service_name, resource_attributes),
        span_processors=[SimpleSpanProcessor(spans)],
        log_processors=[SimpleLogRecordProcessor(logs)],
        metric_readers=[metrics],
        capture_content=capture_content,
        set_global_providers=False,
        pricer=_cost.build_pricer(prices_file) if prices_file is not None else _cost.Pricer(),
    )
    result = Capture(spans, logs, metrics)
    try:
        yield result
    finally:
        result._close()
        _setup.shutdown()
