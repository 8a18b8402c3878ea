"""``llmtel evals``: the worker as users run it, in its own process, over real OTLP."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_evals_support import lines_of, make_app_calls, write_queue

from llmtel.demo.server import DemoServer
from llmtel.evals import Store, default_config_text
from llmtel.evals._store import worker_lock

if TYPE_CHECKING:
    # Only a type: tests/ has a conftest module too, and which one `import conftest`
    # finds depends on the order pytest collects the two directories in.
    from conftest import FakeCollector

PROMPTS = [
    "Where is my order? [demo-verdict:fail]",
    "Can I export my projects? [demo-verdict:cites_sources=fail]",
    "What is your refund policy?",
]
SUMMARY = (
    "llmtel evals: 3 queue lines, 3 calls judged, 0 skipped, 0 malformed, 0 judge errors, "
    "0 pending\n"
    "  pass rate  appropriate_refusal 67% (2/3)  cites_sources 33% (1/3)  grounded 67% (2/3)\n"
)


def evals(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m llmtel evals ARGS`` and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "llmtel", "evals", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_env(),
        check=False,
    )


def clean_env() -> dict[str, str]:
    """The environment without OTEL_*, LLMTEL_* and OPENAI_* variables."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_", "OPENAI_"))
    }


def worker_args(tmp_path: Path, collector: FakeCollector, *extra: str) -> Sequence[str | Path]:
    """The flags of a worker on tmp_path's queue and state, sending to ``collector``."""
    return (
        "--queue-dir",
        tmp_path / "queue",
        "--state-dir",
        tmp_path / "state",
        "--endpoint",
        collector.url,
        *extra,
    )


def evaluation_records(collector: FakeCollector) -> list[dict[str, object]]:
    """The gen_ai.evaluation.result records the collector received, as attribute dicts."""
    out = []
    for resource, record in collector.logs():
        if record.event_name != "gen_ai.evaluation.result":
            continue
        attributes: dict[str, object] = {
            a.key: getattr(a.value, a.value.WhichOneof("value")) for a in record.attributes
        }
        attributes["service.name"] = next(
            a.value.string_value for a in resource.attributes if a.key == "service.name"
        )
        attributes["trace_id"] = record.trace_id.hex()
        out.append(attributes)
    return out


def test_once_with_the_demo_judge_sends_every_verdict_and_prints_pass_rates(
    tmp_path: Path, server: DemoServer, collector: FakeCollector
) -> None:
    """Verify `llmtel evals once --demo-judge`: exit 0, the summary, 9 verdicts over OTLP."""
    calls = make_app_calls(server, PROMPTS)
    write_queue(tmp_path / "queue", lines_of(calls))
    done = evals(
        "once", "--demo-judge", "--demo-fail-share", "0", "-q", *worker_args(tmp_path, collector)
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, SUMMARY, "")
    records = evaluation_records(collector)
    assert len(records) == 9
    assert {r["service.name"] for r in records} == {"llmtel-evals"}
    assert {r["trace_id"] for r in records} == {c.call_id.split("-")[0] for c in calls}
    assert "llmtel.eval.results" in collector.metric_names()
    judge_spans = [
        span
        for _, span in collector.spans()
        if any(
            a.key == "llmtel.endpoint" and a.value.string_value == "eval-judge"
            for a in span.attributes
        )
    ]
    assert len(judge_spans) == 9


def test_a_second_worker_on_the_same_state_is_refused(
    tmp_path: Path, collector: FakeCollector
) -> None:
    """Verify that the state directory's lock admits one worker at a time (exit 2)."""
    with worker_lock(tmp_path / "state"):
        done = evals(
            "once", "--demo-judge", "--demo-fail-share", "0", *worker_args(tmp_path, collector)
        )
    assert done.returncode == 2
    assert "another eval worker is running on" in done.stderr


def test_once_exits_1_and_keeps_the_calls_when_the_judge_is_unreachable(
    tmp_path: Path, server: DemoServer, collector: FakeCollector
) -> None:
    """Verify that an unreachable judge ends `once` with exit 1 and every call still pending."""
    write_queue(tmp_path / "queue", lines_of(make_app_calls(server, PROMPTS[:2])))
    config = tmp_path / "rubrics.yaml"
    config.write_text(
        default_config_text()
        .replace("max_attempts: 5", "max_attempts: 2")
        .replace("backoff_initial_s: 1", "backoff_initial_s: 0")
    )
    done = evals(
        "once",
        "--config",
        config,
        "--judge-base-url",
        "http://127.0.0.1:9/v1",
        *worker_args(tmp_path, collector),
    )
    assert done.returncode == 1
    assert "the judge failed 2 times, last: APIConnectionError" in done.stderr
    assert "2 calls wait for the next run" in done.stderr
    store = Store(tmp_path / "state")
    assert store.pending_count() == 2
    store.close()


