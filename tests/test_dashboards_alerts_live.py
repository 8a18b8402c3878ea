"""Every dashboard and rule query, and the alert path, against the real stack after known traffic.

424 chat calls (tests/known_traffic.py: two models, two endpoints, 9.4% failing,
durations placed in known histogram buckets) go through the real openai SDK, llmtel,
the collector, Prometheus, VictoriaLogs and Jaeger, with 21 known eval verdicts sent
by llmtel's EvalTelemetry. Then:

- every PromQL query of both dashboards and every recording and alerting rule runs
  against the real Prometheus and returns what that traffic implies: counts exact,
  cost to the cent, pass rates exact, percentiles inside the bucket the calls' own
  durations give;
- every LogsQL panel query runs against the real VictoriaLogs; trace links resolve in
  Jaeger; the datasources' trace-to-logs and trace-to-metrics queries return the
  trace's own records and the service's exact request rate;
- the real Prometheus, evaluating a copy of the shipped rule files whose only change
  is a 20 times shorter `for` (10m -> 30s; evaluated every 5 s instead of 15 s; see
  `alerting`), fires LLMErrorRateHigh with its exact labels and annotations, and the
  real Alertmanager delivers it to the page receiver's webhook (a local capture whose
  URL it reads from the secret file) and to the notification log in VictoriaLogs; the
  Watchdog travels the same way;
- latency alerts posted to Alertmanager as Prometheus would post them (no latency
  alert can fire in minutes: its baseline needs half an hour) are inhibited by the
  real error alert for the same service, and grouped per service into one chat message.

Queries run at instants picked from the stored samples, where rate() needs no
extrapolation: at a sample of the last flush, with the counter's first (zero) sample
inside the window.
"""

from __future__ import annotations

import json
import os
import re
import signal
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
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from conftest import ROOT, poll_until
from render import render_prometheus_config
from stack import NativeStack
from test_collector_outage import QUEUE_FILL_PANEL

pytestmark = pytest.mark.stack

BUCKETS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300]
DASHBOARDS = {
    p.stem: json.loads(p.read_text()) for p in (ROOT / "grafana/dashboards").glob("*.json")
}
RULE_FILES = sorted((ROOT / "prometheus/rules").glob("*.yaml"))
RULE_GROUPS = [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]
RULES = [rule for group in RULE_GROUPS for rule in group["rules"]]
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


# -- the alerting setup --------------------------------------------------------------

# The live alert path runs the session's Prometheus on a test-rendered copy of the
# shipped rule files in which every `for` is 20 times shorter (LLMErrorRateHigh: 10m
# -> 30s) and rules are evaluated every 5 s instead of 15 s, so that the error alert
# fires within a test run. Nothing else differs (test_fast_rules_differ_only_in_for);
# promtool proves the shipped durations. The module restores the shipped setup.
FOR_DIVISOR = 20
EVALUATION_INTERVAL_S = 5
SHIPPED_EVALUATION_INTERVAL_S = 15
UNITS_S = {"s": 1, "m": 60, "h": 3600}


def duration_s(text: str) -> int:
    (number, unit) = re.fullmatch(r"(\d+)([smh])", text).groups()  # type: ignore[union-attr]
    return int(number) * UNITS_S[unit]


def fast_rules(text: str) -> str:
    """A rule file's text with each `for:` FOR_DIVISOR times shorter, in seconds."""

    def shorter(match: re.Match[str]) -> str:
        seconds = duration_s(match.group(2)) / FOR_DIVISOR
        assert seconds == int(seconds), match.group(0)
        return f"{match.group(1)}{int(seconds)}s"

    return re.sub(r"^(\s+for: )(\S+)$", shorter, text, flags=re.MULTILINE)


class Capture(BaseHTTPRequestHandler):
    """A webhook endpoint that keeps what it receives: (path, payload) per notification."""

    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Capture.received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Alerting:
    """Where the page and chat receivers deliver during this module, and the rule copy."""

    page_path: str
    chat_path: str
    rules_dir: Path

    def delivered(self, path: str) -> list[dict[str, Any]]:
        return [payload for at, payload in Capture.received if at == path]


