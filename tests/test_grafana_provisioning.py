"""Static checks of Grafana's provisioning: datasources, their cross-links, dashboards.

Grafana itself cannot run here; the panel queries run against the real backends in
the stack tests. These checks catch what a static reading can: unknown uids,
undefined variables, labels the collector never produces, broken mounts.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "grafana"
DATASOURCES_FILE = GRAFANA / "provisioning/datasources/datasources.yaml"
DASHBOARD_PROVIDERS_FILE = GRAFANA / "provisioning/dashboards/dashboards.yaml"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))

EXPECTED_TYPES = {
    "prometheus": "prometheus",
    "jaeger": "jaeger",
    "victorialogs": "victoriametrics-logs-datasource",
}

FILTERS = 'job=~"$service", gen_ai_request_model=~"$model", llmtel_endpoint=~"$endpoint"'
REQUEST_RATE = (
    f"sum by (llmtel_endpoint) (rate(llm_calls_total{{{FILTERS}}}[$__rate_interval])) * 60"
)
ERRORS_BY_OUTCOME = (
    "sum by (llmtel_outcome) "
    f'(rate(llm_calls_total{{{FILTERS}, llmtel_outcome!="ok"}}[$__rate_interval])) * 60'
)
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yaml"))

# $name, ${name}, ${name:format}, [[name]]
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


DATASOURCES: list[dict[str, Any]] = load_yaml(DATASOURCES_FILE)["datasources"]
BY_UID = {ds["uid"]: ds for ds in DATASOURCES}
COMPOSE = load_yaml(ROOT / "docker-compose.yml")["services"]


def all_values(node: Any, key: str) -> list[Any]:
    """Every value stored under `key`, at any depth."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found += all_values(v, key)
    elif isinstance(node, list):
        for item in node:
            found += all_values(item, key)
    return found


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def variables_used(text: str) -> set[str]:
    return {next(group for group in m.groups() if group) for m in VARIABLE_RE.finditer(text)}