def test_without_an_api_key_the_worker_says_what_to_set(
    tmp_path: Path, collector: FakeCollector
) -> None:
    """Verify exit 2 and a message naming OPENAI_API_KEY when no key and no base URL are set."""
    done = evals("once", *worker_args(tmp_path, collector))
    assert done.returncode == 2
    assert "the judge needs an API key in OPENAI_API_KEY" in done.stderr


def test_run_follows_the_queue_through_a_rotation_until_sigterm(
    tmp_path: Path, server: DemoServer, collector: FakeCollector
) -> None:
    """Verify `run`: new lines and a rotated file are judged as they come; SIGTERM ends it."""
    lines = lines_of(make_app_calls(server, [f"Question {i}?" for i in range(4)]))
    queue = tmp_path / "queue"
    path = write_queue(queue, lines[:1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmtel",
            "evals",
            "run",
            "--demo-judge",
            "--demo-fail-share",
            "0",
            "-q",
            "--poll-interval",
            "0.1",
            *map(str, worker_args(tmp_path, collector)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )

    def judged() -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            store = Store(tmp_path / "state")
            count = store.counts()["done"]
            store.close()
            if count >= expected:
                return count
            time.sleep(0.1)
        return count

    try:
        expected = 1
        assert judged() == 1
        write_queue(queue, lines[1:2])
        path.rename(queue / "eval-queue-2026-03-01T10-20-30.456.jsonl")
        write_queue(queue, lines[2:])
        expected = 4
        assert judged() == 4
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.startswith("llmtel evals: 4 queue lines, 4 calls judged")
    assert len(evaluation_records(collector)) == 12


def test_status_export_and_agreement_from_the_command_line(
    tmp_path: Path, server: DemoServer, collector: FakeCollector
) -> None:
    """Verify `status`, `export` and `agreement --min-kappa` end to end on a judged queue."""
    write_queue(tmp_path / "queue", lines_of(make_app_calls(server, PROMPTS)))
    assert (
        evals(
            "once",
            "--demo-judge",
            "--demo-fail-share",
            "0",
            "-q",
            *worker_args(tmp_path, collector),
        ).returncode
        == 0
    )
    state = ("--state-dir", tmp_path / "state")

    status = evals("status", *state)
    assert status.returncode == 0
    assert status.stdout.splitlines()[:4] == [
        "llmtel evals: 3 calls judged, 0 skipped, 0 pending, 9 verdicts",
        "  appropriate_refusal      pass rate 67% (2/3)",
        "  cites_sources            pass rate 33% (1/3)",
        "  grounded                 pass rate 67% (2/3)",
    ]

    sample = tmp_path / "sample.csv"
    exported = evals("export", *state, "--out", sample, "--seed", "1")
    assert exported.stdout == f"llmtel evals: 9 rows to label in {sample}\n"
    # A person agrees with every verdict but one of cites_sources.
    with sample.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["human_label"] = row["judge_label"]
    rows[3]["human_label"] = "pass" if rows[3]["judge_label"] == "fail" else "fail"
    assert rows[3]["rubric"] == "cites_sources"
    with sample.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    report = evals("agreement", sample)
    assert report.returncode == 0
    assert report.stdout.splitlines()[0].split() == ["rubric", "items", "agree", "kappa", "reading"]
    gated = evals("agreement", sample, "--min-kappa", "0.6")
    assert gated.returncode == 1
    assert "kappa below 0.6: cites_sources" in gated.stderr


def test_rubrics_prints_the_default_file() -> None:
    """Verify that `llmtel evals rubrics` prints the shipped rubrics.yaml."""
    done = evals("rubrics")
    assert (done.returncode, done.stdout) == (0, default_config_text())


@pytest.mark.parametrize("command", ["status", "export"])
def test_reading_commands_need_a_state(tmp_path: Path, command: str) -> None:
    """Verify that status and export say where they looked when there is no state yet."""
    done = evals(command, "--state-dir", tmp_path / "none")
    assert done.returncode == 2
    assert f"no eval state in {tmp_path / 'none'}" in done.stderr
