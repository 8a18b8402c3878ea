"""``OpenAIInstrumentor``: llmtel's instrumentation as an OpenTelemetry instrumentor.

``llmtel.init()`` builds its own OTLP pipeline and uses this instrumentor. Apps that
already run an OpenTelemetry SDK, or run under ``opentelemetry-instrument`` (which finds
it through the ``opentelemetry_instrumentor`` entry point named ``llmtel``), get the same
spans, log records and metrics on their own providers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from typing import Any, get_args

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import LoggerProvider

# The module starts with a bare `# type: ignore`, so mypy sees none of its names.
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from llmtel import _attributes as attr
from llmtel import _cost, _instrument, _state
from llmtel._state import CaptureContent

_log = logging.getLogger("llmtel")

CAPTURE_CONTENT_ENV = "LLMTEL_CAPTURE_CONTENT"

try:
    from importlib.metadata import PackageNotFoundError, version

    VERSION = version("llmtel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0.0.0"


def resolve_capture_content(explicit: str | None) -> CaptureContent:
    """Return the content mode: the argument, else ``LLMTEL_CAPTURE_CONTENT``, else preview.

    An unknown value falls back to ``"none"``: when in doubt, send no content.
    """
    raw = explicit if explicit is not None else os.environ.get(CAPTURE_CONTENT_ENV)
    if raw is None or not raw.strip():
        return "preview"
    value = raw.strip().lower()
    for mode in get_args(CaptureContent):
        if value == mode:
            return mode  # type: ignore[no-any-return]
    _log.warning(
        "llmtel: unknown capture_content %r (expected 'full', 'preview' or 'none'); capturing none",
        raw,
    )
    return "none"


def build_telemetry(
    *,
    tracer_provider: TracerProvider | None,
    logger_provider: LoggerProvider | None,
    meter_provider: MeterProvider | None,
    capture_content: CaptureContent,
    pricer: _cost.Pricer,
) -> _state.Telemetry:
    """Create llmtel's tracer, logger and instruments on the given (or global) providers."""
    tracer = trace.get_tracer("llmtel", VERSION, tracer_provider=tracer_provider)
    logger = _logs.get_logger("llmtel", VERSION, logger_provider=logger_provider)
    meter = metrics.get_meter("llmtel", VERSION, meter_provider=meter_provider)
    return _state.Telemetry(
        tracer=tracer,
        logger=logger,
        duration=meter.create_histogram(
            attr.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=attr.DURATION_BUCKETS,
        ),
        token_usage=meter.create_histogram(
            attr.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=attr.TOKEN_BUCKETS,
        ),
        errors=meter.create_counter(
            attr.METRIC_EMITTER_ERRORS,
            unit="{error}",
            description="Failures inside llmtel, caught and never raised into the app.",
        ),
        capture_content=capture_content,
        pricer=pricer,
    )


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument the ``openai`` SDK on OpenTelemetry providers you already have.

    ``llmtel.init()`` does this for you with its own OTLP pipeline; use the
    instrumentor directly when the app configures the OpenTelemetry SDK itself.
    Under ``opentelemetry-instrument`` it is loaded automatically (entry point
    ``llmtel``) and uses the global providers. ``instrument()`` accepts
    ``tracer_provider``, ``logger_provider``, ``meter_provider`` (default: the
    globals), ``capture_content`` (default ``LLMTEL_CAPTURE_CONTENT``, else
    ``"preview"``) and ``prices_file`` (default ``LLMTEL_PRICES_FILE``).

    Example:
        >>> from llmtel import OpenAIInstrumentor
        >>> OpenAIInstrumentor().instrument(capture_content="none")  # doctest: +SKIP
        >>> OpenAIInstrumentor().uninstrument()  # doctest: +SKIP
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """The ``openai`` versions this instrumentation supports."""
        return ("openai >= 3.50, < 4",)

    def _instrument(self, **kwargs: Any) -> None:  # noqa: ANN401 - as BaseInstrumentor
        pricer = kwargs.get("pricer")
        if not isinstance(pricer, _cost.Pricer):
            pricer = _cost.build_pricer(kwargs.get("prices_file"))
        pricer.preload()
        _state.set_current(
            build_telemetry(
                tracer_provider=kwargs.get("tracer_provider"),
                logger_provider=kwargs.get("logger_provider"),
                meter_provider=kwargs.get("meter_provider"),
                capture_content=resolve_capture_content(kwargs.get("capture_content")),
                pricer=pricer,
            )
        )
        _instrument.instrument()

    def _uninstrument(self, **kwargs: Any) -> None:  # noqa: ANN401 - as BaseInstrumentor
        _state.set_current(None)
        _instrument.uninstrument()