def grafana_mounts() -> dict[str, str]:
    """Container path -> repo path for Grafana's bind mounts."""
    mounts = {}
    for volume in COMPOSE["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = source
    return mounts


def repo_path_in_grafana(container_path: str) -> Path | None:
    inside = PurePosixPath(container_path)
    for target, source in grafana_mounts().items():
        if inside == PurePosixPath(target) or PurePosixPath(target) in inside.parents:
            return ROOT / source / inside.relative_to(target)
    return None


@pytest.fixture(params=DASHBOARD_FILES, ids=lambda path: path.name)
def dashboard(request) -> dict[str, Any]:
    return json.loads(request.param.read_text())


# -- datasources ---------------------------------------------------------------------


def test_datasource_uids_and_types_are_exactly_the_three_backends():
    """Verify that the datasources are prometheus, jaeger and victorialogs of the right types."""
    assert {ds["uid"]: ds["type"] for ds in DATASOURCES} == EXPECTED_TYPES
    assert [ds["uid"] for ds in DATASOURCES if ds.get("isDefault")] == ["prometheus"]


def test_datasource_urls_point_at_compose_services_and_their_ports():
    """Verify that each datasource URL names a compose service and the port it serves."""
    assert {uid: ds["url"] for uid, ds in BY_UID.items()} == {
        "prometheus": "http://prometheus:9090",
        "jaeger": "http://jaeger:16686",
        "victorialogs": "http://victorialogs:9428",
    }
    for ds in DATASOURCES:
        host = ds["url"].split("//")[1].split(":")[0]
        assert host in COMPOSE, f"{ds['uid']}: {host} is not a compose service"


def test_victorialogs_datasource_type_is_the_plugin_grafana_installs():
    """Verify that the VictoriaLogs datasource type is the plugin id .env pins for Grafana."""
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert BY_UID["victorialogs"]["type"] == env["VICTORIALOGS_GRAFANA_PLUGIN"]


def test_every_cross_link_references_an_existing_uid():
    """Verify that every datasourceUid in any datasource's settings is a provisioned uid."""
    linked = [
        uid for ds in DATASOURCES for uid in all_values(ds.get("jsonData", {}), "datasourceUid")
    ]
    assert linked, "no cross-links at all"
    assert set(linked) <= set(BY_UID)


def test_prometheus_exemplars_link_to_jaeger_by_trace_id():
    """Verify that Prometheus exemplars' trace_id label opens the trace in Jaeger."""
    destinations = BY_UID["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [(d["name"], d["datasourceUid"]) for d in destinations] == [("trace_id", "jaeger")]


def test_jaeger_traces_link_to_victorialogs_by_trace_id():
    """Verify that a Jaeger span opens VictoriaLogs filtered on its trace id."""
    links = BY_UID["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert links["datasourceUid"] == "victorialogs"
    assert links["customQuery"] is True
    assert links["query"] == 'trace_id:="$${__trace.traceId}"'


def test_victorialogs_trace_id_field_links_to_jaeger():
    """Verify that VictoriaLogs turns the trace_id field into a link to the Jaeger trace."""
    fields = BY_UID["victorialogs"]["jsonData"]["derivedFields"]
    assert [
        (f["matcherType"], f["matcherRegex"], f["datasourceUid"], f["url"]) for f in fields
    ] == [("label", "trace_id", "jaeger", "$${__value.raw}")]


def string_values(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in string_values(value)]
    if isinstance(node, list):
        return [s for item in node for s in string_values(item)]
    return [node] if isinstance(node, str) else []


def test_grafana_link_variables_are_escaped_from_env_expansion():
    """Verify that every ${__...} or $__x value is written with $$, or Grafana empties it."""
    values = string_values(load_yaml(DATASOURCES_FILE))
    assert [v for v in values if re.search(r"(?<!\$)\$(\{__|__\w)", v)] == []
    assert [v for v in values if "$${__" in v], "no escaped link variable found at all"


def test_datasource_provisioning_is_mounted_where_grafana_reads_it():
    """Verify that compose mounts the datasources folder at Grafana's provisioning path."""
    assert grafana_mounts()["/etc/grafana/provisioning/datasources"] == (
        "./grafana/provisioning/datasources"
    )


# -- dashboards provider -------------------------------------------------------------


def test_dashboard_provider_path_is_the_compose_mount_of_the_dashboards():
    """Verify that the file provider reads the folder compose mounts grafana/dashboards at."""
    providers = load_yaml(DASHBOARD_PROVIDERS_FILE)["providers"]
    assert len(providers) == 1
    assert providers[0]["type"] == "file"
    path = providers[0]["options"]["path"]
    assert grafana_mounts()[path] == "./grafana/dashboards"
    assert grafana_mounts()["/etc/grafana/provisioning/dashboards"] == (
        "./grafana/provisioning/dashboards"
    )


def test_home_dashboard_path_resolves_to_a_repo_dashboard():
    """Verify that Grafana's home dashboard path is a dashboard file of the repo."""
    home = COMPOSE["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert repo_path_in_grafana(home) == GRAFANA / "dashboards/llm-overview.json"


# -- dashboards ----------------------------------------------------------------------


def targets(dashboard: dict[str, Any], uid: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query, optionally only those of one datasource uid."""
    return [
        (panel["title"], target)
        for panel in panels(dashboard)
        for target in panel["targets"]
        if uid is None or target["datasource"]["uid"] == uid
    ]


def dashboard_by_uid() -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in (json.loads(p.read_text()) for p in DASHBOARD_FILES)}


def test_there_are_dashboards_with_unique_uids():
    """Verify that the dashboards folder holds the two kebab-case dashboards with distinct uids."""
    assert [p.name for p in DASHBOARD_FILES] == ["llm-calls.json", "llm-overview.json"]
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARD_FILES]
    assert uids == ["llm-calls", "llm-overview"]
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.json", p.name) for p in DASHBOARD_FILES)


def test_every_panel_has_a_known_datasource_and_a_query(dashboard):
    """Verify that each panel names a provisioned datasource by uid and type and has a query."""
    assert panels(dashboard)
    for panel in panels(dashboard):
        source = panel.get("datasource")
        assert isinstance(source, dict), f"{panel['title']}: datasource must be {{type, uid}}"
        assert EXPECTED_TYPES.get(source.get("uid")) == source.get("type"), panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']}: no query"
        for target in targets:
            assert target.get("expr", "").strip(), f"{panel['title']}: empty query"
            assert target.get("datasource", source) == source, panel["title"]


def test_panel_ids_and_target_ref_ids_are_unique(dashboard):
    """Verify that panel ids (rows included) are unique in a dashboard and refIds in a panel."""
    ids = [panel["id"] for panel in dashboard["panels"]] + [
        nested["id"] for row in dashboard["panels"] for nested in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def link_urls(dashboard: dict[str, Any]) -> list[str]:
    """Every link URL: dashboard links, panel links, data links in field configs."""
    urls = [link["url"] for link in dashboard.get("links", [])]
    for panel in panels(dashboard):
        urls += [link["url"] for link in panel.get("links", [])]
        for links in all_values(panel.get("fieldConfig", {}), "links"):
            urls += [link["url"] for link in links if link.get("url")]
    return urls


def test_every_variable_in_a_query_or_link_is_defined_or_builtin(dashboard):
    """Verify that each $variable of a query, variable query or link is defined or a built-in."""
    defined = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    texts = [t["expr"] for _, t in targets(dashboard)] + link_urls(dashboard)
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        texts.append(query["query"] if isinstance(query, dict) else str(query or ""))
    for text in texts:
        undefined = {v for v in variables_used(text) if not v.startswith("__")} - defined
        assert undefined == set(), f"{text}: {undefined}"


def test_variable_parser_sees_every_syntax():
    """Verify that the variable check recognises $x, ${x}, ${x:fmt} and [[x]], built-ins too."""
    assert variables_used('a{j=~"$service"} ${model} ${env:csv} [[old]] [$__rate_interval]') == {
        "service",
        "model",
        "env",
        "old",
        "__rate_interval",
    }


def test_dashboards_share_the_service_model_and_endpoint_variables():
    """Verify that both dashboards define service, model and endpoint from llm_calls_total."""
    for dashboard in dashboard_by_uid().values():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert {"service", "model", "endpoint"} <= set(variables)
        assert [variables[n]["query"]["query"] for n in ("service", "model", "endpoint")] == [
            "label_values(llm_calls_total, job)",
            'label_values(llm_calls_total{job=~"$service"}, gen_ai_request_model)',
            'label_values(llm_calls_total{job=~"$service"}, llmtel_endpoint)',
        ]
        for name in ("service", "model", "endpoint"):
            assert variables[name]["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert (variables[name]["includeAll"], variables[name]["allValue"]) == (True, ".*")


def test_outcome_variable_lists_exactly_the_emitters_outcomes():
    """Verify that the LLM calls outcome filter offers every llmtel.Outcome value, no other."""
    from typing import get_args

    import llmtel

    (outcome,) = [
        v for v in dashboard_by_uid()["llm-calls"]["templating"]["list"] if v["name"] == "outcome"
    ]
    assert outcome["query"].split(",") == list(get_args(llmtel.Outcome))
    assert [o["value"] for o in outcome["options"]] == ["$__all", *get_args(llmtel.Outcome)]


def test_logsql_queries_interpolate_variables_as_escaped_regexes():
    """Verify that LogsQL queries use ${x:regex} in backquoted regex filters, never a bare $x."""
    for title, target in targets(dashboard_by_uid()["llm-calls"], "victorialogs"):
        expr = target["expr"]
        for match in VARIABLE_RE.finditer(expr):
            assert re.fullmatch(r"\$\{\w+:regex\}", match.group(0)), f"{title}: {match.group(0)}"
            assert re.search(r"`[^`]*" + re.escape(match.group(0)) + r"[^`]*`", expr), title


def test_llm_overview_has_the_golden_signal_panels():
    """Verify that the LLM overview carries requests by endpoint, errors by outcome, p50/p95/p99."""
    dashboard = dashboard_by_uid()["llm-overview"]
    assert dashboard["title"] == "LLM overview"
    exprs = {title: [] for title, _ in targets(dashboard)}
    for title, target in targets(dashboard):
        exprs[title].append(target["expr"])
    assert exprs["Requests per minute by endpoint"] == [REQUEST_RATE]
    assert exprs["Errors and refusals per minute by outcome"] == [ERRORS_BY_OUTCOME]
    assert exprs["Latency p50, p95, p99"] == [
        f"histogram_quantile({q}, sum by (le) "
        f"(rate(llm_duration_seconds_bucket{{{FILTERS}}}[$__rate_interval])))"
        for q in ("0.5", "0.95", "0.99")
    ]
    assert {"Spend per minute (USD) by model", "Tokens per minute by type"} <= set(exprs)
    every = [expr for group in exprs.values() for expr in group]
    assert not [e for e in every if "avg(" in e or "_sum" in e], "an average"


def test_llm_overview_has_the_eval_pass_rate_by_rubric():
    """Verify the pass-rate panel: passes over passes and fails per rubric, by the model filter."""
    by_title = {p["title"]: p for p in panels(dashboard_by_uid()["llm-overview"])}
    (target,) = by_title["Eval pass rate by rubric"]["targets"]
    verdicts = 'llmtel_eval_results_total{gen_ai_request_model=~"$model", '
    assert target["expr"] == (
        f"sum by (gen_ai_evaluation_name) (increase({verdicts}"
        'gen_ai_evaluation_score_label="pass"}[1h]))\n/\n'
        f"sum by (gen_ai_evaluation_name) (increase({verdicts}"
        'gen_ai_evaluation_score_label=~"pass|fail"}[1h]))'
    )
    assert by_title["Eval pass rate by rubric"]["fieldConfig"]["defaults"]["unit"] == "percentunit"


def alert_expr(name: str) -> str:
    (rule,) = [
        r
        for path in RULE_FILES
        for g in load_yaml(path)["groups"]
        for r in g["rules"]
        if r.get("alert") == name
    ]
    return rule["expr"]


def test_alert_threshold_panels_show_the_alerts_own_numbers():
    """Verify that the threshold panels plot the recorded series and factors the alerts use."""
    dashboard = dashboard_by_uid()["llm-overview"]
    by_title = {panel["title"]: panel for panel in panels(dashboard)}
    error_panel = by_title["Error ratio against the alert threshold"]
    steps = error_panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert re.search(
        r"job:llm_calls_errors:ratio_rate5m > ([\d.]+)", alert_expr("LLMErrorRateHigh")
    )
    threshold = re.search(r"ratio_rate5m > ([\d.]+)", alert_expr("LLMErrorRateHigh")).group(1)
    assert steps[-1] == {"color": "red", "value": float(threshold)}
    latency = [t["expr"] for t in by_title["p95 latency against the alert threshold"]["targets"]]
    assert "> 2 * job_model:llm_duration_seconds:p95_5m_median1h" in alert_expr("LLMLatencyP95High")
    assert latency[1].startswith("2 * job_model:llm_duration_seconds:p95_5m_median1h{")
    spend = [t["expr"] for t in by_title["Spend per hour against the alert threshold"]["targets"]]
    assert "> 3 * 3600 * job:llm_cost_usd:rate1h_offset10m" in alert_expr("LLMSpendRateHigh")
    assert spend == [
        'job:llm_cost_usd:rate5m{job=~"$service"} * 3600',
        '3 * 3600 * job:llm_cost_usd:rate1h_offset10m{job=~"$service"}',
    ]


def test_links_lead_to_existing_dashboards_variables_and_datasources(dashboard):
    """Verify that links open a known dashboard with its variables, or Explore on a known uid."""
    by_uid = dashboard_by_uid()
    urls = link_urls(dashboard)
    assert urls, "no links"
    for url in urls:
        path, _, query = url.partition("?")
        if path.startswith("/d/"):
            uid = path.split("/")[2]
            assert uid in by_uid, url
            target_vars = {v["name"] for v in by_uid[uid]["templating"]["list"]}
            params = re.findall(r"var-(\w+)=", query) + re.findall(r"\$\{(\w+):queryparam\}", query)
            assert set(params) <= target_vars, url
        else:
            assert path == "/explore", url
            panes = json.loads(urllib.parse.unquote(query.split("panes=", 1)[1]))
            for pane in panes.values():
                assert pane["datasource"] in BY_UID, url
                assert {q["datasource"]["uid"] for q in pane["queries"]} <= set(BY_UID), url


def test_overview_links_to_traces_and_logs():
    """Verify that the overview links to the LLM calls dashboard and to Jaeger from its panels."""
    urls = link_urls(dashboard_by_uid()["llm-overview"])
    assert any(u.startswith("/d/llm-calls/") and "var-outcome=" in u for u in urls)
    assert any(u.startswith("/explore") and "jaeger" in u for u in urls)
    by_title = {p["title"]: p for p in panels(dashboard_by_uid()["llm-overview"])}
    assert [t["exemplar"] for t in by_title["Latency p95 by model"]["targets"]] == [True]


def test_recent_calls_trace_ids_link_to_jaeger():
    """Verify that the recent-calls panel keeps trace_id, which the datasource links to Jaeger."""
    by_title = {p["title"]: p for p in panels(dashboard_by_uid()["llm-calls"])}
    panel = by_title["Recent calls"]
    assert panel["type"] == "logs"
    assert panel["options"]["enableLogDetails"] is True
    expr = panel["targets"][0]["expr"]
    assert "| fields" not in expr  # every field, trace_id included, stays in the details
    fields = BY_UID["victorialogs"]["jsonData"]["derivedFields"]
    assert [(f["matcherRegex"], f["datasourceUid"]) for f in fields] == [("trace_id", "jaeger")]


def test_queries_use_only_metrics_and_labels_the_pipeline_produces(dashboard):
    """Verify that PromQL names and labels follow from the collector's connectors and the rules."""
    collector = load_yaml(ROOT / "collector-config/otelcol-config.yaml")
    span_metrics = collector["connectors"]["span_metrics"]
    namespace = span_metrics["namespace"]
    assert span_metrics["histogram"]["unit"] == "s"
    metrics = {f"{namespace}_calls_total"} | {
        f"{namespace}_duration_seconds_{suffix}" for suffix in ("bucket", "sum", "count")
    }
    labels = {d["name"].replace(".", "_") for d in span_metrics["dimensions"]}
    # signal_to_metrics: llm.tokens -> llm_tokens_total, llm.cost.usd -> llm_cost_usd_total.
    for definition in collector["connectors"]["signal_to_metrics"]["spans"]:
        metrics.add(definition["name"].replace(".", "_") + "_total")
        labels |= {a["key"].replace(".", "_") for a in definition.get("attributes", [])}
    recorded = {
        r["record"]
        for path in RULE_FILES
        for g in load_yaml(path)["groups"]
        for r in g["rules"]
        if "record" in r
    }
    # The eval worker's verdict counter and the labels it sets (llmtel.evals._telemetry).
    from llmtel.evals import _telemetry as evals

    metrics.add(evals.RESULTS_METRIC.replace(".", "_") + "_total")
    labels |= {
        key.replace(".", "_")
        for key in (
            evals.EVALUATION_NAME,
            evals.SCORE_LABEL,
            evals.REQUEST_MODEL,
            evals.PROMPT_VERSION,
        )
    }
    # The collector's own telemetry, from the scrape job prometheus.yaml names for it
    # (whether these names exist is checked live, in test_collector_outage).
    scrape = load_yaml(ROOT / "prometheus/prometheus.yaml")["scrape_configs"]
    assert "otel-collector" in {job["job_name"] for job in scrape}
    metrics |= {"otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"}
    labels.add("exporter")
    # What Prometheus' OTLP receiver adds (job, instance) and histogram_quantile uses.
    labels |= {"job", "instance", "le", "status_code"}
    for title, target in targets(dashboard, "prometheus"):
        expr = target["expr"]
        used_metrics = set(
            re.findall(
                r"\b([a-z_]+:[a-z0-9_]+:[a-z0-9_]+|llm_\w+|llmtel_eval_\w+|otelcol_\w+)\b", expr
            )
        )
        assert used_metrics, f"{title}: no llmtel series in {expr}"
        assert used_metrics <= metrics | recorded, f"{title}: {used_metrics - metrics - recorded}"
        used_labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            used_labels |= {label.strip() for label in clause.split(",") if label.strip()}
        assert used_labels <= labels, f"{title}: {used_labels - labels}"


# -- Grafana's own model -------------------------------------------------------------


def test_dashboards_parse_with_grafanas_typed_models(dashboard):
    """Verify that grafana-foundation-sdk decodes each dashboard and a round trip loses no key."""
    sdk = pytest.importorskip(
        "grafana_foundation_sdk",
        reason="grafana-foundation-sdk is not installed (it is in emitter's dev extra)",
    )
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models import dashboard as dashboard_model
    from grafana_foundation_sdk.models import prometheus

    assert sdk is not None
    register_default_plugins()
    parsed = dashboard_model.Dashboard.from_json(dashboard)
    for panel in parsed.panels or []:
        if isinstance(panel, dashboard_model.RowPanel):
            continue
        uid = panel.datasource.uid if panel.datasource else None
        if uid == "prometheus":
            assert all(isinstance(t, prometheus.Dataquery) for t in panel.targets), panel.title
        # A registered panel type decodes its options into that plugin's class.
        assert not isinstance(panel.options, dict), f"{panel.title}: unknown panel type"
    round_trip = json.loads(json.dumps(parsed, cls=JSONEncoder))
    assert lost_on_round_trip(dashboard, round_trip) == []


def lost_on_round_trip(original: Any, decoded: Any, path: str = "") -> list[str]:
    """Keys the typed model dropped (unknown to Grafana's schema) or values it changed."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [f"{path}: became {type(decoded).__name__}"]
        lost = []
        for key, value in original.items():
            if key not in decoded:
                lost.append(f"{path}/{key}")
            else:
                lost += lost_on_round_trip(value, decoded[key], f"{path}/{key}")
        return lost
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(original) != len(decoded):
            return [f"{path}: list changed"]
        return [
            loss
            for i, (a, b) in enumerate(zip(original, decoded, strict=True))
            for loss in lost_on_round_trip(a, b, f"{path}[{i}]")
        ]
    return [] if original == decoded else [f"{path}: {original!r} became {decoded!r}"]


def test_round_trip_check_reports_dropped_keys():
    """Verify that the round-trip comparison reports a dropped key and a changed value."""
    assert lost_on_round_trip({"a": 1, "b": {"c": [1, 2]}}, {"a": 2, "b": {"c": [1, 2]}}) == [
        "/a: 1 became 2"
    ]
    assert lost_on_round_trip({"panels": [{"fieldconfig": {}}]}, {"panels": [{}]}) == [
        "/panels[0]/fieldconfig"
    ]
