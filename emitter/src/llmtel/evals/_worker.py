"""The eval worker: follow the queue, pair call and content records, judge, send verdicts."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._config import FAIL, PASS, EvalConfig
from ._judge import JUDGE_ENDPOINT, Judge, JudgeUnavailable, Subject
from ._queue import identify, queue_paths, read_lines
from ._records import (
    CONTENT_INPUT,
    CONTENT_OUTPUT,
    MalformedLine,
    Value,
    parse_line,
    render_answer,
    render_conversation,
)
from ._store import Result, Store, StoredCall
from ._telemetry import EvalTelemetry

_log = logging.getLogger("llmtel.evals")

_BATCH_LINES = 200
# After a failed flush (collector away), verdicts are still sent but not flushed one by
# one for this long, so a down collector does not slow judging to one verdict per
# flush timeout.
_FLUSH_BACKOFF_S = 30.0


@dataclass
class Summary:
    """What a worker run did.

    Attributes:
        lines: Queue lines read.
        malformed: Lines (and records inside readable lines) skipped as unreadable.
        judged: Calls that got every rubric's verdict.
        skipped: Calls not judged, by reason.
        verdicts: Verdicts by (rubric, label).
        judge_errors: Failed judge attempts (retried or not).
        pending: Calls still waiting when the run ended.

    Example:
        >>> summary = Summary()
        >>> summary.verdicts[("grounded", "pass")] += 3
        >>> summary.verdicts[("grounded", "fail")] += 1
        >>> summary.pass_rates()
        {'grounded': (3, 4)}
    """

    lines: int = 0
    malformed: int = 0
    judged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)
    judge_errors: int = 0
    pending: int = 0

    def pass_rates(self) -> dict[str, tuple[int, int]]:
        """(passes, passes + fails) by rubric; ``not_applicable`` and ``error`` are left out."""
        rates: dict[str, tuple[int, int]] = {}
        for (rubric, label), count in sorted(self.verdicts.items()):
            passes, total = rates.get(rubric, (0, 0))
            if label in (PASS, FAIL):
                rates[rubric] = (passes + (count if label == PASS else 0), total + count)
        return rates


class Worker:
    """Judges the calls in an eval queue directory, keeping its state in a ``Store``.

    ``once()`` reads everything there is, judges it and returns; ``run(stop)`` keeps
    following the queue (and its rotations) until ``stop`` is set. Either can be killed
    at any point and started again: nothing is judged twice and nothing is skipped.

    Example:
        >>> import tempfile, openai
        >>> from opentelemetry.sdk._logs import LoggerProvider
        >>> from opentelemetry.sdk.metrics import MeterProvider
        >>> from llmtel.evals import EvalTelemetry, Judge, Store, load_config
        >>> config = load_config()
        >>> state = Path(tempfile.mkdtemp())
        >>> client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="demo")
        >>> worker = Worker(
        ...     config,
        ...     Store(state),
        ...     Judge(config.judge, client),
        ...     EvalTelemetry(LoggerProvider(), MeterProvider(), lambda _t: True),
        ...     queue_dir=state / "empty-queue",
        ... )
        >>> worker.once().judged
        0
    """

    def __init__(
        self,
        config: EvalConfig,
        store: Store,
        judge: Judge,
        telemetry: EvalTelemetry,
        *,
        queue_dir: Path,
        own_service: str | None = None,
        keep_days: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.judge = judge
        self.telemetry = telemetry
        self.queue_dir = queue_dir
        self.own_service = own_service
        self.keep_days = keep_days
        self._pruned_at = 0.0
        self.summary = Summary()
        self._clock = clock
        self._sent: set[tuple[str, str, str]] = set()
        self._flush_again_at = 0.0

    # -- the two modes ---------------------------------------------------------------------

    def once(self) -> Summary:
        """Read the whole queue, judge every call in it (waiting for none), and return.

        A second pass picks up what arrived during the first (a content record written
        after its call record), so a queue that never stops growing still ends the run.

        Raises:
            JudgeUnavailable: the judge kept failing; the calls left wait for the next run.
            JudgeFatal: the judge rejects the worker (API key, model).
        """
        self.publish()
        self.prune()
        for _ in range(2):
            if self.ingest() == 0 and self.store.pending_count() == 0:
                break
            self.judge_ready(drain=True, persistent=False)
        return self._finish()

    def run(self, stop: threading.Event, poll_interval_s: float = 1.0) -> Summary:
        """Follow the queue until ``stop`` is set, judging calls as they become complete.

        A call waits up to ``content_wait_s`` for its content record. A judge that is
        down is retried (with backoff) until it answers or ``stop`` is set.

        Raises:
            JudgeFatal: the judge rejects the worker (API key, model).
        """
        self.publish()
        while not stop.is_set():
            self.prune()
            read = self.ingest()
            try:
                judged = self.judge_ready(drain=False, persistent=True)
            except JudgeUnavailable:
                break  # only raised once stop is set
            self.publish()
            if read == 0 and judged == 0:
                stop.wait(poll_interval_s)
        return self._finish()

    def _finish(self) -> Summary:
        self.summary.judge_errors = self.telemetry.judge_errors_seen
        self.summary.pending = self.store.pending_count()
        self.telemetry.set_pending(self.summary.pending)
        self.publish(force=True)
        return self.summary

    def prune(self) -> None:
        """At most hourly: forget the content of calls judged more than ``keep_days`` ago."""
        now = self._clock()
        if now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        removed = self.store.prune(now - self.keep_days * 86400)
        if removed:
            _log.info("llmtel evals: forgot %d calls older than %g days", removed, self.keep_days)

    # -- reading the queue -----------------------------------------------------------------

    def ingest(self) -> int:
        """Read every new complete line of every queue file; return how many were read."""
        total = 0
        seen: list[str] = []
        for path in queue_paths(self.queue_dir):
            found = identify(path)
            if found is None:
                continue
            seen.append(found.identity)
            offset = self.store.offset(found.identity)
            if offset > found.size:
                _log.warning("llmtel evals: %s shrank below its read position; rereading", path)
                offset = 0
            if offset == found.size:
                continue
            batch: list[tuple[bytes, int]] = []
            for line, end in read_lines(path, offset):
                batch.append((line, end))
                if len(batch) >= _BATCH_LINES:
                    total += self._ingest_batch(found.identity, path, batch)
                    batch = []
            if batch:
                total += self._ingest_batch(found.identity, path, batch)
        if seen:
            self.store.forget_files(seen)
        self.telemetry.set_pending(self.store.pending_count())
        return total

    def _ingest_batch(self, identity: str, path: Path, batch: list[tuple[bytes, int]]) -> int:
        now = self._clock()
        malformed_lines = malformed_records = 0
        with self.store.transaction():
            for number, (line, _end) in enumerate(batch):
                if not line.strip():
                    continue
                try:
                    parsed = parse_line(line)
                except MalformedLine as exc:
                    malformed_lines += 1
                    _log.warning(
                        "llmtel evals: skipping a malformed line of %s (%s)", path.name, exc
                    )
                    continue
                malformed_records += parsed.bad_records
                for record in parsed.records:
                    self.store.add_record(record, now + number * 1e-6)
            self.store.set_offset(identity, path, batch[-1][1])
        if malformed_lines:
            self.telemetry.malformed("line", malformed_lines)
        if malformed_records:
            self.telemetry.malformed("record", malformed_records)
        self.summary.malformed += malformed_lines + malformed_records
        self.summary.lines += len(batch)
        return len(batch)

    # -- judging ---------------------------------------------------------------------------

    def judge_ready(self, *, drain: bool, persistent: bool) -> int:
        """Judge the pending calls that are complete (or, with ``drain``, all of them).

        Returns how many calls were finished (judged or skipped).
        """
        finished = 0
        now = self._clock()
        for call in self.store.pending():
            reason = self._skip_reason(call)
            if reason is not None:
                self.store.finish_call(call, "skipped", reason)
                self.telemetry.skipped(reason)
                self.summary.skipped[reason] += 1
                finished += 1
                continue
            complete = call.call is not None and call.content is not None
            waited = now - call.first_seen >= self.config.content_wait_s
            if not (complete or waited or drain):
                continue
            subject = subject_of(call)
            if subject is None:
                self.store.finish_call(call, "skipped", "no_content")
                self.telemetry.skipped("no_content")
                self.summary.skipped["no_content"] += 1
                finished += 1
                continue
            self._judge_call(call, subject, persistent=persistent)
            self.store.finish_call(call, "done")
            self.summary.judged += 1
            finished += 1
            self.telemetry.set_pending(self.store.pending_count())
        return finished

    def _skip_reason(self, call: StoredCall) -> str | None:
        attributes = {**(call.content or {}), **(call.call or {})}
        if attributes.get("llmtel.endpoint") == JUDGE_ENDPOINT or (
            self.own_service is not None and call.service == self.own_service
        ):
            return "eval_traffic"  # the judge's own calls
        if attributes.get("gen_ai.operation.name") not in (None, "chat", "text_completion"):
            return "operation"
        if call.call is not None and call.call.get("llmtel.outcome") not in self.config.outcomes:
            return "outcome"
        return None

    def _judge_call(self, call: StoredCall, subject: Subject, *, persistent: bool) -> None:
        attributes = {**(call.content or {}), **(call.call or {})}
        endpoint = _str(attributes.get("llmtel.endpoint"))
        done = self.store.judged_rubrics(call)
        for rubric in self.config.rubrics:
            if rubric.name in done or not rubric.applies_to(endpoint):
                continue
            verdict = self.judge.verdict(rubric, subject, persistent=persistent)
            result = Result(
                trace_id=call.trace_id,
                span_id=call.span_id,
                rubric=rubric.name,
                rubric_version=rubric.version,
                label=verdict.label,
                score=verdict.score,
                explanation=verdict.explanation,
                error_type=verdict.error_type,
                model=_str(attributes.get("gen_ai.request.model")),
                prompt_version=_str(attributes.get("llmtel.prompt.version")),
                endpoint=endpoint,
                response_id=_str(attributes.get("gen_ai.response.id")),
                judge_model=self.judge.settings.model,
                judge_call_id=verdict.judge_call_id,
                content_source=subject.source,
                created=self._clock(),
            )
            if self.store.add_result(result):
                self.summary.verdicts[(rubric.name, verdict.label)] += 1
            self.publish()

    # -- sending verdicts ------------------------------------------------------------------

    def publish(self, *, force: bool = False) -> None:
        """Send the verdicts not sent yet, flush, and record those that went out.

        A verdict sent but not confirmed (the flush failed) is not sent again by this
        process; a restarted worker sends it again.
        """
        unexported = self.store.unexported()
        if not unexported:
            return
        rubrics = {r.name: r for r in self.config.rubrics}
        for result in unexported:
            key = (result.trace_id, result.span_id, result.rubric)
            if key not in self._sent:
                self.telemetry.emit(result, rubrics.get(result.rubric))
                self._sent.add(key)
        if not force and time.monotonic() < self._flush_again_at:
            return
        if self.telemetry.flush():
            self.store.mark_exported(unexported)
        else:
            _log.warning(
                "llmtel evals: %d verdicts not confirmed by the collector yet", len(unexported)
            )
            self._flush_again_at = time.monotonic() + _FLUSH_BACKOFF_S


def _str(value: Value) -> str | None:
    return value if isinstance(value, str) and value else None


def subject_of(call: StoredCall) -> Subject | None:
    """What the judge sees of a stored call: full content if kept, else the previews."""
    content = call.content or {}
    conversation = content.get(CONTENT_INPUT)
    answer = content.get(CONTENT_OUTPUT)
    if isinstance(conversation, str) and isinstance(answer, str):
        return Subject(render_conversation(conversation), render_answer(answer), "full")
    record = call.call or {}
    blocks = []
    for role, key in (("system", "llmtel.system.preview"), ("user", "llmtel.input.preview")):
        text = record.get(key)
        if isinstance(text, str) and text:
            blocks.append(f"[{role}]\n{text}")
    if isinstance(conversation, str):
        blocks = [render_conversation(conversation)]
    output = (
        render_answer(answer) if isinstance(answer, str) else record.get("llmtel.output.preview")
    )
    if not blocks or not isinstance(output, str) or not output:
        return None
    return Subject("\n\n".join(blocks), output, "preview")
