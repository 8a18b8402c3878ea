"""Every dashboard and rule query, and the alert path, against the real stack after known traffic.

424 chat calls (tests/known_traffic.py: two models, two endpoints, 9.4% failing,
durations placed in known histogram buckets) go through the real openai SDK, llmtel,
the collector, Prometheus, VictoriaLogs and Jaeger. Then:

- every PromQL query of both dashboards and every recording and alerting rule runs
  against the real Prometheus and returns what that traffic implies: counts exact,
  cost to the cent, percentiles inside the bucket the calls' own durations give;
- every LogsQL panel query runs against the real VictoriaLogs; trace links resolve in
  Jaeger;
- the real Prometheus, on the shipped rule files, holds LLMErrorRateHigh pending with
  its exact labels and annotations (its `for: 10m` is longer than a test run should
  be; promtool proves the firing), and its always-firing Watchdog travels Prometheus ->
  Alertmanager -> the notification log, which proves Prometheus' alerting wiring;
- the real Alertmanager, given the pending alert exactly as Prometheus posts a firing
  one, pages, copies to the log, groups and inhibits as configured, and reads the chat
  receiver's URL from its secret file at notification time.

Queries run at instants picked from the stored samples, where rate() needs no
extrapolation: at a sample of the last flush, with the counter's first (zero) sample
inside the window.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import yaml
from conftest import ROOT, poll_until
from stack import NativeStack

pytestmark = pytest.mark.stack

BUCKETS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300]
DASHBOARDS = {
    p.stem: json.loads(p.read_text()) for p in (ROOT / "grafana/dashboards").glob("*.json")
}
RULES = [
    rule
    for path in sorted((ROOT / "prometheus/rules").glob("*.yaml"))
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
]
RECORDED = {rule["record"]: rule["expr"] for rule in RULES if "record" in rule}
ALERTS = {rule["alert"]: rule for rule in RULES if "alert" in rule}
Labels = tuple[tuple[str, str], ...]

# Spans leave the traffic process only on force_flush: one OTLP export per wave.
QUIET_EXPORTERS = {
    "OTEL_BSP_SCHEDULE_DELAY": "600000",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096",
    "OTEL_BSP_MAX_QUEUE_SIZE": "8192",
    "OTEL_BLRP_SCHEDULE_DELAY": "600000",
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "4096",
    "OTEL_BLRP_MAX_QUEUE_SIZE": "8192",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
}


# -- backends ------------------------------------------------------------------------


def http_json(url: str, data: bytes | None = None, method: str | None = None) -> Any:
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=15) as response:
        body = response.read()
    return json.loads(body) if body.strip() else None


def promql(stack: NativeStack, query: str, at: str | None = None) -> dict[Labels, float]:
    """Instant query: labels (without __name__) -> value."""
    params = {"query": query} | ({"time": at} if at else {})
    body = http_json(
        f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/query?" + urllib.parse.urlencode(params)
    )
    assert body["status"] == "success", body
    return {
        tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")): float(
            s["value"][1]
        )
        for s in body["data"]["result"]
    }


def samples(stack: NativeStack, selector: str, window: str = "10m") -> list[list[str]]:
    """Raw sample timestamps (as Prometheus writes them) of each series of a selector."""
    body = http_json(
        f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/query?"
        + urllib.parse.urlencode({"query": f"{selector}[{window}]"})
    )
    return [[str(t) for t, _ in series["values"]] for series in body["data"]["result"]]


def logsql(stack: NativeStack, query: str, path: str = "query") -> Any:
    url = f"http://127.0.0.1:{stack.ports.victorialogs}/select/logsql/{path}"
    data = urllib.parse.urlencode({"query": query}).encode()
    with urllib.request.urlopen(url, data=data, timeout=15) as response:
        body = response.read().decode()
    if path == "query":
        return [json.loads(line) for line in body.splitlines() if line]
    return json.loads(body)


def only(result: dict[Labels, float], job: str) -> dict[Labels, float]:
    """The series of one job, with the job label dropped."""
    return {
        tuple(kv for kv in labels if kv[0] != "job"): value
        for labels, value in result.items()
        if ("job", job) in labels
    }


# -- the traffic ---------------------------------------------------------------------


@dataclass
class Traffic:
    """What was sent, and the instants at which rate() windows hold it exactly."""

    service: str
    spans: list[dict[str, Any]]
    at_calls: str  # a span_metrics flush after the last call; its first (zero) sample in 5m
    at_cost: str  # the token and cost counters' second (last) sample

    def count(self, key: Callable[[dict[str, Any]], Any]) -> Counter[Any]:
        return Counter(key(span) for span in self.spans)

    @property
    def errors(self) -> int:
        return sum(1 for span in self.spans if span["status"] == "ERROR")


@pytest.fixture(scope="module")
def traffic(stack: NativeStack, tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    """Send both waves, and wait until Prometheus holds every call, token and cent of them."""
    service = f"llmtel-live-{uuid.uuid4().hex[:8]}"
    job = f'job="{service}"'
    out = tmp_path_factory.mktemp("traffic") / "spans.json"
    with subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/known_traffic.py"),
            f"--endpoint=http://127.0.0.1:{stack.ports.collector_otlp_http}",
            f"--service={service}",
            f"--out={out}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **QUIET_EXPORTERS},
    ) as client:
        assert client.stdin is not None
        assert client.stdout is not None
        try:
            assert client.stdout.readline().strip() == "wave 1 flushed"

            def first_wave_stored() -> None:
                # 4 cells x 6 outcomes; every histogram series has its base sample.
                assert promql(stack, f"count(llm_duration_seconds_count{{{job}}})") == {(): 24.0}
                assert promql(stack, f"count(llm_cost_usd_total{{{job}}})") == {(): 4.0}
                assert promql(stack, f"count(llm_tokens_total{{{job}}})") == {(): 8.0}

            poll_until(first_wave_stored, "the first wave's series in Prometheus", timeout=60)
            client.stdin.write("go\n")
            client.stdin.flush()
            assert client.stdout.readline().strip() == "wave 2 flushed"
            assert client.wait(timeout=60) == 0
        finally:
            if client.poll() is None:
                client.kill()
    spans = json.loads(out.read_text())
    total_cost = sum(s["cost_usd"] or 0 for s in spans)

    def all_stored() -> None:
        assert promql(stack, f"sum(llm_calls_total{{{job}}})") == {(): float(len(spans))}
        (cost,) = promql(stack, f"sum(llm_cost_usd_total{{{job}}})").values()
        assert cost == pytest.approx(total_cost, rel=1e-9)

    poll_until(all_stored, f"{len(spans)} calls and their cost in Prometheus", timeout=60)
    calls = samples(stack, f"llm_calls_total{{{job}}}")
    cost = samples(stack, f"llm_cost_usd_total{{{job}}}")
    # Every series of a family shares the flush (or export) timestamps.
    assert len({tuple(s) for s in calls}) == 1, calls
    assert len({tuple(s) for s in cost}) == 1, cost
    assert len(cost[0]) == 2, cost
    first, last = float(calls[0][0]), calls[0][-1]
    assert float(last) - first < 240, "the traffic no longer fits in a 5-minute window"
    return Traffic(service, spans, at_calls=last, at_cost=cost[0][-1])


@pytest.fixture(scope="module")
def recorded(stack: NativeStack, traffic: Traffic) -> Traffic:
    """The traffic, once Prometheus' rules have evaluated it whole (every 15 s)."""
    job = f'job="{traffic.service}"'

    def caught_up() -> None:
        assert promql(stack, f"job:llm_calls_errors:ratio_rate5m{{{job}}}") == pytest.approx(
            {(("job", traffic.service),): traffic.errors / len(traffic.spans)}, rel=1e-12
        )
        assert len(promql(stack, f"job_model:llm_duration_seconds:p95_5m{{{job}}}")) == 2
        assert len(promql(stack, f"job:llm_cost_usd:rate5m{{{job}}}")) == 1

    poll_until(caught_up, "the recording rules over the whole traffic", timeout=60)
    return traffic