def loaded_rules(stack: NativeStack) -> list[dict[str, Any]]:
    body = http_json(f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/rules")
    return body["data"]["groups"]  # type: ignore[no-any-return]


def reload_prometheus(stack: NativeStack, config: str, rules_dir: Path, interval_s: int) -> None:
    """Write Prometheus' config, SIGHUP it, and wait until its rules come from rules_dir."""
    (stack.state_dir / "prometheus.yaml").write_text(config)
    pid = int((stack.pids_dir / "prometheus.pid").read_text())
    os.kill(pid, signal.SIGHUP)

    def reloaded() -> None:
        groups = loaded_rules(stack)
        assert len(groups) == len(RULE_GROUPS), groups
        assert {(Path(g["file"]).parent, g["interval"]) for g in groups} == {
            (rules_dir, interval_s)
        }

    poll_until(reloaded, f"Prometheus rules from {rules_dir} every {interval_s} s", timeout=30)


@pytest.fixture(scope="module")
def alerting(stack: NativeStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerting]:
    """The fast rule copy in the session's Prometheus, page and chat receivers at a capture."""
    rules_dir = tmp_path_factory.mktemp("fast-rules")
    for path in RULE_FILES:
        (rules_dir / path.name).write_text(fast_rules(path.read_text()))
    shipped_config = (stack.state_dir / "prometheus.yaml").read_text()
    fast_config, count = re.subn(
        r"^(  evaluation_interval: )15s$",
        rf"\g<1>{EVALUATION_INTERVAL_S}s",
        render_prometheus_config(
            (ROOT / "prometheus/prometheus.yaml").read_text(), stack.ports, rules_dir
        ),
        flags=re.MULTILINE,
    )
    assert count == 1
    secrets = stack.state_dir / "secrets"
    originals = {p: p.read_text() for p in secrets.iterdir()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Capture.received = []
    base = f"http://127.0.0.1:{server.server_address[1]}"
    # What the native stack writes from ALERTMANAGER_*_WEBHOOK_URL; read at each send.
    (secrets / "alertmanager-page-webhook-url").write_text(f"{base}/page/t0ken")
    (secrets / "alertmanager-chat-webhook-url").write_text(f"{base}/chat/t0ken")
    try:
        reload_prometheus(stack, fast_config, rules_dir, EVALUATION_INTERVAL_S)
        yield Alerting("/page/t0ken", "/chat/t0ken", rules_dir)
    finally:
        reload_prometheus(
            stack, shipped_config, ROOT / "prometheus/rules", SHIPPED_EVALUATION_INTERVAL_S
        )
        for path, text in originals.items():
            path.write_text(text)
        server.shutdown()
        server.server_close()


# -- the traffic ---------------------------------------------------------------------


@dataclass
class Traffic:
    """What was sent, and the instants at which rate() windows hold it exactly."""

    service: str
    spans: list[dict[str, Any]]
    at_calls: str  # a span_metrics flush after the last call; its first (zero) sample in 5m
    at_cost: str  # the token and cost counters' second (last) sample
    verdicts: list[dict[str, Any]]  # known eval verdicts: rubric, model, label
    at_verdicts: str  # the verdict counters' last sample (their first is zero)

    def count(self, key: Callable[[dict[str, Any]], Any]) -> Counter[Any]:
        return Counter(key(span) for span in self.spans)

    @property
    def errors(self) -> int:
        return sum(1 for span in self.spans if span["status"] == "ERROR")


@pytest.fixture(scope="module")
def traffic(
    stack: NativeStack, tmp_path_factory: pytest.TempPathFactory, alerting: Alerting
) -> Traffic:
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
    sent = json.loads(out.read_text())
    spans, verdicts = sent["spans"], sent["verdicts"]
    total_cost = sum(s["cost_usd"] or 0 for s in spans)

    def all_stored() -> None:
        assert promql(stack, f"sum(llm_calls_total{{{job}}})") == {(): float(len(spans))}
        (cost,) = promql(stack, f"sum(llm_cost_usd_total{{{job}}})").values()
        assert cost == pytest.approx(total_cost, rel=1e-9)
        assert promql(stack, f"sum(llmtel_eval_results_total{{{job}}})") == {
            (): float(len(verdicts))
        }

    poll_until(all_stored, f"{len(spans)} calls and their cost in Prometheus", timeout=60)
    calls = samples(stack, f"llm_calls_total{{{job}}}")
    cost = samples(stack, f"llm_cost_usd_total{{{job}}}")
    # Every series of a family shares the flush (or export) timestamps.
    assert len({tuple(s) for s in calls}) == 1, calls
    assert len({tuple(s) for s in cost}) == 1, cost
    assert len(cost[0]) == 2, cost
    first, last = float(calls[0][0]), calls[0][-1]
    assert float(last) - first < 240, "the traffic no longer fits in a 5-minute window"
    judged = samples(stack, f"llmtel_eval_results_total{{{job}}}")
    assert {s[-1] for s in judged} == {judged[0][-1]}, judged
    return Traffic(
        service,
        spans,
        at_calls=last,
        at_cost=cost[0][-1],
        verdicts=verdicts,
        at_verdicts=judged[0][-1],
    )


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
    assert Counter(v["label"] for v in traffic.verdicts) == {
        "pass": 11,
        "fail": 7,
        "not_applicable": 2,
        "error": 1,
    }
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
    # The pipeline-health panel is checked where a queue really fills: test_collector_outage.
    assert set(panel_queries("llm-overview")) == set(RAW_PANELS) | set(RECORDED_PANELS) | {
        QUEUE_FILL_PANEL
    }
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
    ("Eval pass rate by rubric", "A"): "verdicts",
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


def test_eval_pass_rate_panel_gives_each_rubrics_share_of_passes(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify the pass-rate panel: passes over passes and fails per rubric, all models and one."""
    expr = panel_queries("llm-overview")["Eval pass rate by rubric", "A"]
    # Verdict series carry the sender's job (llmtel-evals in production): here, the traffic's.
    own = expr.replace(
        "llmtel_eval_results_total{", f'llmtel_eval_results_total{{job="{traffic.service}", '
    )
    assert own.count(traffic.service) == 2
    for model, literal in ((".*", (0.7, 0.5)), ("gpt-4o", (0.5, 0.25))):
        want = {}
        for rubric in ("grounded", "cites_sources"):
            labels = [
                v["label"]
                for v in traffic.verdicts
                if v["rubric"] == rubric and re.fullmatch(model, v["model"])
            ]
            passed, failed = labels.count("pass"), labels.count("fail")
            want[(("gen_ai_evaluation_name", rubric),)] = passed / (passed + failed)
        # not_applicable and error verdicts were sent too, and are left out.
        assert list(want.values()) == list(literal), model
        got = promql(stack, grafana(own, traffic.service, model=model), traffic.at_verdicts)
        assert got == pytest.approx(want, rel=1e-12), model


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


DATASOURCES = {
    ds["uid"]: ds
    for ds in yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/datasources.yaml").read_text()
    )["datasources"]
}


def test_trace_to_logs_query_finds_the_calls_record_and_its_verdicts(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify Jaeger's trace-to-logs query returns a trace's call record and eval verdicts only."""
    template = DATASOURCES["jaeger"]["jsonData"]["tracesToLogsV2"]["query"]
    judged = Counter(v["trace_id"] for v in traffic.verdicts)
    plain = next(s for s in traffic.spans if s["wave"] == 2 and s["status"] == "ERROR")
    twice = next(s for s in traffic.spans if judged[s["trace_id"]] == 2)
    for span in (plain, twice):
        # Grafana expands $${...} in provisioning files to ${...}, then the trace id.
        query = template.replace("$${__trace.traceId}", span["trace_id"])
        assert span["trace_id"] in query
        records = logsql(stack, query)
        assert {r["trace_id"] for r in records} == {span["trace_id"]}
        assert Counter(r["event_name"] for r in records) == Counter(
            {"llmtel.call": 1, "gen_ai.evaluation.result": judged[span["trace_id"]]}
        )
        (call,) = [r for r in records if r["event_name"] == "llmtel.call"]
        assert call["span_id"] == span["span_id"]


def test_trace_to_metrics_query_gives_the_services_requests_per_minute(
    stack: NativeStack, traffic: Traffic
) -> None:
    """Verify Jaeger's trace-to-metrics query, on the span's service tag, counts every call."""
    links = DATASOURCES["jaeger"]["jsonData"]["tracesToMetrics"]
    assert links["tags"] == [{"key": "service.name", "value": "job"}]
    (query,) = [q["query"] for q in links["queries"]]
    # Grafana writes each mapped tag as label="value" for $${__tags}.
    expr = query.replace("$${__tags}", f'job="{traffic.service}"')
    assert promql(stack, expr, traffic.at_calls) == pytest.approx(
        per_minute(traffic.count(lambda s: s["model"]), "gen_ai_request_model"), rel=1e-12
    )


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


# -- the alert path: Prometheus -> Alertmanager -> webhooks --------------------------


def test_fast_rules_differ_from_the_shipped_rules_only_in_for(alerting: Alerting) -> None:
    """Verify the module's rule copy is the shipped rules with each `for` 20 times shorter."""
    durations = {}
    for path in RULE_FILES:
        shipped = yaml.safe_load(path.read_text())
        fast = yaml.safe_load((alerting.rules_dir / path.name).read_text())
        for shipped_group, fast_group in zip(shipped["groups"], fast["groups"], strict=True):
            for rule, fast_rule in zip(shipped_group["rules"], fast_group["rules"], strict=True):
                if "for" in rule:
                    durations[rule["alert"]] = (rule.pop("for"), fast_rule.pop("for"))
        assert fast == shipped, path.name
    assert durations == {
        "LLMErrorRateHigh": ("10m", "30s"),
        "LLMLatencyP95High": ("5m", "15s"),
        "LLMSpendRateHigh": ("5m", "15s"),
    }


def prometheus_alerts(stack: NativeStack) -> list[dict[str, Any]]:
    body = http_json(f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/alerts")
    return body["data"]["alerts"]  # type: ignore[no-any-return]


def humanize_percentage(value: float) -> str:
    """Prometheus' template function: %.4g of the percentage."""
    return f"{value * 100:.4g}%"


def timestamp(text: str) -> datetime:
    """An RFC 3339 time cut to milliseconds: Prometheus sends alerts' times to Alertmanager so."""
    return datetime.fromisoformat(re.sub(r"(\.\d{3})\d*", r"\1", text))


@pytest.fixture(scope="module")
def firing(stack: NativeStack, recorded: Traffic, alerting: Alerting) -> dict[str, Any]:
    """LLMErrorRateHigh for the traffic's service, once Prometheus holds it firing."""

    def found() -> dict[str, Any]:
        alerts = [a for a in prometheus_alerts(stack) if a["labels"].get("job") == recorded.service]
        assert [a["labels"]["alertname"] for a in alerts] == ["LLMErrorRateHigh"], alerts
        assert alerts[0]["state"] == "firing", alerts[0]["state"]
        return alerts[0]

    return poll_until(found, "LLMErrorRateHigh firing for the service in Prometheus", timeout=90)


def error_alert_annotations(service: str, ratio: float) -> dict[str, str]:
    return {
        "summary": "LLM calls are failing.",
        "description": (
            f"{humanize_percentage(ratio)} of the LLM calls from {service} failed over"
            " the last 5 minutes (threshold 2% for 10 minutes)."
        ),
        "runbook_url": "docs/runbooks/LLMErrorRateHigh.md",
    }


def test_prometheus_fires_the_error_alert_with_exact_labels_and_annotations(
    traffic: Traffic, firing: dict[str, Any]
) -> None:
    """Verify LLMErrorRateHigh fires alone for the service with exact labels, annotations, value."""
    ratio = traffic.errors / len(traffic.spans)
    assert firing["labels"] == {
        "alertname": "LLMErrorRateHigh",
        "job": traffic.service,
        "severity": "critical",
    }
    assert float(firing["value"]) == pytest.approx(ratio, rel=1e-12)
    assert humanize_percentage(ratio) == "9.434%"
    assert firing["annotations"] == error_alert_annotations(traffic.service, ratio)


def test_prometheus_sends_the_watchdog_through_alertmanager_to_the_notification_log(
    stack: NativeStack, alerting: Alerting
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


@dataclass
class Delivered:
    """The notifications the webhook received, and the two services involved."""

    page_job: str
    chat_job: str
    page: dict[str, Any]
    chat: dict[str, Any]


@pytest.fixture(scope="module")
def delivered(
    stack: NativeStack, traffic: Traffic, firing: dict[str, Any], alerting: Alerting
) -> Delivered:
    """Prometheus' own error alert through Alertmanager; latency alerts posted as Prometheus does.

    No latency alert can fire for real in a test run (its baseline needs 30 minutes of
    p95s), so latency alerts for the failing service and for another one are posted to
    the real Alertmanager's API with the labels and annotations their rule gives, to
    check inhibition and grouping against the error alert that Prometheus sent.
    """
    alertmanager = f"http://127.0.0.1:{stack.ports.alertmanager}/api/v2/alerts"

    def from_prometheus() -> None:
        alerts = [a for a in http_json(alertmanager) if a["labels"].get("job") == traffic.service]
        assert [(a["labels"]["alertname"], a["status"]["state"]) for a in alerts] == [
            ("LLMErrorRateHigh", "active")
        ]

    poll_until(from_prometheus, "Prometheus' LLMErrorRateHigh in Alertmanager", timeout=60)
    chat_job = f"{traffic.service}-other"
    latency = ALERTS["LLMLatencyP95High"]
    now = datetime.now(UTC)

    def post(*series: tuple[str, str]) -> None:
        alerts = [
            {
                "labels": {
                    "alertname": "LLMLatencyP95High",
                    "job": job,
                    "gen_ai_request_model": model,
                    **latency["labels"],
                },
                "annotations": {"summary": latency["annotations"]["summary"]},
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=4)).isoformat(),
            }
            for job, model in series
        ]
        http_json(alertmanager, data=json.dumps(alerts).encode(), method="POST")

    # The failing service's first: its group's wait ends before the other service's.
    post((traffic.service, "gpt-4o"))
    post((chat_job, "gpt-4o"), (chat_job, "gpt-4o-mini"))

    def ours(path: str) -> list[dict[str, Any]]:
        return [
            p
            for p in alerting.delivered(path)
            if p["groupLabels"].get("job", "").startswith(traffic.service)
        ]

    def arrived() -> tuple[dict[str, Any], dict[str, Any]]:
        page, chat = ours(alerting.page_path), ours(alerting.chat_path)
        assert [p["groupLabels"] for p in page] == [
            {"alertname": "LLMErrorRateHigh", "job": traffic.service}
        ]
        assert [p["groupLabels"] for p in chat] == [
            {"alertname": "LLMLatencyP95High", "job": chat_job}
        ]
        return page[0], chat[0]

    page, chat = poll_until(arrived, "the page and chat notifications (group_wait)", timeout=90)
    return Delivered(traffic.service, chat_job, page, chat)


def test_the_error_alert_reaches_the_page_webhook_after_its_for(
    stack: NativeStack, traffic: Traffic, firing: dict[str, Any], delivered: Delivered
) -> None:
    """Verify Prometheus' firing error alert reaches the page webhook, read from its secret file."""
    payload = delivered.page
    assert (payload["receiver"], payload["status"]) == ("page", "firing")
    assert payload["commonLabels"] == firing["labels"]
    ratio = traffic.errors / len(traffic.spans)
    assert payload["commonAnnotations"] == error_alert_annotations(traffic.service, ratio)
    (alert,) = payload["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == firing["labels"]
    assert "/graph?g0.expr=" in alert["generatorURL"]
    # Pending first, firing only once the condition held for the (shortened) `for`.
    held = timestamp(alert["startsAt"]) - timestamp(firing["activeAt"])
    assert held.total_seconds() >= duration_s("30s")


def test_alertmanager_copies_the_error_alert_to_the_notification_log(
    stack: NativeStack, delivered: Delivered
) -> None:
    """Verify the error alert is also logged once by the default receiver in VictoriaLogs."""

    def logged() -> list[dict[str, Any]]:
        records = logsql(
            stack,
            f'{{receiver="default"}} commonLabels.job:="{delivered.page_job}"'
            " commonLabels.alertname:=LLMErrorRateHigh",
        )
        assert records, "no LLMErrorRateHigh notification in the log yet"
        return records  # type: ignore[no-any-return]

    (record,) = poll_until(logged, "the default receiver's record in VictoriaLogs", timeout=60)
    assert record["status"] == "firing"
    assert record["commonLabels.severity"] == "critical"
    assert record["_msg"] == "LLM calls are failing."
    assert record["commonAnnotations.runbook_url"] == "docs/runbooks/LLMErrorRateHigh.md"


def test_alertmanager_inhibits_latency_while_errors_fire_for_the_same_service(
    stack: NativeStack, alerting: Alerting, delivered: Delivered
) -> None:
    """Verify the failing service's latency alert is suppressed by its error alert, not sent."""
    alerts = http_json(f"http://127.0.0.1:{stack.ports.alertmanager}/api/v2/alerts")
    by_key = {
        (a["labels"]["alertname"], a["labels"]["job"], a["labels"].get("gen_ai_request_model")): a
        for a in alerts
        if a["labels"].get("job", "").startswith(delivered.page_job)
    }
    error = by_key["LLMErrorRateHigh", delivered.page_job, None]
    muted = by_key["LLMLatencyP95High", delivered.page_job, "gpt-4o"]
    assert muted["status"]["state"] == "suppressed"
    assert muted["status"]["inhibitedBy"] == [error["fingerprint"]]
    for model in ("gpt-4o", "gpt-4o-mini"):
        assert by_key["LLMLatencyP95High", delivered.chat_job, model]["status"]["state"] == "active"
    # Its group's wait ended before the chat group's (the fixture waited for that): nothing.
    sent = alerting.delivered(alerting.chat_path) + alerting.delivered(alerting.page_path)
    assert [p for p in sent if p["commonLabels"].get("alertname") == "LLMLatencyP95High"] == [
        delivered.chat
    ]
    assert (
        logsql(
            stack,
            f'{{receiver=~".+"}} commonLabels.job:="{delivered.page_job}"'
            " commonLabels.alertname:=LLMLatencyP95High",
        )
        == []
    )


def test_alertmanager_groups_a_services_latency_alerts_into_one_chat_message(
    delivered: Delivered,
) -> None:
    """Verify one chat notification, read from the secret file, carries both models' alerts."""
    payload = delivered.chat
    assert payload["receiver"] == "chat"
    assert payload["status"] == "firing"
    assert payload["commonLabels"] == {
        "alertname": "LLMLatencyP95High",
        "job": delivered.chat_job,
        "severity": "warning",
    }
    assert sorted(a["labels"]["gen_ai_request_model"] for a in payload["alerts"]) == [
        "gpt-4o",
        "gpt-4o-mini",
    ]


def test_notifications_panel_shows_each_notification_and_its_receiver(
    stack: NativeStack, delivered: Delivered
) -> None:
    """Verify the notification panel reads status, alert, service, severity, receiver, summary."""

    def shown() -> None:
        lines = [r["_msg"] for r in logsql(stack, logs_queries()["Alert notifications"]["expr"])]
        assert (
            f"firing LLMErrorRateHigh {delivered.page_job} (critical, to default):"
            " LLM calls are failing."
        ) in lines
        assert "firing Watchdog  (none, to default): The alerting pipeline is working." in lines

    poll_until(shown, "the error alert and the Watchdog in the notifications panel", timeout=60)
