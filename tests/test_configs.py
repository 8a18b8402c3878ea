"""Every config file loads in the real binary that runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT
from render import render_prometheus_config
from stack import NativeStack, Ports

COLLECTOR_CONFIG = ROOT / "collector-config" / "otelcol-config.yaml"


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)


def test_collector_config_validates(bins: dict[str, Path]) -> None:
    """Verify that `otelcol validate` accepts the shipped collector config."""
    result = run(bins["otelcol"], "validate", f"--config={COLLECTOR_CONFIG}")
    assert result.returncode == 0, result.stderr


def test_collector_builds_exactly_the_components_the_config_uses(bins: dict[str, Path]) -> None:
    """Verify that `otelcol validate` names a component the build lacks."""
    broken = COLLECTOR_CONFIG.read_text().replace(
        "  memory_limiter:\n", "  memory_limiter:\n  batch/unbuilt:\n", 1
    )
    path = ROOT / "var" / "broken-otelcol.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(broken)
    result = run(bins["otelcol"], "validate", f"--config={path}")
    assert result.returncode != 0
    assert "batch" in result.stderr


def test_prometheus_config_and_rules_load(bins: dict[str, Path], tmp_path: Path) -> None:
    """Verify that promtool accepts the natively rendered prometheus.yaml and its rules."""
    rendered = tmp_path / "prometheus.yaml"
    rendered.write_text(
        render_prometheus_config(
            (ROOT / "prometheus" / "prometheus.yaml").read_text(),
            Ports(),
            rules_dir=ROOT / "prometheus" / "rules",
        )
    )
    result = run(bins["promtool"], "check", "config", rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = sorted((ROOT / "prometheus" / "rules").glob("*.yaml"))
    assert rule_files
    for path in rule_files:
        assert f"Checking {path}\n  SUCCESS: " in result.stdout, path


def test_alertmanager_config_loads(bins: dict[str, Path]) -> None:
    """Verify that amtool accepts alertmanager.yaml."""
    result = run(bins["amtool"], "check-config", ROOT / "alertmanager" / "alertmanager.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_prometheus_render_rewrites_every_compose_address() -> None:
    """Verify that the native rendering leaves no compose hostname and points rules at the repo."""
    text = render_prometheus_config(
        (ROOT / "prometheus" / "prometheus.yaml").read_text(),
        Ports().shifted(10000),
        rules_dir=Path("/repo/prometheus/rules"),
    )
    assert '"127.0.0.1:19090"' in text
    assert '"127.0.0.1:18888"' in text
    assert "otel-collector:" not in text
    assert "- /repo/prometheus/rules/*.yaml" in text


def test_prometheus_render_refuses_an_unknown_target() -> None:
    """Verify that a target without a native address fails loudly, not scraped nowhere."""
    with pytest.raises(ValueError, match="grafana:3000"):
        render_prometheus_config('targets: ["grafana:3000"]', Ports(), rules_dir=Path("/r"))


def test_native_stack_binds_only_loopback(bins: dict[str, Path], tmp_path: Path) -> None:
    """Verify that every native listen address is 127.0.0.1."""
    stack = NativeStack(Ports(), tmp_path)
    listen_values = [
        value
        for service in stack.services(bins)
        for value in [*service.env.values(), *service.args]
        if any(key in value for key in ("Addr=", "address=", ":"))
        and not value.startswith(("http", "/", "--config", "--storage", "-storage"))
    ]
    assert listen_values, "no listen addresses found"
    for value in listen_values:
        address = value.split("=", 1)[-1]
        if address:
            assert address.startswith("127.0.0.1:"), value


def test_jaeger_config_validates(bins: dict[str, Path]) -> None:
    """Verify that `jaeger validate` accepts jaeger-config.yaml and refuses a broken copy."""
    config = ROOT / "jaeger" / "jaeger-config.yaml"
    assert run(bins["jaeger"], "validate", f"--config={config}").returncode == 0
    broken = ROOT / "var" / "broken-jaeger.yaml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text(
        config.read_text().replace("jaeger_storage_exporter:\n", "jaeger_storage_exportr:\n", 1)
    )
    result = run(bins["jaeger"], "validate", f"--config={broken}")
    assert result.returncode != 0
    assert "jaeger_storage_exportr" in result.stderr + result.stdout
