"""Helpers shared by the eval worker tests (this module holds no tests).

Queue lines are made the way production makes them: real ``openai`` SDK calls to the
demo server, recorded by llmtel (capture ``full``), encoded with the OTLP exporter's
own encoder and written as OTLP/JSON, one logs request per line (ids in hex, as the
collector's file exporter writes them).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import llmtel
from llmtel.demo.server import DemoServer
from llmtel.evals import EvalConfig, EvalTelemetry, Judge, Store, Worker, load_config
from llmtel.testing import capture

QUEUE_FILE = "eval-queue.jsonl"


def otlp_json_line(records: Sequence[ReadableLogRecord]) -> str:
    """One OTLP/JSON ExportLogsServiceRequest holding ``records``, as the collector writes it."""
    request = MessageToDict(encode_logs(records))

    def hexify(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: base64.b64decode(value).hex()
                if key in ("traceId", "spanId") and isinstance(value, str)
                else hexify(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [hexify(item) for item in node]
        return node

    return json.dumps(hexify(request), separators=(",", ":"))


@dataclass
class AppCall:
    """One call the app made: its prompt, its call id and its llmtel records."""

    prompt: str
    call_id: str
    records: list[ReadableLogRecord]


def make_app_calls(
    server: DemoServer,
    prompts: Sequence[str],
    *,
    capture_content: str = "full",
    model: str = "gpt-4o-mini",
    prompt_version: str | None = "v1",
    endpoint: str | None = "support-answer",
    headers: dict[str, str] | None = None,
) -> list[AppCall]:
    """Make one chat call per prompt through the real SDK, recorded by llmtel."""
    calls = []
    with (
        capture(capture_content=capture_content) as cap,  # type: ignore[arg-type]
        openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as client,
    ):
        for prompt in prompts:
            cap.clear()
            with llmtel.context(endpoint=endpoint, prompt_version=prompt_version):
                try:
                    reply = client.chat.completions.create(
                        model=model,
                        messages=[
                            {"role": "system", "content": "Answer from the documents."},
                            {"role": "user", "content": prompt},
                        ],
                        extra_headers=headers or {},
                    )
                    call_id = llmtel.call_id(reply)
                except openai.APIStatusError:
                    call_id = None
            records = list(cap.logs())
            if call_id is None:
                context = records[0].log_record
                call_id = f"{context.trace_id:032x}-{context.span_id:016x}"
            calls.append(AppCall(prompt, call_id, records))
    return calls


def write_queue(directory: Path, lines: Sequence[str], name: str = QUEUE_FILE) -> Path:
    """Append lines to a queue file (created if needed), each with its newline."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    return path


def lines_of(calls: Sequence[AppCall]) -> list[str]:
    """One queue line per call (its call and content records together)."""
    return [otlp_json_line(call.records) for call in calls]


@dataclass
class Sink:
    """What the worker sent, captured in memory (real OpenTelemetry SDK providers)."""

    logs: InMemoryLogRecordExporter = field(default_factory=InMemoryLogRecordExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    flushes: int = 0

    def __post_init__(self) -> None:
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = EvalTelemetry(self.logger_provider, self.meter_provider, self._flush)

    def _flush(self, _timeout_s: float) -> bool:
        self.flushes += 1
        return True

    def results(self) -> list[ReadableLogRecord]:
        """The ``gen_ai.evaluation.result`` records sent, oldest first."""
        return [
            r
            for r in self.logs.get_finished_logs()
            if r.log_record.event_name == "gen_ai.evaluation.result"
        ]

    def points(self, name: str) -> dict[frozenset[tuple[str, Any]], float]:
        """Current value of each data point of metric ``name``, by its attributes."""
        data = self.reader.get_metrics_data()
        out: dict[frozenset[tuple[str, Any]], float] = {}
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            if value is None:
                                value = point.count  # type: ignore[union-attr]
                            out[frozenset(dict(point.attributes or {}).items())] = value
        return out

    def close(self) -> None:
        """Shut the providers down."""
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


@dataclass
class Rig:
    """A worker on a queue directory, judged by a demo server, sending into a ``Sink``."""

    queue_dir: Path
    state_dir: Path
    judge_server: DemoServer
    config: EvalConfig
    sink: Sink
    headers: dict[str, str] = field(default_factory=lambda: {"x-llmtel-demo-judge": "0"})

    @contextmanager
    def worker(self) -> Iterator[Worker]:
        """A fresh worker (as after a restart) on the same state; closed afterwards."""
        store = Store(self.state_dir)
        client = openai.OpenAI(
            base_url=self.judge_server.base_url,
            api_key="test-key",
            max_retries=0,
            default_headers=self.headers,
        )
        judge = Judge(self.config.judge, client, on_error=self.sink.telemetry.judge_error)
        try:
            yield Worker(self.config, store, judge, self.sink.telemetry, queue_dir=self.queue_dir)
        finally:
            client.close()
            store.close()


def default_config(**judge: Any) -> EvalConfig:
    """The shipped rubrics, with a fast-retrying judge (and any other judge settings)."""
    config = load_config()
    settings = dataclasses.replace(
        config.judge, **{"backoff_initial_s": 0.0, "backoff_max_s": 0.0, **judge}
    )
    return dataclasses.replace(config, judge=settings)
