"""A typo in any config file stops `make check` and `make up` before anything starts,
naming the file and the line.

Each case copies the repo's config folders, breaks one file the way people do (a
misspelt key, an unknown component, a dangling reference, a tab, a bad expression,
broken JSON, a datasource that is not provisioned), and runs the native stack's
check: the real `otelcol validate`, `jaeger validate`, `promtool check config` and
`amtool check-config`, and the dashboard check.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, TEST_PORT_OFFSET
from stack import NativeStack, Ports, StackError

CONFIG_DIRS = ("collector-config", "prometheus", "alertmanager", "jaeger", "grafana")


@dataclass(frozen=True)
class Typo:
    """Replace the first ``old`` in ``file`` with ``new``; the error must name ``line_of``'s
    line (by default the changed line) and contain ``says``."""

    id: str
    file: str
    old: str
    new: str
    says: str
    line_of: str | None = None


TYPOS = [
    Typo(
        "collector-top-level-key",
        "collector-config/otelcol-config.yaml",
        "\nreceivers:\n",
        "\nrecievers:\n",
        "has invalid keys: recievers",
    ),
    Typo(
        "collector-unknown-component",
        "collector-config/otelcol-config.yaml",
        "\n  memory_limiter:\n",
        "\n  memory_limitr:\n",
        'unknown type: "memory_limitr"',
    ),
    Typo(
        "collector-field",
        "collector-config/otelcol-config.yaml",
        "check_interval: 1s",
        "check_intervall: 1s",
        "has invalid keys: check_intervall",
    ),
    Typo(
        "collector-dangling-reference",
        "collector-config/otelcol-config.yaml",
        "exporters: [otlp_http/jaeger,",
        "exporters: [otlp_http/jaegr,",
        'references exporter "otlp_http/jaegr" which is not configured',
    ),
    Typo(
        "collector-tab",
        "collector-config/otelcol-config.yaml",
        "\n  memory_limiter:\n",
        "\n  memory_limiter:\n\t\n",
        "found character that cannot start any token",
        line_of="\t",
    ),
    Typo(
        "jaeger-field",
        "jaeger/jaeger-config.yaml",
        "use_v2: true",
        "use_v3: true",
        "has invalid keys: use_v3",
    ),
    Typo(
        "prometheus-field",
        "prometheus/prometheus.yaml",
        "scrape_interval: 15s",
        "scrape_intervall: 15s",
        "field scrape_intervall not found",
    ),
    Typo(
        "rule-field",
        "prometheus/rules/llm-alerts.yaml",
        "for: 10m",
        "forr: 10m",
        "field forr not found in type rulefmt.Rule",
    ),
    Typo(
        "rule-expression",
        "prometheus/rules/llm-alerts.yaml",
        "ratio_rate5m > 0.02",
        "ratio_rate5m > 0.02)",
        "could not parse expression",
        # promtool names the rule's `expr:` line (then the column inside the expression).
        line_of="        expr: |\n          job:llm_calls_errors:ratio_rate5m",
    ),
    Typo(
        "alertmanager-field",
        "alertmanager/alertmanager.yaml",
        "  receiver: default\n",
        "  recevier: default\n",
        "field recevier not found",
    ),
    Typo(
        "dashboard-json",
        "grafana/dashboards/llm-overview.json",
        '"refresh": "30s",',
        '"refresh": "30s"',
        "invalid JSON: Expecting ',' delimiter",
        # The parser stops at the next key.
        line_of='  "time": {',
    ),
    Typo(
        "dashboard-datasource",
        "grafana/dashboards/llm-calls.json",
        '"uid": "victorialogs"',
        '"uid": "victorialog"',
        'datasource uid "victorialog" is not provisioned (known: jaeger, prometheus, victorialogs)',
    ),
]


def line_number(text: str, fragment: str) -> int:
    index = text.index(fragment)
    # A fragment that starts with a newline is about the line after it.
    return text.count("\n", 0, index + (fragment[0] == "\n")) + 1


def configs_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in CONFIG_DIRS:
        shutil.copytree(ROOT / name, root / name)
    return root


def stack_on(root: Path, tmp_path: Path) -> NativeStack:
    return NativeStack(
        Ports().shifted(TEST_PORT_OFFSET + 3000), tmp_path / "state", [], config_root=root
    )


def test_the_shipped_configs_pass_the_check(bins: dict[str, Path], tmp_path: Path) -> None:
    """Verify that every shipped config and dashboard passes the check the typos fail."""
    stack_on(ROOT, tmp_path).check(bins)


@pytest.mark.parametrize("typo", TYPOS, ids=[t.id for t in TYPOS])
def test_a_typo_is_named_by_file_and_line(
    bins: dict[str, Path], tmp_path: Path, typo: Typo
) -> None:
    """Verify that the check fails on the typo with FILE:LINE: and the checker's words."""
    root = configs_copy(tmp_path)
    path = root / typo.file
    text = path.read_text()
    assert text.count(typo.old) >= 1, f"{typo.file} no longer holds {typo.old!r}"
    broken = text.replace(typo.old, typo.new, 1)
    path.write_text(broken)
    expected_line = line_number(broken, typo.line_of or typo.new)

    with pytest.raises(StackError) as raised:
        stack_on(root, tmp_path).check(bins)

    errors = str(raised.value).splitlines()[1:]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{typo.file}:{expected_line}: "), errors[0]
    assert typo.says in errors[0]


def test_up_on_a_broken_config_starts_nothing(bins: dict[str, Path], tmp_path: Path) -> None:
    """Verify that `up` with one broken file raises before any service starts."""
    root = configs_copy(tmp_path)
    path = root / "alertmanager/alertmanager.yaml"
    path.write_text(path.read_text().replace("  receiver: default\n", "  recevier: default\n", 1))
    stack = stack_on(root, tmp_path)

    with pytest.raises(StackError, match=r"alertmanager/alertmanager\.yaml:\d+: "):
        stack.up(build=False)

    assert stack.status() == dict.fromkeys(stack.status(), False)
    assert not list(stack.pids_dir.glob("*.pid"))
