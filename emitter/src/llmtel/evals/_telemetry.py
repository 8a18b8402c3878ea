"""What the eval worker sends over OTLP: verdicts as log records, and its own metrics.

Names (a contract with the dashboards; Prometheus spells them with ``_`` and ``_total``):

- log record ``gen_ai.evaluation.result`` per verdict, on the judged call's trace and
  span, with ``gen_ai.evaluation.name``, ``.score.value``, ``.score.label``,
  ``.explanation``, the judged call's ``gen_ai.request.model``, ``gen_ai.response.id``,
  ``llmtel.prompt.version`` and ``llmtel.endpoint``;
- ``llmtel.eval.results`` (``llmtel_eval_results_total``): verdicts by
  ``gen_ai.evaluation.name``, ``gen_ai.evaluation.score.label``, ``gen_ai.request.model``
  and ``llmtel.prompt.version``;
- ``llmtel.eval.score`` (``llmtel_eval_score_bucket``): scores of 1-5 rubrics;
- ``llmtel.eval.judge.errors``: failed judge attempts by rubric and ``error.type``;
- ``llmtel.eval.queue.malformed``: queue lines and records skipped as unreadable;
- ``llmtel.eval.skipped``: calls not judged, by ``llmtel.eval.skip_reason``;
- ``llmtel.eval.pending``: calls waiting to be judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, SeverityNumber
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.util.types import AttributeValue

from llmtel import __version__

from ._config import ERROR, Rubric
from ._store import Result

EVENT_NAME = "gen_ai.evaluation.result"
SCOPE = "llmtel.evals"

EVALUATION_NAME = "gen_ai.evaluation.name"
SCORE_VALUE = "gen_ai.evaluation.score.value"
SCORE_LABEL = "gen_ai.evaluation.score.label"
EXPLANATION = "gen_ai.evaluation.explanation"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_ID = "gen_ai.response.id"
PROMPT_VERSION = "llmtel.prompt.version"
ENDPOINT = "llmtel.endpoint"
ERROR_TYPE = "error.type"

RESULTS_METRIC = "llmtel.eval.results"
SCORE_METRIC = "llmtel.eval.score"
JUDGE_ERRORS_METRIC = "llmtel.eval.judge.errors"
MALFORMED_METRIC = "llmtel.eval.queue.malformed"
SKIPPED_METRIC = "llmtel.eval.skipped"
PENDING_METRIC = "llmtel.eval.pending"


class EvalTelemetry:
    """Sends verdicts and the worker's own counters through OpenTelemetry providers.

    ``flush(timeout_s)`` must push everything buffered and say whether it went out; the
    CLI passes ``llmtel.force_flush``.

    Example:
        >>> from opentelemetry.sdk._logs import LoggerProvider
        >>> from opentelemetry.sdk.metrics import MeterProvider
        >>> telemetry = EvalTelemetry(LoggerProvider(), MeterProvider(), lambda _t: True)
        >>> telemetry.malformed("line")
    """

    def __init__(
        self,
        logger_provider: LoggerProvider,
        meter_provider: MeterProvider,
        flush: Callable[[float], bool],
        *,
        flush_timeout_s: float = 5.0,
    ) -> None:
        self._logger = logger_provider.get_logger(SCOPE, __version__)
        meter = meter_provider.get_meter(SCOPE, __version__)
        self._flush = flush
        self._flush_timeout_s = flush_timeout_s
        self._results = meter.create_counter(
            RESULTS_METRIC, unit="{result}", description="Verdicts of the eval judge."
        )
        self._score = meter.create_histogram(
            SCORE_METRIC,
            unit="{score}",
            description="Scores of 1-5 rubrics.",
            explicit_bucket_boundaries_advisory=[1, 2, 3, 4, 5],
        )
        self._judge_errors = meter.create_counter(
            JUDGE_ERRORS_METRIC, unit="{error}", description="Failed judge attempts."
        )
        self._malformed = meter.create_counter(
            MALFORMED_METRIC,
            unit="{record}",
            description="Eval queue lines or records skipped as unreadable.",
        )
        self._skipped = meter.create_counter(
            SKIPPED_METRIC, unit="{call}", description="Sampled calls not judged, by reason."
        )
        self._pending = 0
        meter.create_observable_gauge(
            PENDING_METRIC,
            callbacks=[self._observe_pending],
            unit="{call}",
            description="Calls waiting to be judged.",
        )
        self._series: set[tuple[tuple[str, AttributeValue], ...]] = set()
        self.judge_errors_seen = 0

    def _observe_pending(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(self._pending)]

    def set_pending(self, count: int) -> None:
        """Report how many calls wait to be judged."""
        self._pending = count

    def judge_error(self, rubric: str, error_type: str) -> None:
        """Count one failed judge attempt."""
        self.judge_errors_seen += 1
        self._judge_errors.add(1, {EVALUATION_NAME: rubric, ERROR_TYPE: error_type})

    def malformed(self, kind: str, count: int = 1) -> None:
        """Count unreadable queue input: ``kind`` is ``line`` or ``record``."""
        self._malformed.add(count, {"llmtel.eval.malformed": kind})

    def skipped(self, reason: str) -> None:
        """Count a sampled call that is not judged, and why."""
        self._skipped.add(1, {"llmtel.eval.skip_reason": reason})

    def flush(self) -> bool:
        """Export what is buffered; True if it all went out."""
        return self._flush(self._flush_timeout_s)

    def emit(self, result: Result, rubric: Rubric | None) -> None:
        """Send one verdict: its log record, and the results counter (and score histogram).

        The first verdict of a new (rubric, model, prompt version) series first sets
        the counter of each of its labels to zero and flushes, so that Prometheus'
        ``increase()`` sees the series' first verdict too.
        """
        metric: dict[str, AttributeValue] = {
            EVALUATION_NAME: result.rubric,
            SCORE_LABEL: result.label,
        }
        if result.model is not None:
            metric[REQUEST_MODEL] = result.model
        if result.prompt_version is not None:
            metric[PROMPT_VERSION] = result.prompt_version
        labels = rubric.labels() if rubric is not None else ()
        if result.label not in labels:
            labels = (*labels, result.label)
        fresh = False
        for label in labels:
            key = tuple(sorted({**metric, SCORE_LABEL: label}.items()))
            if key not in self._series:
                self._series.add(key)
                self._results.add(0, dict(key))
                fresh = True
        if fresh:
            self.flush()
        self._results.add(1, metric)
        if result.score is not None and rubric is not None and rubric.scale == "1-5":
            self._score.record(result.score, {k: v for k, v in metric.items() if k != SCORE_LABEL})
        self._logger.emit(
            timestamp=time.time_ns(),
            context=trace.set_span_in_context(
                NonRecordingSpan(
                    SpanContext(
                        trace_id=int(result.trace_id, 16),
                        span_id=int(result.span_id, 16),
                        is_remote=True,
                        trace_flags=TraceFlags(TraceFlags.SAMPLED),
                    )
                )
            ),
            severity_number=SeverityNumber.WARN if result.label == ERROR else SeverityNumber.INFO,
            severity_text="WARN" if result.label == ERROR else "INFO",
            body=f"evaluation {result.rubric} {result.label}",
            attributes=record_attributes(result),
            event_name=EVENT_NAME,
        )


def record_attributes(result: Result) -> dict[str, AttributeValue]:
    """The attributes of a verdict's ``gen_ai.evaluation.result`` log record."""
    attributes: dict[str, AttributeValue] = {
        EVALUATION_NAME: result.rubric,
        SCORE_LABEL: result.label,
        EXPLANATION: result.explanation,
        "llmtel.call.id": f"{result.trace_id}-{result.span_id}",
        "llmtel.eval.id": result.eval_id,
        "llmtel.eval.rubric.version": result.rubric_version,
        "llmtel.eval.judge.model": result.judge_model,
        "llmtel.eval.content": result.content_source,
    }
    optional: dict[str, AttributeValue | None] = {
        SCORE_VALUE: result.score,
        REQUEST_MODEL: result.model,
        RESPONSE_ID: result.response_id,
        PROMPT_VERSION: result.prompt_version,
        ENDPOINT: result.endpoint,
        ERROR_TYPE: result.error_type,
        "llmtel.eval.judge.call_id": result.judge_call_id,
    }
    attributes.update({k: v for k, v in optional.items() if v is not None})
    return attributes
