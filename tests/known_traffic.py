"""Known LLM traffic for tests/test_dashboards_alerts_live.py, run as its own process.

    python tests/known_traffic.py --endpoint http://127.0.0.1:14318 --service NAME --out F

Real openai SDK -> llmtel -> the demo server, with per-request directives, in two
waves: a small first wave with one call of each outcome per (model, endpoint) cell,
flushed, then (after a line on stdin) the bulk. Prometheus stores the first flush of
a new span_metrics histogram series as its base, so rate() only sees what comes
after it; the first wave gives every series that base. Spans leave the process only
on force_flush (OTEL_BSP_* set very long by the caller), so each wave is one OTLP
export and the collector's token and cost counters get exactly one sample per wave.

After the first wave, known eval verdicts on first-wave calls go out through llmtel's
real EvalTelemetry (the eval worker's sender; no judge is asked): it zero-fills each
verdict series and flushes, so the counts arrive with the second wave's export.

Writes to --out {"spans": [one object per span], "verdicts": [...]}: what the checks need.
Its own process: the OpenTelemetry globals of the pytest process stay untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtel
from llmtel.demo.server import DemoConfig, DemoServer
from llmtel.evals import EvalTelemetry, load_config
from llmtel.evals._store import Result

MODELS = ("gpt-4o-mini", "gpt-4o")
ENDPOINTS = ("support-answer", "summarise")
CLIENT_TIMEOUT_S = 1.5
FAST = {"x-llmtel-demo-latency-ms": "150"}
# kind -> (directives, calls per (model, endpoint) cell in the bulk wave). Per cell:
# 100 calls, 7 failing (status ERROR); durations land in (0, 0.1] s: 3, (0.1, 0.25]: 67,
# (0.5, 1]: 27, (1, 2]: 3, so p50, p95 and p99 sit well inside three different buckets.
KINDS: dict[str, tuple[dict[str, str], int]] = {
    "ok-fast": (FAST, 57),
    "ok-mid": ({"x-llmtel-demo-latency-ms": "600"}, 27),
    "ok-slow": ({"x-llmtel-demo-latency-ms": "1200"}, 2),
    "server-error": ({**FAST, "x-llmtel-demo-fail": "500"}, 3),
    "rate-limit": ({"x-llmtel-demo-fail": "429"}, 3),
    "timeout": ({"x-llmtel-demo-fail": "timeout"}, 1),
    "refusal": ({**FAST, "x-llmtel-demo-refusal": "I can't help with that."}, 3),
    "content-filter": ({**FAST, "x-llmtel-demo-finish-reason": "content_filter"}, 4),
}
FIRST_WAVE = ("ok-fast", "server-error", "rate-limit", "timeout", "refusal", "content-filter")
# (rubric, judged model) -> verdict labels. Pass rates over pass and fail only:
# grounded 7/10 (gpt-4o 2/4), cites_sources 4/8 (gpt-4o 1/4).
VERDICTS: dict[tuple[str, str], list[str]] = {
    ("grounded", "gpt-4o-mini"): ["pass"] * 5
    + ["fail", "not_applicable", "not_applicable", "error"],
    ("grounded", "gpt-4o"): ["pass", "pass", "fail", "fail"],
    ("cites_sources", "gpt-4o-mini"): ["pass", "pass", "pass", "fail"],
    ("cites_sources", "gpt-4o"): ["pass", "fail", "fail", "fail"],
}


def plan(wave: int) -> list[tuple[str, str, str, int]]:
    """(model, endpoint, kind, index) for every call of a wave, interleaved."""
    calls = []
    for model in MODELS:
        for endpoint in ENDPOINTS:
            for kind, (_, bulk) in KINDS.items():
                count = (1 if kind in FIRST_WAVE else 0) if wave == 1 else bulk
                calls += [(model, endpoint, kind, i) for i in range(count)]
    return sorted(calls, key=lambda call: (call[3], call[2], call[1], call[0]))


def call(client: openai.OpenAI, model: str, endpoint: str, kind: str, index: int) -> None:
    context = llmtel.context(
        endpoint=endpoint, user_id=f"user-{index % 5}", conversation_id=f"conv-{kind}-{index}"
    )
    # A failure is an outcome on the span, not an error of this script.
    with context, contextlib.suppress(openai.OpenAIError):
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": f"Answer ticket {index} about {kind}"}],
            temperature=0.2,
            extra_headers=KINDS[kind][0],
            timeout=CLIENT_TIMEOUT_S,
        )


def facts(span: ReadableSpan, wave: int) -> dict[str, Any]:
    a = span.attributes or {}
    assert span.end_time is not None
    assert span.start_time is not None
    return {
        "wave": wave,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "model": a.get("gen_ai.request.model"),
        "endpoint": a.get("llmtel.endpoint"),
        "outcome": a.get("llmtel.outcome"),
        "error_type": a.get("error.type"),
        "status": span.status.status_code.name,
        "duration_s": (span.end_time - span.start_time) / 1e9,
        "input_tokens": a.get("gen_ai.usage.input_tokens"),
        "output_tokens": a.get("gen_ai.usage.output_tokens"),
        "cost_usd": a.get("llmtel.cost.usd"),
    }


def send_verdicts(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send VERDICTS, judging first-wave calls of the verdict's model, as the worker would."""
    from opentelemetry import _logs, metrics

    telemetry = EvalTelemetry(
        _logs.get_logger_provider(),
        metrics.get_meter_provider(),
        lambda timeout_s: llmtel.force_flush(timeout_s=timeout_s),
    )
    rubrics = load_config()
    sent = []
    for (rubric, model), labels in VERDICTS.items():
        judged = [s for s in spans if s["model"] == model][: len(labels)]
        for span, label in zip(judged, labels, strict=True):
            telemetry.emit(
                Result(
                    trace_id=span["trace_id"],
                    span_id=span["span_id"],
                    rubric=rubric,
                    rubric_version="known",
                    label=label,
                    score=None,
                    explanation=f"known verdict {label}",
                    error_type="JudgeTimeout" if label == "error" else None,
                    model=model,
                    prompt_version="v1",
                    endpoint=span["endpoint"],
                    response_id=None,
                    judge_model="known-judge",
                    judge_call_id=None,
                    content_source="preview",
                    created=0.0,
                ),
                rubrics.rubric(rubric),
            )
            sent.append(
                {"rubric": rubric, "model": model, "label": label, "trace_id": span["trace_id"]}
            )
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="the collector's OTLP/HTTP base URL")
    parser.add_argument("--service", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    llmtel.init(service_name=args.service, endpoint=args.endpoint)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    observed = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(observed))

    records: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    with DemoServer(config=DemoConfig(timeout_s=5)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        for wave in (1, 2):
            if wave == 2 and sys.stdin.readline().strip() != "go":
                return 1
            with ThreadPoolExecutor(32) as pool:
                list(pool.map(lambda c: call(client, *c), plan(wave)))
            records += [facts(s, wave) for s in observed.get_finished_spans()]
            observed.clear()
            if not llmtel.force_flush(timeout_s=20):
                return 2
            if wave == 1:
                # After the spans' flush: the verdicts' own flushes carry no span.
                verdicts = send_verdicts(records)
            print(f"wave {wave} flushed", flush=True)
        client.close()
    with open(args.out, "w") as out:
        json.dump({"spans": records, "verdicts": verdicts}, out)
    llmtel.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
