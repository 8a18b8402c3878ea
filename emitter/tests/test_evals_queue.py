"""Reading the eval queue: malformed lines, half-written lines, rotations, read positions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_evals_support import Rig, Sink, default_config, lines_of, make_app_calls, write_queue

from llmtel.demo.server import DemoServer
from llmtel.evals._queue import identify, queue_paths, read_lines
from llmtel.evals._records import MalformedLine, parse_line, render_answer, render_conversation

BACKUP = "eval-queue-2026-03-01T10-20-30.456.jsonl"


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A worker's queue and state directories, a demo judge and an in-memory sink."""
    with DemoServer() as judge_server:
        sink = Sink()
        yield Rig(tmp_path / "queue", tmp_path / "state", judge_server, default_config(), sink)
        sink.close()


def sent_call_ids(sink: Sink) -> list[str]:
    """The judged call id of every verdict sent, in order."""
    return [str((r.log_record.attributes or {})["llmtel.call.id"]) for r in sink.results()]


def test_malformed_lines_and_records_are_skipped_and_counted(rig: Rig, server: DemoServer) -> None:
    """Verify that bad lines and records are counted and skipped; the good calls are judged."""
    first, second = make_app_calls(server, ["What is your refund policy?", "Where is my order?"])
    good_first, good_second = lines_of([first, second])
    bad_ids = json.loads(good_second)
    for resource in bad_ids["resourceLogs"]:
        for scope in resource["scopeLogs"]:
            for record in scope["logRecords"]:
                record["traceId"] = "not-hex"
    write_queue(
        rig.queue_dir,
        [
            "this is not json",
            good_first,
            '["a", "list"]',
            '{"resourceLogs": "no list"}',
            json.dumps(bad_ids),  # both records of the second call lack a usable trace id
            "",
            '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": 7}]}]}]}',
        ],
    )
    with rig.worker() as worker:
        summary = worker.once()
    assert summary.malformed == 6
    assert summary.lines == 7
    assert rig.sink.points("llmtel.eval.queue.malformed") == {
        frozenset({("llmtel.eval.malformed", "line")}): 4,
        frozenset({("llmtel.eval.malformed", "record")}): 2,
    }
    assert sent_call_ids(rig.sink) == [first.call_id] * 3


def test_a_half_written_last_line_waits_until_it_is_complete(rig: Rig, server: DemoServer) -> None:
    """Verify that a line without its newline yet is left alone, then read once complete."""
    first, second = lines_of(make_app_calls(server, ["refund policy?", "order status?"]))
    path = write_queue(rig.queue_dir, [first])
    with path.open("a") as handle:
        handle.write(second[:100])
    with rig.worker() as worker:
        assert worker.once().lines == 1
        with path.open("a") as handle:
            handle.write(second[100:] + "\n")
        summary = worker.once()
    assert (summary.lines, summary.judged, summary.malformed) == (2, 2, 0)
    assert len(rig.sink.results()) == 6


def test_a_rotation_mid_read_loses_and_repeats_nothing(rig: Rig, server: DemoServer) -> None:
    """Verify that after the file is renamed and a new one started, every line is read once."""
    calls = make_app_calls(server, [f"Question number {i}?" for i in range(5)])
    lines = lines_of(calls)
    path = write_queue(rig.queue_dir, lines[:2])
    with rig.worker() as worker:
        assert worker.once().lines == 2
        # The collector appends one more line, then rotates: rename, new file.
        write_queue(rig.queue_dir, lines[2:3])
        path.rename(rig.queue_dir / BACKUP)
        write_queue(rig.queue_dir, lines[3:])
        summary = worker.once()
    assert summary.lines == 5
    assert sorted(sent_call_ids(rig.sink)) == sorted(c.call_id for c in calls for _ in range(3))
    assert len(rig.judge_server.judge_records()) == 15


