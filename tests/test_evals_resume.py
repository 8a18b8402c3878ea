"""The eval worker killed mid-run (SIGKILL) and restarted judges every call exactly once.

Ten known calls reach a collector sampling 100% into its eval queue (five fail every
rubric, five pass every rubric: 30 verdicts, 15 of each). ``llmtel evals run`` judges
them with a demo judge that takes 1 s per verdict. Once the judge has received the
eighth request (seven verdicts given, stored and sent; the eighth in flight, halfway
through a call's three rubrics), the worker gets SIGKILL. ``llmtel evals once`` on the
same state (a judge without the delay) then finishes. The judge server counts what it
answered: each of the 30 (call, rubric) verdicts was delivered exactly once, and the one
request in flight at the kill was never delivered and was asked again. The state holds
30 verdicts, VictoriaLogs exactly one result record per call and rubric, and Prometheus
sums both processes' counters to exactly 15 pass and 15 fail.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from stack import NativeStack
from test_evals_stack_support import (
    evaluation_records,
    poll_until,
    prometheus_vector,
    run_worker,
    sampling_collector,
    send_app_calls,
    unique,
    worker_command,
    worker_config,
    worker_env,
)

from llmtel.demo.server import DemoServer
from llmtel.evals import Store, Summary
from llmtel.evals._cli import format_summary

pytestmark = pytest.mark.stack

CALLS = [
    ("gpt-4o-mini", f"Where is parcel {i}?" + (" [demo-verdict:fail]" if i % 2 else ""), False)
    for i in range(10)
]
KILL_AFTER = 7  # verdicts given before the kill; the eighth is in flight
SLOW_JUDGE_MS = 1000  # the first worker's judge delay: the window in which the kill lands


def test_a_killed_worker_resumes_without_judging_twice_or_skipping(
    stack: NativeStack, bins: dict[str, Path], tmp_path: Path
) -> None:
    """Verify that after SIGKILL and a restart, each of 30 verdicts is given and sent once."""
    prompt_version = unique("resume")
    with (
        sampling_collector(stack, bins, tmp_path / "collector") as collector,
        DemoServer() as judge,
    ):
        calls = send_app_calls(collector, unique("llmtel-evals-app"), prompt_version, CALLS)
        assert len(calls) == 10
        expected = {
            (c.trace_id, c.span_id, rubric, label)
            for c in calls
            for rubric, label in c.labels.items()
        }
        assert Counter(label for *_, label in expected) == {"pass": 15, "fail": 15}
        state = tmp_path / "state"
        model = unique("judge")
        slow = worker_config(
            tmp_path / "slow.yaml", {"x-llmtel-demo-latency-ms": str(SLOW_JUDGE_MS)}
        )

        running = subprocess.Popen(
            worker_command("run", collector, judge, slow, state, model),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=worker_env(),
        )
        try:
            # The worker asks for verdict 8 only after storing and sending verdict 7.
            deadline = time.monotonic() + 120
            while judge.judge_requests_received() < KILL_AFTER + 1:
                assert running.poll() is None, running.stderr.read() if running.stderr else ""
                assert time.monotonic() < deadline, "the worker never asked for verdict 8"
                time.sleep(0.005)
            running.send_signal(signal.SIGKILL)
        finally:
            if running.poll() is None:
                running.kill()
            running.wait(timeout=30)
            if running.stderr:
                running.stderr.close()
        assert running.returncode == -signal.SIGKILL

        # The request in flight is answered to nobody, after its delay.
        def in_flight_abandoned() -> None:
            records = judge.judge_records()
            assert len(records) == KILL_AFTER + 1, f"{len(records)} records"
            assert [r.delivered for r in records] == [True] * KILL_AFTER + [False]

        poll_until(in_flight_abandoned, "the killed worker's last request", timeout=30)
        store = Store(state)
        before = {(r.trace_id, r.span_id, r.rubric, r.label) for r in store.results()}
        assert len(before) == KILL_AFTER
        assert before <= expected
        assert store.unexported() == []  # each was flushed before the next was asked for
        assert store.counts()["done"] == KILL_AFTER // 3
        store.close()

        done = run_worker(
            worker_command(
                "once", collector, judge, worker_config(tmp_path / "fast.yaml"), state, model
            )
        )
        assert done.returncode == 0, done.stderr
        # The second process finishes the interrupted call and the rest: 8 calls, 23 verdicts.
        rest = Summary()
        for _trace, _span, rubric, label in expected - before:
            rest.verdicts[(rubric, label)] += 1
        assert done.stdout.splitlines()[-1] == format_summary(rest).splitlines()[-1]
        assert f" {10 - KILL_AFTER // 3} calls judged, " in done.stdout
        assert sum(rest.verdicts.values()) == 30 - KILL_AFTER

        records = judge.judge_records()
        delivered = Counter((r.rubric, r.subject) for r in records if r.delivered)
        abandoned = [(r.rubric, r.subject) for r in records if not r.delivered]
        assert len(records) == 31
        assert len(delivered) == 30
        assert set(delivered.values()) == {1}  # no verdict asked for twice
        assert len({subject for _, subject in delivered}) == 10
        assert len(abandoned) == 1
        assert abandoned[0] in delivered  # asked again after the restart, not skipped

        store = Store(state)
        results = {(r.trace_id, r.span_id, r.rubric, r.label) for r in store.results()}
        assert results == expected
        assert store.unexported() == []
        counts = store.counts()
        assert (counts["pending"], counts["done"], counts["results"]) == (0, 10, 30)
        store.close()

        def one_record_each() -> None:
            logged = evaluation_records(stack, prompt_version)
            assert len(logged) == 30, f"{len(logged)} records"
            assert {
                (
                    r["trace_id"],
                    r["span_id"],
                    r["gen_ai.evaluation.name"],
                    r["gen_ai.evaluation.score.label"],
                )
                for r in logged
            } == expected

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
