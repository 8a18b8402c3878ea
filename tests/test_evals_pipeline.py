"""Known calls, judged by the eval worker, land as exact pass counts and linked records.

Twelve chat calls (two models) and one failing call go through the real ``openai`` SDK
with llmtel (capture ``full``) into a collector sampling 100% into its eval queue.
``llmtel evals once`` judges them with the demo server as the judge, whose verdicts
follow markers in the prompts. Prometheus must then hold the exact verdict counts by
rubric, label, model and prompt version, VictoriaLogs one ``gen_ai.evaluation.result``
record per call and rubric on the call's trace and span, and the judge's own calls
must be counted as LLM calls labelled eval-judge.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from stack import NativeStack
from test_evals_stack_support import (
    RUBRICS,
    KnownCall,
    evaluation_records,
    poll_until,
    prometheus_vector,
    run_worker,
    sampling_collector,
    send_app_calls,
    unique,
    worker_command,
    worker_config,
)

from llmtel.demo.server import DemoServer

pytestmark = pytest.mark.stack

CALLS: list[tuple[str, str, bool]] = [
    ("gpt-4o-mini", "Summarise ticket 0 [demo-verdict:fail]", False),
    ("gpt-4o-mini", "Summarise ticket 1 [demo-verdict:grounded=na]", False),
    ("gpt-4o-mini", "Summarise ticket 2 [demo-verdict:cites_sources=fail]", False),
    ("gpt-4o-mini", "Summarise ticket 3 [demo-verdict:appropriate_refusal=fail]", False),
    *[("gpt-4o-mini", f"Summarise ticket {i}", False) for i in range(4, 8)],
    ("gpt-4o-mini", "Summarise ticket 8, which fails", True),
    ("gpt-4o", "Draft a reply to customer 0 [demo-verdict:fail]", False),
    *[("gpt-4o", f"Draft a reply to customer {i}", False) for i in range(1, 4)],
]


@dataclass
class Judged:
    """What the test sent and what the worker did."""

    prompt_version: str
    judge_model: str
    calls: list[KnownCall]
    worker: subprocess.CompletedProcess[str]
    judge: DemoServer
    command: list[str]


@pytest.fixture(scope="module")
def judged(
    stack: NativeStack, bins: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Judged]:
    """Send the calls, then run `llmtel evals once` over the eval queue, once."""
    tmp = tmp_path_factory.mktemp("evals-e2e")
    prompt_version = unique("e2e")
    judge_model = unique("judge")
    with sampling_collector(stack, bins, tmp / "collector") as collector, DemoServer() as judge:
        calls = send_app_calls(collector, unique("llmtel-evals-app"), prompt_version, CALLS)
        assert len(calls) == 12
        command = worker_command(
            "once",
            collector,
            judge,
            worker_config(tmp / "rubrics.yaml"),
            tmp / "state",
            judge_model,
        )
        done = run_worker(command)
        assert done.returncode == 0, done.stderr
        yield Judged(prompt_version, judge_model, calls, done, judge, command)


def expected_counts(calls: list[KnownCall]) -> Counter[tuple[str, str, str]]:
    """(rubric, label, model) -> number of verdicts."""
    return Counter(
        (rubric, label, call.model) for call in calls for rubric, label in call.labels.items()
    )


def test_the_worker_judges_every_call_once_and_prints_the_pass_rates(judged: Judged) -> None:
    """Verify the worker's exit 0, 12 calls judged, the failed call skipped, 36 verdicts asked."""
    assert " 12 calls judged, " in judged.worker.stdout
    assert "outcome 1" in judged.worker.stdout
    assert judged.worker.stdout.splitlines()[-1] == (
        "  pass rate  appropriate_refusal 75% (9/12)  cites_sources 75% (9/12)  grounded 82% (9/11)"
    )
    records = judged.judge.judge_records()
    assert len(records) == 36
    assert all(r.delivered for r in records)
    assert Counter((r.rubric, r.subject) for r in records).most_common(1)[0][1] == 1


