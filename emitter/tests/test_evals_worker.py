"""The eval worker on real queue lines, judged by the demo server, sending real OTel data."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_evals_support import (
    Rig,
    Sink,
    default_config,
    lines_of,
    make_app_calls,
    otlp_json_line,
    write_queue,
)

from llmtel.demo.server import DemoServer
from llmtel.evals import load_config
from llmtel.testing import capture

RUBRICS = ("grounded", "cites_sources", "appropriate_refusal")
DEMO_EXPLANATION = "llmtel demo judge: {} for {} (decided by a marker or the fail share)."

# Prompt -> expected label per rubric (markers tell the demo judge what to answer).
KNOWN: dict[str, dict[str, str]] = {
    "Where is my order? [demo-verdict:fail]": dict.fromkeys(RUBRICS, "fail"),
    "How do I reset my password? [demo-verdict:grounded=na]": {
        "grounded": "not_applicable",
        "cites_sources": "pass",
        "appropriate_refusal": "pass",
    },
    "Can I export my projects? [demo-verdict:cites_sources=fail]": {
        "grounded": "pass",
        "cites_sources": "fail",
        "appropriate_refusal": "pass",
    },
    "What is your refund policy?": dict.fromkeys(RUBRICS, "pass"),
}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A worker's queue and state directories, a demo judge and an in-memory sink."""
    with DemoServer() as judge_server:
        sink = Sink()
        yield Rig(tmp_path / "queue", tmp_path / "state", judge_server, default_config(), sink)
        sink.close()


def labels_sent(sink: Sink) -> dict[tuple[str, str], str]:
    """(call id, rubric) -> label of every gen_ai.evaluation.result record sent."""
    out = {}
    for record in sink.results():
        attributes = record.log_record.attributes or {}
        key = (str(attributes["llmtel.call.id"]), str(attributes["gen_ai.evaluation.name"]))
        assert key not in out, f"{key} sent twice"
        out[key] = str(attributes["gen_ai.evaluation.score.label"])
    return out


def test_known_calls_get_their_known_verdicts_linked_to_the_call(
    rig: Rig, server: DemoServer
) -> None:
    """Verify that every call gets one verdict per rubric, on the judged call's trace and span."""
    calls = make_app_calls(server, list(KNOWN))
    write_queue(rig.queue_dir, lines_of(calls))
    with rig.worker() as worker:
        summary = worker.once()

    expected = {
        (call.call_id, rubric): label
        for call in calls
        for rubric, label in KNOWN[call.prompt].items()
    }
    assert labels_sent(rig.sink) == expected
    assert summary.judged == 4
    assert summary.pass_rates() == {
        "appropriate_refusal": (3, 4),
        "cites_sources": (2, 4),
        "grounded": (2, 3),
    }
    by_call = {call.call_id: call for call in calls}
    for record in rig.sink.results():
        log = record.log_record
        attributes = dict(log.attributes or {})
        call = by_call[str(attributes["llmtel.call.id"])]
        app_record = call.records[0].log_record
        assert (log.trace_id, log.span_id) == (app_record.trace_id, app_record.span_id)
        label = str(attributes["gen_ai.evaluation.score.label"])
        rubric = str(attributes["gen_ai.evaluation.name"])
        score = {"pass": 1.0, "fail": 0.0}.get(label)
        assert attributes == {
            "gen_ai.evaluation.name": rubric,
            "gen_ai.evaluation.score.label": label,
            "gen_ai.evaluation.explanation": DEMO_EXPLANATION.format(
                {"not_applicable": "na"}.get(label, label), rubric
            ),
            "llmtel.call.id": call.call_id,
            "llmtel.eval.id": f"{call.call_id}-{rubric}",
            "llmtel.eval.rubric.version": load_config().rubric(rubric).version,  # type: ignore[union-attr]
            "llmtel.eval.judge.model": "gpt-4o-mini",
            "llmtel.eval.content": "full",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.id": app_record.attributes["gen_ai.response.id"],  # type: ignore[index]
            "llmtel.prompt.version": "v1",
            "llmtel.endpoint": "support-answer",
            **({} if score is None else {"gen_ai.evaluation.score.value": score}),
        }
        assert log.event_name == "gen_ai.evaluation.result"
        assert log.body == f"evaluation {rubric} {label}"


