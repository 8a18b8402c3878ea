"""The shipped rule files, checked and unit-tested by the real promtool.

prometheus/tests/*.test.yaml mirror prometheus/rules/*.yaml. Beyond running them,
each hardening guard in the rules is removed in turn from a copy, and the test
group that guard exists for must then fail: a quiet alert in a test proves
nothing unless the guard is what keeps it quiet.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

RULES = ROOT / "prometheus" / "rules"
PROMTOOL_TESTS = ROOT / "prometheus" / "tests"
RUNBOOKS = ROOT / "docs" / "runbooks"
RULE_FILES = sorted(RULES.glob("*.yaml"))
TEST_FILES = sorted(PROMTOOL_TESTS.glob("*.test.yaml"))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules_of(kind: str) -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for g in load(path)["groups"]
        for rule in g["rules"]
        if kind in rule
    ]


def promtool(bins: dict[str, Path], *args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(bins["promtool"]), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_rule_files_pass_promtool_check_with_every_lint(bins: dict[str, Path]) -> None:
    """Verify that promtool checks the rule files clean, lints fatal, and counts every rule."""
    output = promtool(bins, "check", "rules", "--lint=all", "--lint-fatal", *RULE_FILES)
    assert re.findall(r"SUCCESS: (\d+) rules found", output) == ["3", "8", "1"]


def test_promtool_unit_tests_pass(bins: dict[str, Path]) -> None:
    """Verify that every promtool unit test file passes against the shipped rules."""
    output = promtool(bins, "test", "rules", *TEST_FILES)
    assert output.count("SUCCESS") == len(TEST_FILES) == 3


def test_each_rule_file_has_a_mirroring_test_file() -> None:
    """Verify that prometheus/tests holds NAME.test.yaml for each rules/NAME.yaml, and loads it."""
    assert [p.name.removesuffix(".test.yaml") for p in TEST_FILES] == [p.stem for p in RULE_FILES]
    for path in TEST_FILES:
        assert f"../rules/{path.name.removesuffix('.test.yaml')}.yaml" in load(path)["rule_files"]


def test_every_recording_rule_is_checked_for_a_value() -> None:
    """Verify that each recording rule appears in a promql_expr_test with expected samples."""
    checked = " ".join(
        case["expr"]
        for path in TEST_FILES
        for group in load(path)["tests"]
        for case in group.get("promql_expr_test", [])
        if case["exp_samples"]
    )
    missing = [r["record"] for r in rules_of("record") if r["record"] not in checked]
    assert missing == []


def duration_s(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", text))


def test_each_alert_is_tested_quiet_then_firing_with_labels_and_annotations() -> None:
    """Verify that each alert is quiet just before it fires with all its labels and annotations."""
    for rule in rules_of("alert"):
        name = rule["alert"]
        just_in_time = False
        for path in TEST_FILES:
            for group in load(path)["tests"]:
                cases = [c for c in group.get("alert_rule_test", []) if c["alertname"] == name]
                quiet = [duration_s(c["eval_time"]) for c in cases if not c.get("exp_alerts")]
                for case in (c for c in cases if c.get("exp_alerts")):
                    for alert in case["exp_alerts"]:
                        assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]
                        assert set(alert["exp_annotations"]) == set(rule["annotations"])
                    fire_at = duration_s(case["eval_time"])
                    # Quiet at most 30 s (two evaluations) before it fires.
                    just_in_time |= any(fire_at - 30 <= t < fire_at for t in quiet)
        assert just_in_time or "for" not in rule, f"{name}: never checked quiet just before firing"


ALERT_NAME = re.compile(r"^LLM[A-Z][A-Za-z0-9]+$")


def test_alerts_follow_the_naming_severity_and_annotation_conventions() -> None:
    """Verify LLM PascalCase names, severity, static summary, templated description, runbook."""
    alerts = rules_of("alert")
    assert sorted(r["alert"] for r in alerts) == [
        "LLMErrorRateHigh",
        "LLMLatencyP95High",
        "LLMSpendRateHigh",
        "Watchdog",
    ]
    for rule in alerts:
        name, annotations = rule["alert"], rule["annotations"]
        assert name == "Watchdog" or ALERT_NAME.match(name)
        assert rule["labels"]["severity"] in {"critical", "warning", "none"}
        assert "{{" not in annotations["summary"], name
        assert name == "Watchdog" or "{{ $value" in annotations["description"], name
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md"


@pytest.mark.parametrize("name", [r["alert"] for r in rules_of("alert")])
def test_each_alert_has_a_runbook_with_the_four_sections(name: str) -> None:
    """Verify that docs/runbooks/<alert>.md exists with Meaning, Impact, Diagnosis, Mitigation."""
    text = (RUNBOOKS / f"{name}.md").read_text()
    assert text.startswith(f"# {name}\n")
    assert re.findall(r"^## (\w+)", text, flags=re.MULTILINE) == [
        "Meaning",
        "Impact",
        "Diagnosis",
        "Mitigation",
    ]


# (rule file, text removed or replaced, replacement, the test group that must then fail)
GUARDS = [
    pytest.param(
        "llm-alerts.yaml",
        "          and on (job)\n          job:llm_calls:increase5m >= 100\n        for: 10m",
        "        for: 10m",
        "LLMErrorRateHigh stays quiet on a handful of calls even when half of them fail",
        id="error-volume-floor",
    ),
    pytest.param(
        "llm-recording.yaml",
        "            or\n              0 * sum by (job) (rate(llm_calls_total[5m]))\n",
        "",
        "LLMErrorRateHigh reads a service without any error series as 0% and stays quiet",
        id="error-ratio-zero-without-error-series",
    ),
    pytest.param(
        "llm-recording.yaml",
        "          and on (job, gen_ai_request_model)\n"
        "          sum by (job, gen_ai_request_model) (increase(llm_duration_seconds_count[5m]))"
        " >= 100\n",
        "",
        "LLMLatencyP95High stays quiet on a handful of calls (20 per 5 minutes) that get slow",
        id="latency-volume-floor",
    ),
    pytest.param(
        "llm-recording.yaml",
        "          and on (job, gen_ai_request_model)\n"
        "          count_over_time(job_model:llm_duration_seconds:p95_5m[1h]) >= 120\n",
        "",
        "LLMLatencyP95High stays quiet for a model seen for only 10 minutes before it slows down",
        id="latency-baseline-history",
    ),
    pytest.param(
        "llm-recording.yaml",
        "quantile_over_time(0.5, job_model:llm_duration_seconds:p95_5m[1h])",
        "histogram_quantile(0.95, sum by (job, gen_ai_request_model, le)"
        " (rate(llm_duration_seconds_bucket[1h])))",
        "LLMLatencyP95High fires 5 minutes after p95 quadruples against a 40-minute baseline",
        id="latency-baseline-is-a-median-not-the-hour-p95",
    ),
    pytest.param(
        "llm-alerts.yaml",
        "          and on (job)\n          job:llm_calls:increase5m >= 100\n        for: 5m",
        "        for: 5m",
        "LLMSpendRateHigh stays quiet when a handful of calls (20 per 5 minutes) carries a spike",
        id="spend-volume-floor",
    ),
    pytest.param(
        "llm-recording.yaml",
        "          and on (job)\n"
        "          min_over_time(job:llm_calls:increase5m[1h] offset 10m) >= 100\n",
        "",
        "LLMSpendRateHigh stays quiet through the first hour of traffic after a quiet night",
        id="spend-baseline-busy-hour",
    ),
    pytest.param(
        "llm-recording.yaml",
        "          and on (job)\n          count by (job) (llm_cost_usd_total offset 70m)\n",
        "",
        "LLMSpendRateHigh stays quiet while a busy service's cost series are younger than"
        " 70 minutes",
        id="spend-baseline-coverage",
    ),
    pytest.param(
        "llm-recording.yaml",
        "rate(llm_cost_usd_total[1h] offset 10m)",
        "rate(llm_cost_usd_total[1h])",
        "LLMSpendRateHigh fires 5 minutes after spend jumps to 4 times a busy hour's average",
        id="spend-baseline-offset",
    ),
]


def run_group(bins: dict[str, Path], root: Path, group: str) -> subprocess.CompletedProcess[str]:
    """Run one named test group alone, against the rule files under ``root/rules``."""
    (source,) = [p for p in TEST_FILES if any(g["name"] == group for g in load(p)["tests"])]
    single = load(source)
    single["tests"] = [g for g in single["tests"] if g["name"] == group]
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "single.test.yaml").write_text(yaml.safe_dump(single, sort_keys=False))
    return subprocess.run(
        [str(bins["promtool"]), "test", "rules", "single.test.yaml"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root / "tests",
    )


@pytest.mark.parametrize(("rule_file", "guard", "replacement", "group"), GUARDS)
def test_each_guard_is_what_its_test_group_depends_on(
    bins: dict[str, Path], tmp_path: Path, rule_file: str, guard: str, replacement: str, group: str
) -> None:
    """Verify that a test group passes on the shipped rules and fails once its guard is removed."""
    shipped, mutated = tmp_path / "shipped", tmp_path / "mutated"
    for root in (shipped, mutated):
        (root / "rules").mkdir(parents=True)
    for path in RULE_FILES:
        text = path.read_text()
        (shipped / "rules" / path.name).write_text(text)
        if path.name == rule_file:
            assert text.count(guard) == 1, f"guard not found once in {rule_file}"
            text = text.replace(guard, replacement)
        (mutated / "rules" / path.name).write_text(text)
    passing = run_group(bins, shipped, group)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    failing = run_group(bins, mutated, group)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "FAILED" in failing.stdout + failing.stderr