def bucket_of(durations: list[float], q: float) -> tuple[float, float]:
    """The (lower, upper] histogram bucket that holds the q-quantile of these durations."""
    rank = q * len(durations)
    cumulative = 0
    lower = 0.0
    for upper in BUCKETS:
        cumulative += sum(1 for d in durations if lower < d <= upper)
        if cumulative >= rank:
            return (lower, upper)
        lower = upper
    raise AssertionError("beyond the last bucket")


def quantile_buckets(
    traffic: Traffic, q: float, key: Callable[[dict[str, Any]], Labels]
) -> dict[Labels, set[tuple[float, float]]]:
    """Labels -> the bucket(s) of the q-quantile: of all calls, and of the second wave.

    Prometheus' rate() recovers the first wave of a histogram series only when the
    zero point of its counter falls inside the window; with either reading the
    traffic is designed to put the quantile in the same bucket.
    """
    groups: dict[Labels, list[dict[str, Any]]] = {}
    for span in traffic.spans:
        groups.setdefault(key(span), []).append(span)
    return {
        labels: {
            bucket_of([s["duration_s"] for s in group], q),
            bucket_of([s["duration_s"] for s in group if s["wave"] == 2], q),
        }
        for labels, group in groups.items()
    }


def in_buckets(value: float, buckets: set[tuple[float, float]]) -> bool:
    return any(lower < value <= upper for lower, upper in buckets)