def test_the_results_counter_counts_verdicts_by_rubric_label_model_and_prompt_version(
    rig: Rig, server: DemoServer
) -> None:
    """Verify that llmtel.eval.results holds exact counts, with a zero for unseen labels."""
    write_queue(rig.queue_dir, lines_of(make_app_calls(server, list(KNOWN))))
    with rig.worker() as worker:
        worker.once()

    def key(rubric: str, label: str) -> frozenset[tuple[str, str]]:
        return frozenset(
            {
                "gen_ai.evaluation.name": rubric,
                "gen_ai.evaluation.score.label": label,
                "gen_ai.request.model": "gpt-4o-mini",
                "llmtel.prompt.version": "v1",
            }.items()
        )

    assert rig.sink.points("llmtel.eval.results") == {
        key("grounded", "pass"): 2,
        key("grounded", "fail"): 1,
        key("grounded", "not_applicable"): 1,
        key("cites_sources", "pass"): 2,
        key("cites_sources", "fail"): 2,
        key("cites_sources", "not_applicable"): 0,
        key("appropriate_refusal", "pass"): 3,
        key("appropriate_refusal", "fail"): 1,
    }


def test_the_judge_calls_are_llm_calls_labelled_as_eval_traffic(
    rig: Rig, server: DemoServer
) -> None:
    """Verify that each verdict is one instrumented call with endpoint eval-judge and rubric."""
    write_queue(rig.queue_dir, lines_of(make_app_calls(server, list(KNOWN)[:1])))
    with capture() as cap, rig.worker() as worker:
        worker.once()
    spans = cap.spans()
    config = load_config()
    assert sorted(
        (s.name, s.attributes["llmtel.endpoint"], s.attributes["llmtel.prompt.version"])  # type: ignore[index]
        for s in spans
    ) == sorted(("chat gpt-4o-mini", "eval-judge", f"{r.name}@{r.version}") for r in config.rubrics)
    judge_call_ids = {
        f"{s.context.trace_id:032x}-{s.context.span_id:016x}"  # type: ignore[union-attr]
        for s in spans
    }
    sent = {
        str((r.log_record.attributes or {})["llmtel.eval.judge.call_id"])
        for r in rig.sink.results()
    }
    assert sent == judge_call_ids


def test_a_second_run_judges_nothing_again(rig: Rig, server: DemoServer) -> None:
    """Verify that a restarted worker on the same state sends no request and no verdict."""
    write_queue(rig.queue_dir, lines_of(make_app_calls(server, list(KNOWN))))
    with rig.worker() as worker:
        worker.once()
    with rig.worker() as worker:
        summary = worker.once()
    assert len(rig.judge_server.judge_records()) == 12
    assert len(rig.sink.results()) == 12
    assert (summary.lines, summary.judged) == (0, 0)


def test_a_queue_reread_from_the_start_judges_nothing_again(rig: Rig, server: DemoServer) -> None:
    """Verify that verdicts are keyed by call and rubric: reread lines judge nothing twice."""
    calls = make_app_calls(server, list(KNOWN))
    write_queue(rig.queue_dir, lines_of(calls))
    with rig.worker() as worker:
        worker.once()
        # The judged text is forgotten after keep_days; the verdicts stay.
        assert worker.store.prune(before=time.time() + 1) == 4
    # The collector sends the same records again (a retry) into a new file.
    (rig.queue_dir / "eval-queue.jsonl").rename(rig.queue_dir / "old.jsonl.bak")
    write_queue(rig.queue_dir, lines_of(calls))
    with rig.worker() as worker:
        summary = worker.once()
    assert (summary.lines, summary.judged) == (4, 4)  # seen again, every rubric already done
    assert len(rig.judge_server.judge_records()) == 12
    assert len(rig.sink.results()) == 12


def test_the_judges_own_calls_and_failed_calls_are_skipped(rig: Rig, server: DemoServer) -> None:
    """Verify that eval-judge traffic and calls without an answer are counted, never judged."""
    own = make_app_calls(server, ["judge me"], endpoint="eval-judge")
    failed = make_app_calls(server, ["this fails"], headers={"x-llmtel-demo-fail": "500"})
    good = make_app_calls(server, ["What is your refund policy?"])
    write_queue(rig.queue_dir, lines_of([*own, *failed, *good]))
    with rig.worker() as worker:
        summary = worker.once()
    assert summary.skipped == Counter({"eval_traffic": 1, "outcome": 1})
    assert summary.judged == 1
    assert {call_id for call_id, _ in labels_sent(rig.sink)} == {good[0].call_id}
    assert rig.sink.points("llmtel.eval.skipped") == {
        frozenset({("llmtel.eval.skip_reason", "eval_traffic")}): 1,
        frozenset({("llmtel.eval.skip_reason", "outcome")}): 1,
    }


