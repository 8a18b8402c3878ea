"""The collector config's guard rails, read from the files and from the built binary.

The builder manifest lists exactly the components the config uses (compared through
`otelcol components` of the real binary), memory_limiter comes first in every
pipeline, the backend exporters queue on disk, and no id can become a label.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT

CONFIG_PATH = ROOT / "collector-config" / "otelcol-config.yaml"
MANIFEST_PATH = ROOT / "collector-config" / "builder-config.yaml"
CONFIG: dict[str, Any] = yaml.safe_load(CONFIG_PATH.read_text())
MANIFEST: dict[str, Any] = yaml.safe_load(MANIFEST_PATH.read_text())
# Shipped overlays (optional behaviour) may add extensions the base config does not run.
OVERLAY_EXTENSIONS = {
    "bearertokenauth/otlp": ROOT / "collector-config" / "auth-overlay.yaml",
}
PIPELINES: dict[str, Any] = CONFIG["service"]["pipelines"]
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
BACKEND_EXPORTERS = ("otlp_http/jaeger", "otlp_http/victorialogs", "otlp_http/prometheus")


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def used_ids() -> dict[str, set[str]]:
    """Component ids the service actually runs, by kind (connectors sit in both lists)."""
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    used["extensions"] = set(CONFIG["service"]["extensions"])
    connectors = set(CONFIG.get("connectors") or {})
    for pipeline in PIPELINES.values():
        for kind in ("receivers", "processors", "exporters"):
            for component_id in pipeline.get(kind, []):
                target = "connectors" if component_id in connectors else kind
                used[target].add(component_id)
    return used


def built_components(binary: Path) -> dict[str, dict[str, str]]:
    """KIND -> {type name: module path} of the binary, from `otelcol components`."""
    out = subprocess.run(
        [str(binary), "components"], capture_output=True, text=True, check=True
    ).stdout
    listed = yaml.safe_load(out)
    return {
        kind: {c["name"]: c["module"].split()[0] for c in listed.get(kind) or []} for kind in KINDS
    }


def test_every_defined_component_is_used_and_every_used_one_defined() -> None:
    """Verify that the config defines exactly the components its pipelines use."""
    used = used_ids()
    for kind in KINDS:
        assert set(CONFIG.get(kind) or {}) == used[kind], kind


def test_builder_manifest_lists_exactly_the_components_the_config_uses(
    bins: dict[str, Path],
) -> None:
    """Verify that the built binary's components are exactly the config's component types."""
    built = built_components(bins["otelcol"])
    used = used_ids()
    for extension, overlay in OVERLAY_EXTENSIONS.items():
        assert extension in yaml.safe_load(overlay.read_text())["extensions"], overlay
        used["extensions"].add(extension)
    for kind in KINDS:
        assert set(built[kind]) == {component_type(c) for c in used[kind]}, kind
    manifest_modules = {
        entry["gomod"].split()[0] for kind in KINDS for entry in MANIFEST.get(kind) or []
    }
    assert manifest_modules == {module for kind in KINDS for module in built[kind].values()}


def test_builder_manifest_keeps_every_module_at_the_one_release() -> None:
    """Verify that every module in the manifest is pinned to ${OTELCOL_VERSION}."""
    for kind in KINDS:
        for entry in MANIFEST.get(kind) or []:
            assert entry["gomod"].split()[1] == "v${OTELCOL_VERSION}", entry


def test_memory_limiter_is_first_in_every_pipeline() -> None:
    """Verify that every pipeline starts with memory_limiter."""
    for name, pipeline in PIPELINES.items():
        assert pipeline["processors"][0] == "memory_limiter", name


def test_redaction_runs_before_any_backend_sees_data() -> None:
    """Verify that every pipeline fed by the OTLP receiver redacts before exporting."""
    for name, pipeline in PIPELINES.items():
        if "otlp" in pipeline["receivers"]:
            assert "transform/redact" in pipeline["processors"], name
    traces = PIPELINES["traces"]["processors"]
    # Normalise, then hash user ids, then redact (a hashed id must not be masked first).
    assert traces.index("transform/genai_semconv") < traces.index("transform/pseudonymize")
    assert traces.index("transform/pseudonymize") < traces.index("transform/redact")


def test_backend_exporters_queue_on_disk_and_retry() -> None:
    """Verify that Jaeger, VictoriaLogs and Prometheus exporters have a persistent queue."""
    storage = "file_storage/queue"
    assert storage in CONFIG["service"]["extensions"]
    for name in BACKEND_EXPORTERS:
        exporter = CONFIG["exporters"][name]
        assert exporter["sending_queue"]["enabled"] is True, name
        assert exporter["sending_queue"]["storage"] == storage, name
        assert exporter["retry_on_failure"]["enabled"] is True, name
        assert exporter["retry_on_failure"]["max_elapsed_time"] == "0s", name


def test_content_never_reaches_victorialogs_by_config() -> None:
    """Verify that the only pipeline exporting to VictoriaLogs drops content records first."""
    to_victorialogs = [
        name for name, p in PIPELINES.items() if "otlp_http/victorialogs" in p["exporters"]
    ]
    assert to_victorialogs == ["logs/victorialogs"]
    assert PIPELINES["logs/victorialogs"]["processors"] == ["memory_limiter", "filter/drop_content"]
    condition = CONFIG["processors"]["filter/drop_content"]["log_conditions"][0]
    assert 'log.event_name == "llmtel.content"' in condition
    # The blob pipeline keeps exactly what the VictoriaLogs pipeline drops.
    keep = CONFIG["processors"]["filter/content_only"]["log_conditions"][0]
    assert keep == f"not ({condition})"


def test_no_id_can_become_a_label() -> None:
    """Verify that metric dimensions and VictoriaLogs stream fields hold no id attributes."""
    span_metrics = CONFIG["connectors"]["span_metrics"]
    dimensions = [d["name"] for d in span_metrics["dimensions"]]
    metric_attributes = [
        a["key"]
        for m in CONFIG["connectors"]["signal_to_metrics"]["spans"]
        for a in m["attributes"]
    ]
    for name in dimensions + metric_attributes:
        assert not re.search(r"(^|\.)(id|ids)$|user|session|conversation|response", name), name
    assert span_metrics["aggregation_cardinality_limit"].endswith(":-5000}")
    headers = CONFIG["exporters"]["otlp_http/victorialogs"]["headers"]
    assert headers == {"VL-Stream-Fields": "service.name,deployment.environment.name"}


def test_span_metrics_buckets_are_durations_up_to_minutes() -> None:
    """Verify that latency buckets carry units (a bare number is nanoseconds) and reach 5 min."""
    buckets = CONFIG["connectors"]["span_metrics"]["histogram"]["explicit"]["buckets"]
    assert all(re.fullmatch(r"\d+(ms|s|m)", str(b)) for b in buckets), buckets
    assert buckets[-1] == "5m"
    assert CONFIG["connectors"]["span_metrics"]["histogram"]["unit"] == "s"


def test_collector_data_lives_in_a_named_volume_in_compose() -> None:
    """Verify that compose keeps the queue, blob and eval-queue directories on a named volume."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    collector = compose["services"]["otel-collector"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in collector["volumes"]}
    assert mounts["/var/lib/otelcol"] in compose["volumes"]
    text = CONFIG_PATH.read_text()
    for variable in ("OTELCOL_QUEUE_DIR", "LLMTEL_BLOB_DIR", "LLMTEL_EVAL_QUEUE_DIR"):
        (default,) = set(re.findall(rf"\$\{{env:{variable}:-([^}}]+)\}}", text))
        assert default.startswith("/var/lib/otelcol/"), variable