def test_read_positions_survive_a_restart_and_a_rotation(rig: Rig, server: DemoServer) -> None:
    """Verify that a restarted worker resumes each file (renamed or not) where it stopped."""
    lines = lines_of(make_app_calls(server, [f"Question number {i}?" for i in range(4)]))
    path = write_queue(rig.queue_dir, lines[:2])
    with rig.worker() as worker:
        worker.once()
    path.rename(rig.queue_dir / BACKUP)
    write_queue(rig.queue_dir, lines[2:])
    with rig.worker() as worker:
        summary = worker.once()
    assert (summary.lines, summary.judged) == (2, 2)


def test_queue_files_are_listed_oldest_backup_first_then_the_current_file(tmp_path: Path) -> None:
    """Verify the order of a scan: backups by their UTC time stamp, the current file last."""
    for name in (
        "eval-queue.jsonl",
        "eval-queue-2026-03-01T10-20-30.456.jsonl",
        "eval-queue-2025-12-31T23-59-59.999.jsonl",
        "eval-queue.jsonl.tmp",
        "content.otlp",
    ):
        (tmp_path / name).write_text("{}\n")
    assert [p.name for p in queue_paths(tmp_path)] == [
        "eval-queue-2025-12-31T23-59-59.999.jsonl",
        "eval-queue-2026-03-01T10-20-30.456.jsonl",
        "eval-queue.jsonl",
    ]


def test_a_file_keeps_its_identity_when_renamed_and_a_new_file_gets_another(
    tmp_path: Path,
) -> None:
    """Verify that identity is inode plus first line: stable across a rename, new for a new file."""
    path = tmp_path / "eval-queue.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n')
    before = identify(path)
    path.rename(tmp_path / BACKUP)
    after = identify(tmp_path / BACKUP)
    path.write_text('{"a": 1}\n')
    fresh = identify(path)
    assert before is not None
    assert after is not None
    assert fresh is not None
    assert before.identity == after.identity
    assert fresh.identity != before.identity
    (tmp_path / "partial.jsonl").write_text('{"no newline yet"')
    assert identify(tmp_path / "partial.jsonl") is None


def test_read_lines_yields_complete_lines_with_their_end_offsets(tmp_path: Path) -> None:
    """Verify that read_lines resumes at an offset and stops before an unfinished line."""
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"one\ntwo\nthree\nfour")
    assert list(read_lines(path, 0)) == [(b"one", 4), (b"two", 8), (b"three", 14)]
    assert list(read_lines(path, 8)) == [(b"three", 14)]
    assert list(read_lines(path, 14)) == []


def test_parse_line_rejects_what_is_not_an_otlp_logs_request() -> None:
    """Verify that parse_line raises MalformedLine with a reason for each kind of bad line."""
    for line, reason in [
        ("{", "not JSON"),
        ("[]", "no resourceLogs"),
        ('{"resourceLogs": [1]}', "not an object"),
        ('{"resourceLogs": [{"scopeLogs": {}}]}', "not an array"),
    ]:
        with pytest.raises(MalformedLine, match=reason):
            parse_line(line)


def test_content_renders_as_a_transcript_and_an_answer() -> None:
    """Verify that captured messages become the text the judge reads."""
    messages = json.dumps(
        [
            {"role": "system", "content": "Use the documents."},
            {"role": "user", "content": [{"type": "text", "text": "Refunds?"}]},
            {"role": "tool", "content": "Doc 1: refunds within 30 days."},
        ]
    )
    assert render_conversation(messages) == (
        "[system]\nUse the documents.\n\n[user]\nRefunds?\n\n[tool]\nDoc 1: refunds within 30 days."
    )
    answer = json.dumps(
        [
            {
                "role": "assistant",
                "tool_calls": [{"function": {"name": "search", "arguments": '{"q": "x"}'}}],
            }
        ]
    )
    assert render_answer(answer) == '[tool call] search({"q": "x"})'
    assert render_answer('"plain text"') == "plain text"
    assert render_answer("not json") == "not json"