def test_a_call_waits_for_its_content_record_then_falls_back_to_previews(
    rig: Rig, server: DemoServer
) -> None:
    """Verify pairing: content in a later line is used; without it, previews after the wait."""
    paired, alone = make_app_calls(
        server, ["What is your refund policy?", "Where is my order?"], prompt_version="v2"
    )
    now = [1000.0]
    rig.config = dataclasses.replace(rig.config, content_wait_s=30.0)
    # Call records first; the first call's content record comes in a later line.
    write_queue(rig.queue_dir, [otlp_json_line([paired.records[0], alone.records[0]])])
    with rig.worker() as worker:
        worker._clock = lambda: now[0]
        worker.ingest()
        assert worker.judge_ready(drain=False, persistent=False) == 0
        write_queue(rig.queue_dir, [otlp_json_line([paired.records[1]])])
        worker.ingest()
        assert worker.judge_ready(drain=False, persistent=False) == 1
        now[0] += 30.0
        assert worker.judge_ready(drain=False, persistent=False) == 1
    sources = {
        str((r.log_record.attributes or {})["llmtel.call.id"]): (
            (r.log_record.attributes or {})["llmtel.eval.content"]
        )
        for r in rig.sink.results()
    }
    assert sources == {paired.call_id: "full", alone.call_id: "preview"}
    judged_texts = {r.subject for r in rig.judge_server.judge_records()}
    assert len(judged_texts) == 2


def test_calls_recorded_with_previews_only_are_judged_on_their_previews(
    rig: Rig, server: DemoServer
) -> None:
    """Verify that an app without full content capture still gets verdicts, from previews."""
    calls = make_app_calls(server, list(KNOWN), capture_content="preview")
    write_queue(rig.queue_dir, lines_of(calls))
    with rig.worker() as worker:
        worker.once()
    expected = {
        (call.call_id, rubric): label
        for call in calls
        for rubric, label in KNOWN[call.prompt].items()
    }
    assert labels_sent(rig.sink) == expected
    assert {(r.log_record.attributes or {})["llmtel.eval.content"] for r in rig.sink.results()} == {
        "preview"
    }


def test_rubrics_limited_to_endpoints_judge_only_those_calls(rig: Rig, server: DemoServer) -> None:
    """Verify that a rubric with endpoints skips calls made for other endpoints."""
    rubrics = tuple(
        dataclasses.replace(r, endpoints=("search",)) if r.name == "cites_sources" else r
        for r in rig.config.rubrics
    )
    rig.config = dataclasses.replace(rig.config, rubrics=rubrics)
    support = make_app_calls(server, ["What is your refund policy?"])
    search = make_app_calls(server, ["Find the refund policy"], endpoint="search")
    write_queue(rig.queue_dir, lines_of([*support, *search]))
    with rig.worker() as worker:
        worker.once()
    assert sorted(labels_sent(rig.sink)) == sorted(
        [
            (support[0].call_id, "grounded"),
            (support[0].call_id, "appropriate_refusal"),
            (search[0].call_id, "grounded"),
            (search[0].call_id, "cites_sources"),
            (search[0].call_id, "appropriate_refusal"),
        ]
    )


def test_verdicts_not_confirmed_by_a_flush_are_sent_again_after_a_restart(
    rig: Rig, server: DemoServer
) -> None:
    """Verify the outbox: a failed flush leaves verdicts unconfirmed; the next run resends them."""
    write_queue(rig.queue_dir, lines_of(make_app_calls(server, list(KNOWN)[:2])))
    down = Sink()
    down._flush = lambda _timeout_s: False  # type: ignore[method-assign]
    down.telemetry._flush = down._flush
    first = dataclasses.replace(rig, sink=down)
    with first.worker() as worker:
        worker.once()
    assert len(down.results()) == 6
    with rig.worker() as worker:
        summary = worker.once()
    assert summary.judged == 0
    assert len(rig.sink.results()) == 6
    with rig.worker() as worker:
        worker.once()
    assert len(rig.sink.results()) == 6  # confirmed now: not sent a third time
    assert len(rig.judge_server.judge_records()) == 6
    down.close()
