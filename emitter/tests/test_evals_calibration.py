"""Calibration: export a sample for people to label, then judge-human agreement per rubric."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_evals_support import Rig, Sink, default_config, lines_of, make_app_calls, write_queue

from llmtel.demo.server import DemoServer
from llmtel.evals import Agreement, Store, agreement, export_sample
from llmtel.evals._calibration import COLUMNS, read_rows, write_rows

PROMPTS = {
    "Where is my order? [demo-verdict:fail]": "order",
    "How do I reset my password? [demo-verdict:grounded=na]": "password",
    "Can I export my projects? [demo-verdict:cites_sources=fail]": "export",
    "What is your refund policy?": "refund",
}
# What a person says, by (call, rubric); the judge said: see test_evals_worker.KNOWN.
HUMAN = {
    ("order", "appropriate_refusal"): "fail",
    ("password", "appropriate_refusal"): "pass",
    ("export", "appropriate_refusal"): "fail",  # the judge said pass
    ("refund", "appropriate_refusal"): "pass",
    ("order", "cites_sources"): "fail",
    ("password", "cites_sources"): "pass",
    ("export", "cites_sources"): "fail",
    ("refund", "cites_sources"): "pass",
    ("order", "grounded"): "fail",
    ("password", "grounded"): "not_applicable",
    ("export", "grounded"): "pass",
    # ("refund", "grounded") left unlabelled
}


@pytest.fixture
def judged(tmp_path: Path, server: DemoServer) -> Iterator[tuple[Rig, dict[str, str]]]:
    """Four known calls judged by the demo judge; yields the rig and call id -> call name."""
    calls = make_app_calls(server, list(PROMPTS))
    with DemoServer() as judge_server:
        sink = Sink()
        rig = Rig(tmp_path / "queue", tmp_path / "state", judge_server, default_config(), sink)
        write_queue(rig.queue_dir, lines_of(calls))
        with rig.worker() as worker:
            worker.once()
        yield rig, {c.call_id: PROMPTS[c.prompt] for c in calls}
        sink.close()


def test_export_writes_every_verdict_with_what_the_judge_saw(
    judged: tuple[Rig, dict[str, str]], tmp_path: Path
) -> None:
    """Verify the export: one row per verdict, blank human columns, the judged text."""
    rig, names = judged
    store = Store(rig.state_dir)
    rows = export_sample(store, rig.config, per_rubric=50, seed=1)
    store.close()
    assert len(rows) == 12
    assert [row["rubric"] for row in rows] == ["appropriate_refusal"] * 4 + [
        "cites_sources"
    ] * 4 + ["grounded"] * 4
    order = next(r for r in rows if names[r["eval_id"].rsplit("-", 1)[0]] == "order")
    assert order == {
        "eval_id": order["eval_id"],
        "rubric": "appropriate_refusal",
        "human_label": "",
        "human_score": "",
        "judge_label": "fail",
        "judge_score": "0",
        "judge_explanation": "llmtel demo judge: fail for appropriate_refusal "
        "(decided by a marker or the fail share).",
        "scale": "pass_fail",
        "pass_threshold": "",
        "model": "gpt-4o-mini",
        "prompt_version": "v1",
        "endpoint": "support-answer",
        "conversation": "[system]\nAnswer from the documents.\n\n"
        "[user]\nWhere is my order? [demo-verdict:fail]",
        "answer": order["answer"],
    }
    assert order["answer"]  # the demo's lorem answer
    path = tmp_path / "sample.csv"
    write_rows(rows, path, "csv")
    with path.open() as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS
    assert read_rows(path) == rows


def test_a_sample_is_random_but_repeatable_per_rubric(judged: tuple[Rig, dict[str, str]]) -> None:
    """Verify that per_rubric caps each rubric and that a seed repeats the sample."""
    rig, _ = judged
    store = Store(rig.state_dir)
    first = export_sample(store, rig.config, per_rubric=2, seed=7)
    again = export_sample(store, rig.config, per_rubric=2, seed=7)
    only = export_sample(store, rig.config, per_rubric=9, rubrics=["grounded"])
    store.close()
    assert len(first) == 6
    assert first == again
    assert {row["rubric"] for row in only} == {"grounded"}
    assert len(only) == 4


def test_agreement_reports_kappa_per_rubric_from_a_labelled_file(
    judged: tuple[Rig, dict[str, str]], tmp_path: Path
) -> None:
    """Verify the round trip: export, people label, agreement gives each rubric's exact kappa."""
    rig, names = judged
    store = Store(rig.state_dir)
    rows = export_sample(store, rig.config)
    store.close()
    for row in rows:
        row["human_label"] = HUMAN.get((names[row["eval_id"].rsplit("-", 1)[0]], row["rubric"]), "")
    path = tmp_path / "labelled.jsonl"
    write_rows(rows, path, "jsonl")
    assert [json.loads(line)["rubric"] for line in path.read_text().splitlines()][:1] == [
        "appropriate_refusal"
    ]
    assert agreement(read_rows(path)) == [
        # judge f p p p, human f p f p: p_o 3/4, p_e 1/2.
        Agreement("appropriate_refusal", 4, 0.75, 0.5, None),
        Agreement("cites_sources", 4, 1.0, 1.0, None),
        # judge f na p, human f na p (the fourth row is unlabelled).
        Agreement("grounded", 3, 1.0, 1.0, None),
    ]


def test_agreement_on_scores_uses_the_threshold_and_a_weighted_kappa() -> None:
    """Verify that human scores of a 1-5 rubric become labels and a quadratic-weighted kappa."""
    rows = [
        {
            "rubric": "tone",
            "scale": "1-5",
            "pass_threshold": "4",
            "judge_label": "pass" if judge >= 4 else "fail",
            "judge_score": str(judge),
            "human_label": "",
            "human_score": str(human),
        }
        for judge, human in [(1, 1), (2, 2), (3, 3), (4, 5), (5, 4)]
    ]
    (result,) = agreement(rows)
    assert result == Agreement("tone", 5, 1.0, 1.0, 0.9)


def test_a_bad_human_score_is_reported() -> None:
    """Verify that a score off the 1-5 scale raises ValueError quoting it."""
    row = {"rubric": "tone", "scale": "1-5", "judge_label": "pass", "human_score": "9"}
    with pytest.raises(ValueError, match="human_score '9'"):
        agreement([row])


def test_landis_and_koch_words_describe_kappa() -> None:
    """Verify the words printed next to each kappa."""
    words = [Agreement("r", 1, 1.0, k, None).reading for k in (-0.1, 0.1, 0.3, 0.5, 0.7, 0.9)]
    assert words == ["poor", "slight", "fair", "moderate", "substantial", "almost perfect"]
    assert Agreement("r", 1, 1.0, None, None).reading == "undefined"
