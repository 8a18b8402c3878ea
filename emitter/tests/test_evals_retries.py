"""Judge failures: retried with backoff and counted; permanent ones recorded; none fatal."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import openai
import pytest
from test_evals_support import Rig, Sink, default_config, lines_of, make_app_calls, write_queue

from llmtel.demo import DemoConfig
from llmtel.demo.server import DemoServer
from llmtel.evals import (
    Judge,
    JudgeFatal,
    JudgeSettings,
    JudgeUnavailable,
    Rubric,
    Subject,
)

PROMPTS = ["What is your refund policy?", "Where is my order?"]


@pytest.fixture
def calls_in_queue(tmp_path: Path, server: DemoServer) -> Path:
    """A queue directory holding two known calls."""
    write_queue(tmp_path / "queue", lines_of(make_app_calls(server, PROMPTS)))
    return tmp_path / "queue"


def rig_for(
    tmp_path: Path, queue: Path, judge_server: DemoServer, headers: dict[str, str], **judge: object
) -> Rig:
    """A rig on ``queue`` whose judge requests carry ``headers``."""
    return Rig(
        queue,
        tmp_path / "state",
        judge_server,
        default_config(**judge),
        Sink(),
        {"x-llmtel-demo-judge": "0", **headers},
    )


def errors(sink: Sink) -> dict[tuple[str, str], float]:
    """llmtel.eval.judge.errors by (rubric, error type)."""
    return {
        (str(dict(k)["gen_ai.evaluation.name"]), str(dict(k)["error.type"])): v
        for k, v in sink.points("llmtel.eval.judge.errors").items()
    }


def test_server_errors_are_retried_until_every_verdict_is_in(
    tmp_path: Path, calls_in_queue: Path
) -> None:
    """Verify that HTTP 500s are retried, each counted once, and each verdict given once."""
    with DemoServer(config=DemoConfig(rate_500=0.5, seed=11)) as judge_server:
        rig = rig_for(tmp_path, calls_in_queue, judge_server, {}, max_attempts=20)
        with rig.worker() as worker:
            summary = worker.once()
        failures = judge_server.counts()[("/v1/chat/completions", "500")]
        assert failures > 0
        assert sum(errors(rig.sink).values()) == failures == summary.judge_errors
        assert {error for _, error in errors(rig.sink)} == {"InternalServerError"}
        assert len(judge_server.judge_records()) == 6
        assert len(rig.sink.results()) == 6
        assert summary.pending == 0
        rig.sink.close()


def test_rate_limits_are_retried_and_counted(tmp_path: Path, calls_in_queue: Path) -> None:
    """Verify that HTTP 429s (with Retry-After) are retried and counted as RateLimitError."""
    with DemoServer(config=DemoConfig(rate_429=0.4, seed=3)) as judge_server:
        rig = rig_for(tmp_path, calls_in_queue, judge_server, {}, max_attempts=20)
        with rig.worker() as worker:
            worker.once()
        limited = judge_server.counts()[("/v1/chat/completions", "429")]
        assert limited > 0
        assert sum(v for (_, e), v in errors(rig.sink).items() if e == "RateLimitError") == limited
        assert len(rig.sink.results()) == 6
        rig.sink.close()


def test_timeouts_exhaust_the_attempts_of_once_and_leave_the_calls_for_the_next_run(
    tmp_path: Path, calls_in_queue: Path
) -> None:
    """Verify that a judge that times out stops `once`; a later run judges every call."""
    with DemoServer() as judge_server:
        slow = rig_for(
            tmp_path,
            calls_in_queue,
            judge_server,
            {"x-llmtel-demo-latency-ms": "2000"},
            timeout_s=0.2,
            max_attempts=3,
        )
        with slow.worker() as worker, pytest.raises(JudgeUnavailable, match="failed 3 times"):
            worker.once()
        assert errors(slow.sink) == {("grounded", "APITimeoutError"): 3}
        assert slow.sink.results() == []
        fast = dataclasses.replace(slow, headers={"x-llmtel-demo-judge": "0"}, sink=Sink())
        with fast.worker() as worker:
            summary = worker.once()
        assert (summary.judged, summary.pending) == (2, 0)
        assert len(fast.sink.results()) == 6
        slow.sink.close()
        fast.sink.close()


def test_backoff_doubles_between_attempts(tmp_path: Path, calls_in_queue: Path) -> None:
    """Verify that failed attempts wait 0.1, 0.2 and 0.4 s (capped at 0.4) before the next."""
    with DemoServer() as judge_server:
        rig = rig_for(
            tmp_path,
            calls_in_queue,
            judge_server,
            {"x-llmtel-demo-fail": "503"},
            max_attempts=4,
            backoff_initial_s=0.1,
            backoff_max_s=0.4,
        )
        started = time.monotonic()
        with rig.worker() as worker, pytest.raises(JudgeUnavailable):
            worker.once()
        elapsed = time.monotonic() - started
        assert 0.1 + 0.2 + 0.4 <= elapsed < 5
        assert judge_server.counts()[("/v1/chat/completions", "503")] == 4
        rig.sink.close()


def test_a_rejected_request_is_recorded_as_an_error_verdict_without_retrying(
    tmp_path: Path, calls_in_queue: Path
) -> None:
    """Verify that an HTTP 400 gives an `error` verdict with its error.type after one attempt."""
    with DemoServer() as judge_server:
        rig = rig_for(tmp_path, calls_in_queue, judge_server, {"x-llmtel-demo-fail": "400"})
        with rig.worker() as worker:
            summary = worker.once()
        assert judge_server.counts()[("/v1/chat/completions", "400")] == 6
        assert summary.verdicts == {
            (r, "error"): 2 for r in ("grounded", "cites_sources", "appropriate_refusal")
        }
        attributes = [dict(r.log_record.attributes or {}) for r in rig.sink.results()]
        assert {a["error.type"] for a in attributes} == {"BadRequestError"}
        assert all("gen_ai.evaluation.score.value" not in a for a in attributes)
        assert summary.pass_rates() == {}
        rig.sink.close()


def test_unusable_judge_answers_are_retried_then_recorded_as_errors(
    tmp_path: Path, calls_in_queue: Path
) -> None:
    """Verify that a judge refusing to answer is retried max_attempts times, then `error`."""
    with DemoServer() as judge_server:
        rig = rig_for(
            tmp_path,
            calls_in_queue,
            judge_server,
            {"x-llmtel-demo-refusal": "I will not grade this."},
            max_attempts=2,
        )
        with rig.worker() as worker:
            summary = worker.once()
        assert judge_server.counts()[("/v1/chat/completions", "200")] == 12
        assert sum(summary.verdicts.values()) == 6
        assert {label for _, label in summary.verdicts} == {"error"}
        assert {e for _, e in errors(rig.sink)} == {"JudgeAnswerInvalid"}
        assert sum(errors(rig.sink).values()) == 12
        rig.sink.close()


def test_a_bad_api_key_stops_the_worker_and_keeps_every_call(
    tmp_path: Path, calls_in_queue: Path
) -> None:
    """Verify that HTTP 401 raises JudgeFatal at once and leaves the calls pending."""
    with DemoServer() as judge_server:
        rig = rig_for(tmp_path, calls_in_queue, judge_server, {"x-llmtel-demo-fail": "401"})
        with rig.worker() as worker:
            with pytest.raises(JudgeFatal, match="AuthenticationError"):
                worker.once()
            assert worker.store.pending_count() == 2
        assert judge_server.counts()[("/v1/chat/completions", "401")] == 1
        rig.sink.close()


def test_persistent_mode_retries_past_max_attempts_until_stopped(tmp_path: Path) -> None:
    """Verify that `run`'s judge keeps retrying a down judge, and gives up only when stopped."""
    with DemoServer() as judge_server:
        stop = threading.Event()
        client = openai.OpenAI(
            base_url=judge_server.base_url,
            api_key="k",
            max_retries=0,
            default_headers={"x-llmtel-demo-fail": "500"},
        )
        judge = Judge(
            JudgeSettings(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.01),
            client,
            stop=stop,
        )
        timer = threading.Timer(0.5, stop.set)
        timer.start()
        with pytest.raises(JudgeUnavailable, match="stopping"):
            judge.verdict(
                Rubric("polite", "Polite?"), Subject("[user]\nhi", "hello", "full"), persistent=True
            )
        timer.join()
        client.close()
        assert judge_server.counts()[("/v1/chat/completions", "500")] > 2