# -- the traffic itself --------------------------------------------------------------


def test_the_traffic_is_what_the_plan_says(traffic: Traffic) -> None:
    """Verify that the emitter saw 424 calls: 40 failed, 20 refused, 20 filtered, over 4 cells."""
    assert len(traffic.spans) == 424
    assert traffic.count(lambda s: (s["outcome"], s["status"])) == {
        ("ok", "UNSET"): 348,
        ("content_filter", "UNSET"): 20,
        ("refusal", "UNSET"): 16,
        ("server_error", "ERROR"): 16,
        ("rate_limit", "ERROR"): 16,
        ("timeout", "ERROR"): 8,
    }
    assert traffic.errors == 40
    assert set(traffic.count(lambda s: (s["model"], s["endpoint"])).values()) == {106}
    # Every call that got an answer carries its cost; failures carry none.
    assert all((s["cost_usd"] is None) == (s["status"] == "ERROR") for s in traffic.spans)


# -- dashboards: every PromQL panel query --------------------------------------------


def panel_queries(uid: str) -> dict[tuple[str, str], str]:
    dashboard = DASHBOARDS[uid]
    found = {}
    for panel in dashboard["panels"]:
        for nested in [panel, *panel.get("panels", [])]:
            for target in nested.get("targets", []):
                if target["datasource"]["uid"] == "prometheus":
                    found[nested["title"], target["refId"]] = target["expr"]
    return found


def grafana(expr: str, service: str, model: str = ".*", endpoint: str = ".*") -> str:
    """The query Grafana sends for this service, with 5m as $__rate_interval."""
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("$service", service)
        .replace("$model", model)
        .replace("$endpoint", endpoint)
    )


def per_minute(counts: Counter[Any], label: str) -> dict[Labels, float]:
    return {((label, k),): n / 300 * 60 for k, n in counts.items()}


def test_every_prometheus_panel_query_is_checked_below() -> None:
    """Verify that the checks below cover each PromQL query of the dashboards, no more, no less."""
    assert set(panel_queries("llm-overview")) == set(RAW_PANELS) | set(RECORDED_PANELS)
    assert panel_queries("llm-calls") == {}


RAW_PANELS: dict[tuple[str, str], str] = {
    ("Requests per minute by endpoint", "A"): "calls",
    ("Requests per minute by model", "A"): "calls",
    ("Errors and refusals per minute by outcome", "A"): "calls",
    ("Latency p50, p95, p99", "A"): "quantile",
    ("Latency p50, p95, p99", "B"): "quantile",
    ("Latency p50, p95, p99", "C"): "quantile",
    ("Latency p95 by model", "A"): "quantile",
    ("Spend per minute (USD) by model", "A"): "cost",
    ("Tokens per minute by type", "A"): "cost",
}
RECORDED_PANELS = {
    ("Error ratio against the alert threshold", "A"),
    ("p95 latency against the alert threshold", "A"),
    ("p95 latency against the alert threshold", "B"),
    ("Spend per hour against the alert threshold", "A"),
    ("Spend per hour against the alert threshold", "B"),
}


def test_request_and_error_panels_count_every_call(stack: NativeStack, traffic: Traffic) -> None:
    """Verify requests per minute by endpoint and by model, and non-ok outcomes, to the call."""
    queries = panel_queries("llm-overview")
    expected = {
        "Requests per minute by endpoint": per_minute(
            traffic.count(lambda s: s["endpoint"]), "llmtel_endpoint"
        ),
        "Requests per minute by model": per_minute(
            traffic.count(lambda s: s["model"]), "gen_ai_request_model"
        ),
        "Errors and refusals per minute by outcome": per_minute(
            Counter({k: n for k, n in traffic.count(lambda s: s["outcome"]).items() if k != "ok"}),
            "llmtel_outcome",
        ),
    }
    for title, want in expected.items():
        got = promql(stack, grafana(queries[title, "A"], traffic.service), traffic.at_calls)
        assert got == pytest.approx(want, rel=1e-12), title