def test_prometheus_holds_the_exact_verdict_counts(stack: NativeStack, judged: Judged) -> None:
    """Verify llmtel_eval_results_total by rubric, label and model for the prompt version."""
    query = (
        "sum by (gen_ai_evaluation_name, gen_ai_evaluation_score_label, gen_ai_request_model) "
        f'(llmtel_eval_results_total{{job="llmtel-evals", '
        f'llmtel_prompt_version="{judged.prompt_version}"}})'
    )
    counts = expected_counts(judged.calls)
    expected = {
        (
            ("gen_ai_evaluation_name", rubric),
            ("gen_ai_evaluation_score_label", label),
            ("gen_ai_request_model", model),
        ): float(counts[(rubric, label, model)])
        for rubric in RUBRICS
        for label in (
            ("pass", "fail", "not_applicable")
            if rubric != "appropriate_refusal"
            else ("pass", "fail")
        )
        for model in ("gpt-4o-mini", "gpt-4o")
    }
    assert sum(expected.values()) == 36
    assert (
        expected[
            (
                ("gen_ai_evaluation_name", "grounded"),
                ("gen_ai_evaluation_score_label", "pass"),
                ("gen_ai_request_model", "gpt-4o-mini"),
            )
        ]
        == 6.0
    )

    def counted() -> None:
        assert prometheus_vector(stack, query) == expected

    poll_until(counted, "exact verdict counts in Prometheus", timeout=90)


def test_the_dashboard_pass_rate_query_gives_each_rubrics_pass_rate(
    stack: NativeStack, judged: Judged
) -> None:
    """Verify the dashboard's pass-rate query: passes over passes and fails, per rubric."""
    selector = f'job="llmtel-evals", llmtel_prompt_version="{judged.prompt_version}"'
    query = (
        f"sum by (gen_ai_evaluation_name) (increase(llmtel_eval_results_total{{{selector}, "
        'gen_ai_evaluation_score_label="pass"}[10m])) / sum by (gen_ai_evaluation_name) '
        f"(increase(llmtel_eval_results_total{{{selector}, "
        'gen_ai_evaluation_score_label=~"pass|fail"}[10m]))'
    )

    def rates() -> None:
        got = {
            dict(k)["gen_ai_evaluation_name"]: v for k, v in prometheus_vector(stack, query).items()
        }
        assert got == pytest.approx(
            {"appropriate_refusal": 9 / 12, "cites_sources": 9 / 12, "grounded": 9 / 11},
            abs=0.02,
        )

    poll_until(rates, "pass rates by rubric from increase()", timeout=90)


def test_victorialogs_holds_one_linked_result_per_call_and_rubric(
    stack: NativeStack, judged: Judged
) -> None:
    """Verify one gen_ai.evaluation.result record per call and rubric, on the call's trace."""

    def all_results() -> list[dict[str, object]]:
        records = evaluation_records(stack, judged.prompt_version)
        assert len(records) == 36, f"{len(records)} records"
        return records

    records = poll_until(all_results, "36 evaluation results in VictoriaLogs", timeout=60)
    by_key = {(r["trace_id"], r["gen_ai.evaluation.name"]): r for r in records}
    assert len(by_key) == 36
    for call in judged.calls:
        for rubric, label in call.labels.items():
            record = by_key[(call.trace_id, rubric)]
            assert record["span_id"] == call.span_id
            assert record["gen_ai.evaluation.score.label"] == label
            assert record["gen_ai.request.model"] == call.model
            assert record["llmtel.prompt.version"] == judged.prompt_version
            assert record["llmtel.call.id"] == call.call_id
            assert record["service.name"] == "llmtel-evals"
            assert record["gen_ai.evaluation.explanation"].startswith("llmtel demo judge: ")
            if label != "not_applicable":
                assert float(record["gen_ai.evaluation.score.value"]) == (
                    1.0 if label == "pass" else 0.0
                )


def test_the_judge_calls_are_counted_as_eval_traffic(stack: NativeStack, judged: Judged) -> None:
    """Verify that Prometheus counts the 36 judge calls as LLM calls of endpoint eval-judge."""
    query = (
        "sum by (job, llmtel_endpoint, llmtel_outcome) "
        f'(llm_calls_total{{gen_ai_request_model="{judged.judge_model}"}})'
    )

    def counted() -> None:
        assert prometheus_vector(stack, query) == {
            (
                ("job", "llmtel-evals"),
                ("llmtel_endpoint", "eval-judge"),
                ("llmtel_outcome", "ok"),
            ): 36.0
        }

    poll_until(counted, "36 judge calls in llm_calls_total", timeout=90)


def test_a_second_once_finds_nothing_left_to_judge(judged: Judged) -> None:
    """Verify that a second `once` on the same state asks the judge nothing (still 36)."""
    again = run_worker(judged.command)
    assert again.returncode == 0, again.stderr
    assert " 0 calls judged, " in again.stdout
    assert len(judged.judge.judge_records()) == 36
