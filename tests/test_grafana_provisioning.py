"""Static checks of Grafana's provisioning: datasources, their cross-links, dashboards.

Grafana itself cannot run here; the panel queries run against the real backends in
the stack tests. These checks catch what a static reading can: unknown uids,
undefined variables, labels the collector never produces, broken mounts.
"""

from __future__ import annotations

import json
import re
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

REQUEST_RATE = (
    'sum by (gen_ai_request_model) (rate(llm_calls_total{job=~"$service"}[$__rate_interval])) * 60'
)
ERRORS_BY_OUTCOME = (
    "sum by (llmtel_outcome) "
    '(rate(llm_calls_total{job=~"$service", llmtel_outcome!="ok"}[$__rate_interval])) * 60'
)

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


def test_there_are_dashboards_with_unique_uids():
    """Verify that the dashboards folder holds kebab-case JSON files with distinct uids."""
    assert [p.name for p in DASHBOARD_FILES] == ["llm-overview.json"]
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARD_FILES]
    assert len(uids) == len(set(uids))
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
    """Verify that panel ids are unique in a dashboard and refIds unique in a panel."""
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_every_variable_in_a_query_is_defined_or_builtin(dashboard):
    """Verify that each $variable a query uses is in templating or a Grafana built-in ($__*)."""
    defined = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    texts = [t["expr"] for panel in panels(dashboard) for t in panel["targets"]]
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


def test_llm_overview_has_the_request_rate_and_error_panels():
    """Verify that the LLM overview carries the exact request-rate and errors-by-outcome queries."""
    dashboard = json.loads((GRAFANA / "dashboards/llm-overview.json").read_text())
    assert dashboard["uid"] == "llm-overview"
    assert dashboard["title"] == "LLM overview"
    exprs = {panel["title"]: [t["expr"] for t in panel["targets"]] for panel in panels(dashboard)}
    assert exprs["Requests per minute by model"] == [REQUEST_RATE]
    assert exprs["Errors per minute by outcome"] == [ERRORS_BY_OUTCOME]
    assert exprs["Latency p95 by model"] == [
        "histogram_quantile(0.95, sum by (le, gen_ai_request_model) "
        '(rate(llm_duration_seconds_bucket{job=~"$service"}[$__rate_interval])))'
    ]
    (service,) = dashboard["templating"]["list"]
    assert service["name"] == "service"
    assert service["query"]["query"] == "label_values(llm_calls_total, job)"
    assert service["datasource"] == {"type": "prometheus", "uid": "prometheus"}


def test_queries_use_only_metrics_and_labels_the_collector_produces(dashboard):
    """Verify that metric names and labels in queries follow from the collector's span_metrics."""
    collector = load_yaml(ROOT / "collector-config/otelcol-config.yaml")
    span_metrics = collector["connectors"]["span_metrics"]
    namespace = span_metrics["namespace"]
    assert span_metrics["histogram"]["unit"] == "s"
    metrics = {f"{namespace}_calls_total"} | {
        f"{namespace}_duration_seconds_{suffix}" for suffix in ("bucket", "sum", "count")
    }
    # span_metrics' own dimensions, plus what Prometheus' OTLP receiver and
    # histogram_quantile add.
    labels = {d["name"].replace(".", "_") for d in span_metrics["dimensions"]}
    labels |= {"job", "instance", "le", "service_name", "span_name", "span_kind", "status_code"}
    for panel in panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            used_metrics = set(re.findall(r"\b(llm_\w+)\b", expr))
            assert used_metrics, f"{panel['title']}: no llmtel metric in {expr}"
            assert used_metrics <= metrics, f"{panel['title']}: {used_metrics - metrics}"
            used_labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
            for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
                used_labels |= {label.strip() for label in clause.split(",") if label.strip()}
            assert used_labels <= labels, f"{panel['title']}: {used_labels - labels}"


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
        assert all(isinstance(t, prometheus.Dataquery) for t in panel.targets or []), panel.title
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
