"""`OpenAIInstrumentor`: llmtel as a standard OpenTelemetry instrumentor."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import openai
import pytest
import wrapt
from openai.resources.chat.completions.completions import Completions
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtel
from llmtel import OpenAIInstrumentor
from llmtel.demo.server import DemoServer

USER = [{"role": "user", "content": "hi"}]


def test_entry_point_is_registered() -> None:
    """Verify that `opentelemetry-instrument` can find llmtel's instrumentor by entry point."""
    (entry,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "llmtel"]
    assert entry.load() is OpenAIInstrumentor


def test_instrumentor_on_the_apps_own_providers(client: openai.OpenAI) -> None:
    """Verify that the instrumentor records on providers the app configured itself."""
    spans, logs, metrics = (
        InMemorySpanExporter(),
        InMemoryLogRecordExporter(),
        InMemoryMetricReader(),
    )  # type: ignore[no-untyped-call]
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider,
        logger_provider=logger_provider,
        meter_provider=MeterProvider(metric_readers=[metrics]),
        capture_content="none",
    )
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    finally:
        instrumentor.uninstrument()
    (span,) = spans.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "llmtel"
    (record,) = logs.get_finished_logs()
    assert "llmtel.input.preview" not in (record.log_record.attributes or {})
    data = metrics.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names == {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}
    assert not isinstance(Completions.__dict__["create"], wrapt.FunctionWrapper)


def test_init_leaves_an_active_instrumentor_alone(
    caplog: pytest.LogCaptureFixture, llmtel_down: None
) -> None:
    """Verify that `llmtel.init` under an already active instrumentor keeps that one."""
    caplog.set_level(logging.INFO, logger="llmtel")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider())
    try:
        llmtel.init("svc", endpoint="http://127.0.0.1:9")
        assert any("init() keeps that" in r.getMessage() for r in caplog.records)
    finally:
        instrumentor.uninstrument()


def test_works_under_opentelemetry_instrument(server: DemoServer, tmp_path: Path) -> None:
    """Verify that `opentelemetry-instrument python app.py` instruments the SDK through llmtel."""
    app = tmp_path / "app.py"
    app.write_text(
        "import sys, openai\n"
        "from llmtel import OpenAIInstrumentor\n"
        "from openai.resources.chat.completions.completions import Completions\n"
        "assert OpenAIInstrumentor().is_instrumented_by_opentelemetry\n"
        "import wrapt\n"
        "assert isinstance(Completions.__dict__['create'], wrapt.FunctionWrapper)\n"
        f"c = openai.OpenAI(base_url={server.base_url!r}, api_key='k', max_retries=0)\n"
        "r = c.chat.completions.create(\n"
        "    model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}]\n"
        ")\n"
        "import llmtel\n"
        "print('call', llmtel.call_id(r) is not None)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_"))},
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    done = subprocess.run(
        [str(command), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "call True"