def test_panel_filters_select_one_model_and_one_endpoint(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify that the model and endpoint variables narrow a panel to exactly those calls."""
    query = grafana(
        panel_queries("llm-overview")["Requests per minute by model", "A"],
        traffic.service,
        model="gpt-4o",
        endpoint="summarise",
    )
    n = sum(1 for s in traffic.spans if (s["model"], s["endpoint"]) == ("gpt-4o", "summarise"))
    assert promql(stack, query, traffic.at_calls) == pytest.approx(
        {(("gen_ai_request_model", "gpt-4o"),): n / 5}, rel=1e-12
    )


def test_latency_percentile_panels_land_in_the_calls_buckets(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify p50, p95, p99 overall and p95 per model, each inside the bucket the calls imply."""
    queries = panel_queries("llm-overview")
    checks = [
        ("Latency p50, p95, p99", "A", 0.5, lambda s: ()),
        ("Latency p50, p95, p99", "B", 0.95, lambda s: ()),
        ("Latency p50, p95, p99", "C", 0.99, lambda s: ()),
        ("Latency p95 by model", "A", 0.95, lambda s: (("gen_ai_request_model", s["model"]),)),
    ]
    seen = set()
    for title, ref, q, key in checks:
        got = promql(stack, grafana(queries[title, ref], traffic.service), traffic.at_calls)
        want = quantile_buckets(traffic, q, key)
        assert set(got) == set(want), title
        for labels, value in got.items():
            assert in_buckets(value, want[labels]), f"{title} {ref} {labels}: {value} {want}"
            seen |= want[labels]
    # The three percentiles sit in three different buckets: the check can tell them apart.
    assert {(0.1, 0.25), (0.5, 1), (1, 2)} <= seen


def test_spend_and_token_panels_match_the_spans_to_the_cent(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify spend per minute by model and tokens per minute by type from the spans' numbers."""
    queries = panel_queries("llm-overview")
    cost: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for span in traffic.spans:
        cost[span["model"]] += span["cost_usd"] or 0
        tokens["input"] += span["input_tokens"] or 0
        tokens["output"] += span["output_tokens"] or 0
    spend = promql(
        stack,
        grafana(queries["Spend per minute (USD) by model", "A"], traffic.service),
        traffic.at_cost,
    )
    assert spend == pytest.approx(per_minute(cost, "gen_ai_request_model"), rel=1e-9)
    # To the cent over the whole traffic (and far closer: the values are exact sums).
    assert round(sum(spend.values()) * 5, 2) == round(sum(cost.values()), 2)
    assert promql(
        stack,
        grafana(queries["Tokens per minute by type", "A"], traffic.service),
        traffic.at_cost,
    ) == pytest.approx(per_minute(tokens, "gen_ai_token_type"), rel=1e-9)


def inline_recorded(expr: str) -> str:
    """The panel query with each recorded series replaced by its rule's expression."""
    for name, rule_expr in RECORDED.items():
        expr = re.sub(re.escape(name) + r"\{[^}]*\}", f"({rule_expr})", expr)
    return expr


def latest_evaluation(stack: NativeStack, name: str, service: str) -> str:
    """The timestamp of the latest recorded sample of a series for this service."""
    found = samples(stack, f'{name}{{job="{service}"}}', "2m")
    assert found, f"nothing recorded as {name} for {service}"
    return max((series[-1] for series in found), key=float)


def test_alert_threshold_panels_plot_exactly_what_the_rules_recorded(
    stack: NativeStack, recorded: Traffic
) -> None:
    """Verify each recorded-series panel equals its rules' expressions at the rules' own instant."""
    queries = panel_queries("llm-overview")
    for key in sorted(RECORDED_PANELS):
        name = re.search(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", queries[key]).group(0)  # type: ignore[union-attr]
        query = grafana(queries[key], recorded.service)
        if name in (
            "job_model:llm_duration_seconds:p95_5m_median1h",
            "job:llm_cost_usd:rate1h_offset10m",
        ):
            # No baseline yet: half an hour of p95s, 70 minutes of cost history needed.
            assert only(promql(stack, query), recorded.service) == {}, key
            continue
        at = latest_evaluation(stack, name, recorded.service)
        got = only(promql(stack, query, at), recorded.service)
        assert got, key
        assert got == only(promql(stack, inline_recorded(query), at), recorded.service), key


def test_error_ratio_panel_shows_the_exact_share_of_failed_calls(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify that the error-ratio panel reads 40/424 once the rules have seen every call."""
    query = grafana(
        panel_queries("llm-overview")["Error ratio against the alert threshold", "A"],
        traffic.service,
    )

    def exact() -> None:
        assert promql(stack, query) == pytest.approx(
            {(("job", traffic.service),): traffic.errors / len(traffic.spans)}, rel=1e-12
        )

    poll_until(exact, "the recorded error ratio of the whole traffic", timeout=45)


# -- rules: every recording rule and alert expression --------------------------------


def test_every_recording_rule_returns_what_the_traffic_implies(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify each recording rule's expression at exact instants: rates, count, ratio, p95, none."""
    n = len(traffic.spans)
    by_model = traffic.count(lambda s: s["model"])
    by_model_outcome = traffic.count(lambda s: (s["model"], s["outcome"]))
    total_cost = sum(s["cost_usd"] or 0 for s in traffic.spans)
    exact = {
        "job_model:llm_calls:rate5m": (
            traffic.at_calls,
            {(("gen_ai_request_model", m),): c / 300 for m, c in by_model.items()},
        ),
        "job_model_outcome:llm_calls:rate5m": (
            traffic.at_calls,
            {
                (("gen_ai_request_model", m), ("llmtel_outcome", o)): c / 300
                for (m, o), c in by_model_outcome.items()
            },
        ),
        "job:llm_calls:increase5m": (traffic.at_calls, {(): float(n)}),
        "job:llm_calls_errors:ratio_rate5m": (traffic.at_calls, {(): traffic.errors / n}),
        "job:llm_cost_usd:rate5m": (traffic.at_cost, {(): total_cost / 300}),
        # No baselines for a service this young.
        "job_model:llm_duration_seconds:p95_5m_median1h": (traffic.at_calls, {}),
        "job:llm_cost_usd:rate1h_offset10m": (traffic.at_cost, {}),
    }
    assert set(exact) | {"job_model:llm_duration_seconds:p95_5m"} == set(RECORDED)
    for name, (at, want) in exact.items():
        got = only(promql(stack, RECORDED[name], at), traffic.service)
        assert got == pytest.approx(want, rel=1e-12), name
    p95 = only(
        promql(stack, RECORDED["job_model:llm_duration_seconds:p95_5m"], traffic.at_calls),
        traffic.service,
    )
    want = quantile_buckets(traffic, 0.95, lambda s: (("gen_ai_request_model", s["model"]),))
    assert set(p95) == set(want)
    assert all(in_buckets(v, want[labels]) for labels, v in p95.items()), (p95, want)


def test_recorded_series_are_their_expressions(stack: NativeStack, recorded: Traffic) -> None:
    """Verify each series Prometheus recorded for this service equals its expression then."""
    checked = 0
    for name, expr in RECORDED.items():
        if not samples(stack, f'{name}{{job="{recorded.service}"}}', "2m"):
            continue
        at = latest_evaluation(stack, name, recorded.service)
        stored = only(promql(stack, f'{name}{{job="{recorded.service}"}}', at), recorded.service)
        assert stored == only(promql(stack, expr, at), recorded.service), name
        checked += 1
    assert checked == 6  # all but the two baselines


def test_alert_expressions_select_exactly_the_error_alert(
    stack: NativeStack, recorded: Traffic
) -> None:
    """Verify the alert expressions: the error ratio for this service, no latency or spend alert."""
    ratio = recorded.errors / len(recorded.spans)

    def evaluated() -> None:
        got = {
            name: only(promql(stack, rule["expr"]), recorded.service)
            for name, rule in ALERTS.items()
            if name != "Watchdog"
        }
        assert got == {
            "LLMErrorRateHigh": pytest.approx({(): ratio}, rel=1e-12),
            "LLMLatencyP95High": {},
            "LLMSpendRateHigh": {},
        }

    poll_until(evaluated, "the alert expressions on the whole traffic", timeout=45)
    assert promql(stack, ALERTS["Watchdog"]["expr"]) == {(): 1.0}


# -- the alert path ------------------------------------------------------------------


def prometheus_alerts(stack: NativeStack) -> list[dict[str, Any]]:
    body = http_json(f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/alerts")
    return body["data"]["alerts"]  # type: ignore[no-any-return]


def humanize_percentage(value: float) -> str:
    """Prometheus' template function: %.4g of the percentage."""
    return f"{value * 100:.4g}%"


@pytest.fixture(scope="module")
def pending(stack: NativeStack, recorded: Traffic) -> dict[str, Any]:
    """LLMErrorRateHigh for the traffic's service, as Prometheus holds it (pending)."""

    def found() -> dict[str, Any]:
        alerts = [
            a
            for a in prometheus_alerts(stack)
            if a["labels"].get("job") == recorded.service
            and a["labels"]["alertname"] == "LLMErrorRateHigh"
        ]
        assert len(alerts) == 1, alerts
        alert = alerts[0]
        assert float(alert["value"]) == pytest.approx(
            recorded.errors / len(recorded.spans), rel=1e-12
        )
        return alert

    return poll_until(found, "LLMErrorRateHigh for the service in Prometheus", timeout=60)


def test_prometheus_holds_the_error_alert_pending_with_exact_labels(
    stack: NativeStack, traffic: Traffic, pending: dict[str, Any]
) -> None:
    """Verify LLMErrorRateHigh is pending (for: 10m) with exact labels, annotations, value."""
    assert pending["state"] == "pending"
    assert pending["labels"] == {
        "alertname": "LLMErrorRateHigh",
        "job": traffic.service,
        "severity": "critical",
    }
    ratio = traffic.errors / len(traffic.spans)
    assert pending["annotations"] == {
        "summary": "LLM calls are failing.",
        "description": (
            f"{humanize_percentage(ratio)} of the LLM calls from {traffic.service} failed over"
            " the last 5 minutes (threshold 2% for 10 minutes)."
        ),
        "runbook_url": "docs/runbooks/LLMErrorRateHigh.md",
    }
    assert humanize_percentage(ratio) == "9.434%"
    others = [a for a in prometheus_alerts(stack) if a["labels"].get("job") == traffic.service]
    assert [a["labels"]["alertname"] for a in others] == ["LLMErrorRateHigh"]


def test_prometheus_sends_the_watchdog_through_alertmanager_to_the_notification_log(
    stack: NativeStack,
) -> None:
    """Verify Prometheus fires Watchdog and Alertmanager's default receiver delivers it."""
    (watchdog,) = [a for a in prometheus_alerts(stack) if a["labels"]["alertname"] == "Watchdog"]
    assert watchdog["state"] == "firing"

    def delivered() -> dict[str, Any]:
        records = logsql(stack, '{receiver="default"} commonLabels.alertname:=Watchdog')
        assert records, "no Watchdog notification yet"
        return records[0]  # type: ignore[no-any-return]

    record = poll_until(delivered, "the Watchdog in VictoriaLogs", timeout=60)
    assert (record["status"], record["_msg"], record["commonLabels.severity"]) == (
        "firing",
        "The alerting pipeline is working.",
        "none",
    )
    body = http_json(f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/alertmanagers")
    assert [a["url"] for a in body["data"]["activeAlertmanagers"]] == [
        f"http://127.0.0.1:{stack.ports.alertmanager}/api/v2/alerts"
    ]


class Capture(BaseHTTPRequestHandler):
    """A webhook endpoint that keeps what it receives (the chat service's stand-in)."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Capture.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Posted:
    page_job: str
    chat_job: str
    chat: list[dict[str, Any]]


@pytest.fixture(scope="module")
def posted(stack: NativeStack, traffic: Traffic, pending: dict[str, Any]) -> Iterator[Posted]:
    """Post alerts to the real Alertmanager as Prometheus does, with chat going to a capture."""
    chat_secret = stack.state_dir / "secrets" / "alertmanager-chat-webhook-url"
    original = chat_secret.read_text()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Capture.received = []
    # What the native stack would write from ALERTMANAGER_CHAT_WEBHOOK_URL; read per send.
    chat_secret.write_text(f"http://127.0.0.1:{server.server_address[1]}/hook/t0ken")
    now = datetime.now(UTC)
    chat_job = f"{traffic.service}-other"

    def alert(labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
        return {
            "labels": labels,
            "annotations": annotations,
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=4)).isoformat(),
            "generatorURL": f"http://127.0.0.1:{stack.ports.prometheus}/graph",
        }

    latency = ALERTS["LLMLatencyP95High"]
    alerts = [
        alert(pending["labels"], pending["annotations"]),
        *[
            alert(
                {
                    "alertname": "LLMLatencyP95High",
                    "job": job,
                    "gen_ai_request_model": model,
                    **latency["labels"],
                },
                {"summary": latency["annotations"]["summary"], "description": f"{model} slow"},
            )
            for job, model in [
                (traffic.service, "gpt-4o"),
                (chat_job, "gpt-4o"),
                (chat_job, "gpt-4o-mini"),
            ]
        ],
    ]
    http_json(
        f"http://127.0.0.1:{stack.ports.alertmanager}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        method="POST",
    )

    def chat_delivered() -> None:
        assert [p["groupLabels"] for p in Capture.received] == [
            {"alertname": "LLMLatencyP95High", "job": chat_job}
        ]

    try:
        poll_until(chat_delivered, "the chat notification (after group_wait)", timeout=90)
        yield Posted(traffic.service, chat_job, Capture.received)
    finally:
        chat_secret.write_text(original)
        server.shutdown()
        server.server_close()


def test_alertmanager_pages_and_logs_the_error_alert(stack: NativeStack, posted: Posted) -> None:
    """Verify the critical alert reaches the page receiver and the notification log, once each."""

    def delivered() -> dict[str, list[dict[str, Any]]]:
        found = {
            receiver: logsql(
                stack,
                f'{{receiver="{receiver}"}} commonLabels.job:="{posted.page_job}"',
            )
            for receiver in ("page", "default")
        }
        assert all(found.values()), {k: len(v) for k, v in found.items()}
        return found

    found = poll_until(delivered, "page and default notifications in VictoriaLogs", timeout=60)
    for receiver, records in found.items():
        (record,) = records
        assert record["status"] == "firing", receiver
        assert record["commonLabels.alertname"] == "LLMErrorRateHigh", receiver
        assert record["commonLabels.severity"] == "critical", receiver
        assert record["_msg"] == "LLM calls are failing.", receiver
        assert record["commonAnnotations.runbook_url"] == "docs/runbooks/LLMErrorRateHigh.md"


def test_alertmanager_inhibits_latency_while_errors_fire_for_the_same_service(
    stack: NativeStack, posted: Posted
) -> None:
    """Verify the failing service's latency alert is suppressed by its error alert, not sent."""
    alerts = http_json(f"http://127.0.0.1:{stack.ports.alertmanager}/api/v2/alerts")
    by_key = {
        (a["labels"]["alertname"], a["labels"]["job"], a["labels"].get("gen_ai_request_model")): a
        for a in alerts
        if a["labels"].get("job", "").startswith(posted.page_job)
    }
    error = by_key["LLMErrorRateHigh", posted.page_job, None]
    muted = by_key["LLMLatencyP95High", posted.page_job, "gpt-4o"]
    assert muted["status"]["state"] == "suppressed"
    assert muted["status"]["inhibitedBy"] == [error["fingerprint"]]
    for model in ("gpt-4o", "gpt-4o-mini"):
        assert by_key["LLMLatencyP95High", posted.chat_job, model]["status"]["state"] == "active"
    # The chat group went out (the fixture waited for it); the muted alert went nowhere.
    assert [p for p in posted.chat if p["commonLabels"].get("job") == posted.page_job] == []
    assert (
        logsql(
            stack,
            f'{{receiver=~".+"}} commonLabels.job:="{posted.page_job}"'
            " commonLabels.alertname:=LLMLatencyP95High",
        )
        == []
    )


def test_alertmanager_groups_a_services_latency_alerts_into_one_chat_message(
    posted: Posted,
) -> None:
    """Verify one chat notification, read from the secret file, carries both models' alerts."""
    (payload,) = posted.chat
    assert payload["receiver"] == "chat"
    assert payload["status"] == "firing"
    assert payload["commonLabels"] == {
        "alertname": "LLMLatencyP95High",
        "job": posted.chat_job,
        "severity": "warning",
    }
    assert sorted(a["labels"]["gen_ai_request_model"] for a in payload["alerts"]) == [
        "gpt-4o",
        "gpt-4o-mini",
    ]


# -- LogsQL panels and trace links ---------------------------------------------------


def logs_queries() -> dict[str, dict[str, Any]]:
    return {p["title"]: p["targets"][0] for p in DASHBOARDS["llm-calls"]["panels"]}


def grafana_logsql(expr: str, service: str, outcome: str = ".*") -> str:
    """The query Grafana sends: ${x:regex} is the escaped value, or .* for All."""
    return (
        expr.replace("${service:regex}", re.escape(service).replace("\\-", "-"))
        .replace("${model:regex}", ".*")
        .replace("${endpoint:regex}", ".*")
        .replace("${outcome:regex}", outcome)
    )


def test_recent_calls_panel_lists_every_call_with_its_five_fields(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify one line per call, newest first, carrying the span's model, outcome, tokens, cost."""
    query = grafana_logsql(logs_queries()["Recent calls"]["expr"], traffic.service)
    records = logsql(stack, query)
    spans = {s["trace_id"]: s for s in traffic.spans}
    assert sorted(r["trace_id"] for r in records) == sorted(spans)
    assert [r["_time"] for r in records] == sorted((r["_time"] for r in records), reverse=True)
    for record in records:
        span = spans[record["trace_id"]]
        assert record["span_id"] == span["span_id"]
        head = f"{span['model']} {span['outcome']} {round(float(record['llmtel.latency_ms']))} ms"
        assert record["_msg"].startswith(head + " | tokens "), record["_msg"]
        assert record["llmtel.endpoint"] == span["endpoint"]
        assert f" | endpoint {span['endpoint']} user user-" in record["_msg"]
        assert record["llmtel.input.preview"].startswith("Answer ticket")
        assert record["_msg"].endswith(
            f"| {record['llmtel.input.preview']} => {record.get('llmtel.output.preview', '')}"
        )
        if span["status"] == "ERROR":
            assert " | tokens  in,  out |  USD |" in record["_msg"]
            continue
        assert (record["gen_ai.usage.input_tokens"], record["gen_ai.usage.output_tokens"]) == (
            str(span["input_tokens"]),
            str(span["output_tokens"]),
        )
        assert float(record["llmtel.cost.usd"]) == pytest.approx(span["cost_usd"], rel=1e-12)
        assert (
            f"| tokens {span['input_tokens']} in, {span['output_tokens']} out"
            f" | {record['llmtel.cost.usd']} USD |"
        ) in record["_msg"]


def test_recent_calls_outcome_filter_keeps_only_that_outcome(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify that the outcome variable narrows the calls panel to exactly those calls."""
    query = grafana_logsql(logs_queries()["Recent calls"]["expr"], traffic.service, "rate_limit")
    records = logsql(stack, query)
    assert len(records) == traffic.count(lambda s: s["outcome"])["rate_limit"] == 16
    assert {r["llmtel.outcome"] for r in records} == {"rate_limit"}


def test_calls_by_outcome_panel_counts_match_the_metrics(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify the VictoriaLogs stats panel counts each outcome exactly as many times as sent."""
    target = logs_queries()["Calls in the time range by outcome"]
    assert target["queryType"] == "stats"
    body = logsql(stack, grafana_logsql(target["expr"], traffic.service), "stats_query")
    got = {r["metric"]["llmtel.outcome"]: int(r["value"][1]) for r in body["data"]["result"]}
    assert got == dict(traffic.count(lambda s: s["outcome"]))


def test_notifications_panel_shows_each_notification_and_its_receiver(
    stack: NativeStack, posted: Posted
) -> None:
    """Verify the notification panel reads status, alert, service, severity, receiver, summary."""
    lines = [r["_msg"] for r in logsql(stack, logs_queries()["Alert notifications"]["expr"])]
    for receiver in ("page", "default"):
        assert (
            f"firing LLMErrorRateHigh {posted.page_job} (critical, to {receiver}):"
            " LLM calls are failing."
        ) in lines


def test_every_call_trace_opens_in_jaeger_and_the_panel_link_finds_a_models_traces(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify Jaeger holds every call's trace, and the p95 panel's link search finds a model's."""
    base = f"http://127.0.0.1:{stack.ports.jaeger_query}/api/traces?"

    def search(tags: dict[str, str] | None = None) -> set[str]:
        params = {"service": traffic.service, "limit": "2000", "lookback": "1h"}
        if tags:
            params["tags"] = json.dumps(tags)
        body = http_json(base + urllib.parse.urlencode(params))
        return {t["traceID"] for t in body["data"]}

    def all_traces() -> None:
        assert search() == {s["trace_id"] for s in traffic.spans}

    poll_until(all_traces, "every call's trace in Jaeger", timeout=60)
    (link,) = [
        link
        for panel in DASHBOARDS["llm-overview"]["panels"]
        for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
        if link["url"].startswith("/explore")
    ]
    panes = json.loads(urllib.parse.unquote(link["url"].split("panes=", 1)[1]))
    (query,) = panes["traces"]["queries"]
    key, value = query["tags"].split("=", 1)
    assert (key, value) == ("gen_ai.request.model", "${__field.labels.gen_ai_request_model}")
    assert search({key: "gpt-4o"}) == {
        s["trace_id"] for s in traffic.spans if s["model"] == "gpt-4o"
    }


def test_variable_queries_list_the_services_models_and_endpoints(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify the dashboards' label_values variables return this traffic's models and endpoints."""
    base = f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/label"

    def values(label: str, match: str) -> set[str]:
        url = f"{base}/{label}/values?" + urllib.parse.urlencode({"match[]": match})
        return set(http_json(url)["data"])

    matcher = f'llm_calls_total{{job=~"{traffic.service}"}}'
    assert traffic.service in values("job", "llm_calls_total")
    assert values("gen_ai_request_model", matcher) == {"gpt-4o", "gpt-4o-mini"}
    assert values("llmtel_endpoint", matcher) == {"support-answer", "summarise"}


def test_logsql_queries_name_only_fields_the_emitter_writes() -> None:
    """Verify the LogsQL queries name only fields the emitter writes on its call records."""
    known = {
        "gen_ai.request.model",
        "llmtel.outcome",
        "llmtel.endpoint",
        "llmtel.latency_ms",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "llmtel.cost.usd",
        "user.id",
        "gen_ai.conversation.id",
        "llmtel.input.preview",
        "llmtel.output.preview",
        "service.name",
        "event_name",
        "latency_ms",
        "_msg",
        "_time",
        "receiver",
        "status",
        "commonLabels.alertname",
        "commonLabels.job",
        "commonLabels.severity",
    }
    attributes = (ROOT / "emitter/src/llmtel/_attributes.py").read_text()
    for target in logs_queries().values():
        fields = set(re.findall(r"<([\w.]+)>", target["expr"]))
        fields |= set(re.findall(r"\b([a-z_]+(?:\.[a-z_]+)+):", target["expr"]))
        assert fields <= known, fields - known
        for field in fields:
            if field.startswith(("gen_ai.", "llmtel.", "user.")):
                assert f'"{field}"' in attributes, field
