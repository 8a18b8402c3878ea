"""The eval worker killed mid-run (SIGKILL) and restarted judges every call exactly once.

Ten known calls reach a collector sampling 100% into its eval queue. ``llmtel evals run``
judges them with a demo judge that takes 400 ms per verdict; after the seventh verdict,
halfway through the eighth request, the worker gets SIGKILL. ``llmtel evals once`` on
the same state then finishes. The judge server counts what it answered: each of the
30 (call, rubric) verdicts was delivered exactly once, and the one request in flight at
the kill was never delivered (so it was asked again). VictoriaLogs holds exactly one
result record per call and rubric, and Prometheus sums both processes' counters to 30.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import poll_until
from stack import NativeStack
from test_evals_stack_support import (
    evaluation_records,
    prometheus_vector,
    run_worker,
    sampling_collector,
    send_app_calls,
    unique,
    worker_command,
    worker_config,
    worker_env,
)

from llmtel.demo import DemoConfig
from llmtel.demo.server import DemoServer
from llmtel.evals import Store

pytestmark = pytest.mark.stack

# Five calls fail every rubric, five pass every rubric.
CALLS = [
    ("gpt-4o-mini", f"Where is parcel {i}?" + (" [demo-verdict:fail]" if i % 2 else ""), False)
    for i in range(10)
]
KILL_AFTER = 7  # verdicts delivered before the kill
LATENCY_S = 0.4


def test_a_killed_worker_resumes_without_judging_twice_or_skipping(
    stack: NativeStack, tmp_path: Path
) -> None:
    """Verify that after SIGKILL and a restart, each of 30 verdicts is given and sent once."""
    prompt_version = unique("resume")
    latency_ms = int(LATENCY_S * 1000)
    judge_config = DemoConfig(latency_ms_min=latency_ms, latency_ms_max=latency_ms)
    with (
        sampling_collector(stack, tmp_path / "collector") as collector,
        DemoServer(config=judge_config) as judge,
    ):
        calls = send_app_calls(collector, unique("llmtel-evals-app"), prompt_version, CALLS)
        assert len(calls) == 10
        config = worker_config(tmp_path / "rubrics.yaml")
        state = tmp_path / "state"
        model = unique("judge")

        running = subprocess.Popen(
            worker_command("run", collector, judge, config, state, model),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=worker_env(),
        )
        try:
            deadline = time.monotonic() + 120
            while len([r for r in judge.judge_records() if r.delivered]) < KILL_AFTER:
                assert running.poll() is None, running.stderr.read() if running.stderr else ""
                assert time.monotonic() < deadline, "the worker gave no verdict"
                time.sleep(0.005)
            # The worker stores and sends verdict 7 in milliseconds, then waits 400 ms for
            # verdict 8: the kill lands in the middle of that wait.
            time.sleep(LATENCY_S / 2)
            running.send_signal(signal.SIGKILL)
        finally:
            running.wait(timeout=30)
            if running.stderr:
                running.stderr.close()
        assert running.returncode == -signal.SIGKILL

        # The request in flight is answered to nobody, after its latency.
        def in_flight_abandoned() -> None:
            records = judge.judge_records()
            assert len(records) == KILL_AFTER + 1, f"{len(records)} records"
            assert not records[-1].delivered

        poll_until(in_flight_abandoned, "the killed worker's last request", timeout=10)
        store = Store(state)
        assert store.counts()["results"] == KILL_AFTER
        store.close()

        done = run_worker(worker_command("once", collector, judge, config, state, model))
        assert done.returncode == 0, done.stderr
        assert " 10 calls judged, " not in done.stdout  # the first process judged some

        records = judge.judge_records()
        delivered = Counter((r.rubric, r.subject) for r in records if r.delivered)
        abandoned = [(r.rubric, r.subject) for r in records if not r.delivered]
        assert len(delivered) == 30
        assert set(delivered.values()) == {1}
        assert len({subject for _, subject in delivered}) == 10
        assert len(abandoned) == 1
        assert abandoned[0] in delivered  # asked again after the restart, not skipped

        store = Store(state)
        results = store.results()
        assert len(results) == 30
        assert store.unexported() == []
        counts = store.counts()
        assert (counts["pending"], counts["done"], counts["results"]) == (0, 10, 30)
        store.close()
        assert {(r.trace_id, r.rubric) for r in results} == {
            (c.trace_id, rubric) for c in calls for rubric in c.labels
        }
        assert {(r.trace_id, r.rubric, r.label) for r in results} == {
            (c.trace_id, rubric, label) for c in calls for rubric, label in c.labels.items()
        }

        def one_record_each() -> None:
            logged = evaluation_records(stack, prompt_version)
            assert len(logged) == 30, f"{len(logged)} records"
            assert Counter((r["trace_id"], r["gen_ai.evaluation.name"]) for r in logged) == (
                Counter((c.trace_id, rubric) for c in calls for rubric in c.labels)
            )

        poll_until(one_record_each, "30 distinct evaluation results in VictoriaLogs", 60)

        query = (
            "sum by (gen_ai_evaluation_score_label) (llmtel_eval_results_total"
            f'{{llmtel_prompt_version="{prompt_version}"}})'
        )

        def counted() -> None:
            assert prometheus_vector(stack, query) == {
                (("gen_ai_evaluation_score_label", "pass"),): 15.0,
                (("gen_ai_evaluation_score_label", "fail"),): 15.0,
                (("gen_ai_evaluation_score_label", "not_applicable"),): 0.0,
            }

        poll_until(counted, "both workers' verdicts summed in Prometheus", timeout=90)
