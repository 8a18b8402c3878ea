"""The worker's state: read positions, calls waiting to be judged, and every verdict.

One SQLite file (``evals.sqlite``) in the state directory. Reading a batch of queue
lines and moving the read position past them is one transaction, and each verdict is
committed before it is sent, so a crash at any point loses nothing and a restart judges
nothing twice: a verdict is keyed by (trace id, span id, rubric). Verdicts carry an
``exported`` flag, set once the OTLP export that carried them has been flushed; a
restart sends again those it had not confirmed (at-least-once, ``llmtel.eval.id`` lets
a reader drop a duplicate).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._records import QueueRecord, Value

DB_FILE = "evals.sqlite"
LOCK_FILE = "worker.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    identity TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    offset INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    call TEXT,
    content TEXT,
    service TEXT,
    first_seen REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS calls_pending ON calls (state, first_seen);
CREATE TABLE IF NOT EXISTS results (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    rubric TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    label TEXT NOT NULL,
    score REAL,
    explanation TEXT NOT NULL,
    error_type TEXT,
    model TEXT,
    prompt_version TEXT,
    endpoint TEXT,
    response_id TEXT,
    judge_model TEXT NOT NULL,
    judge_call_id TEXT,
    content_source TEXT NOT NULL,
    created REAL NOT NULL,
    exported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (trace_id, span_id, rubric)
);
CREATE INDEX IF NOT EXISTS results_unexported ON results (exported);
"""


class StateLocked(RuntimeError):
    """Another worker already runs on this state directory."""


@dataclass(frozen=True)
class StoredCall:
    """A call known from the queue: its call record and/or its content record."""

    trace_id: str
    span_id: str
    call: dict[str, Value] | None
    content: dict[str, Value] | None
    service: str | None
    first_seen: float

    @property
    def call_id(self) -> str:
        """``<trace id>-<span id>``, as ``llmtel.call_id`` writes it."""
        return f"{self.trace_id}-{self.span_id}"


@dataclass(frozen=True)
class Result:
    """One verdict on one call by one rubric, as stored and as sent."""

    trace_id: str
    span_id: str
    rubric: str
    rubric_version: str
    label: str
    score: float | None
    explanation: str
    error_type: str | None
    model: str | None
    prompt_version: str | None
    endpoint: str | None
    response_id: str | None
    judge_model: str
    judge_call_id: str | None
    content_source: str
    created: float

    @property
    def eval_id(self) -> str:
        """A stable id of this verdict: the judged call id and the rubric."""
        return f"{self.trace_id}-{self.span_id}-{self.rubric}"


_RESULT_COLUMNS = tuple(Result.__dataclass_fields__)


class Store:
    """The SQLite state of one worker (or of ``export``, read-only in practice).

    Example:
        >>> import tempfile
        >>> store = Store(Path(tempfile.mkdtemp()))
        >>> store.counts()
        {'pending': 0, 'done': 0, 'skipped': 0, 'results': 0}
        >>> store.close()
    """

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DB_FILE
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them are committed, or none."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- read positions --------------------------------------------------------------------

    def offset(self, identity: str) -> int:
        """How far the file with this identity has been read (0 if never)."""
        row = self._db.execute(
            "SELECT offset FROM files WHERE identity = ?", (identity,)
        ).fetchone()
        return int(row["offset"]) if row is not None else 0

    def set_offset(self, identity: str, path: Path, offset: int) -> None:
        """Record how far a file has been read (inside the batch's transaction)."""
        self._db.execute(
            "INSERT INTO files (identity, path, offset, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (identity) DO UPDATE SET path = excluded.path, "
            "offset = excluded.offset, updated = excluded.updated",
            (identity, str(path), offset, time.time()),
        )

    def forget_files(self, keep: Iterable[str]) -> None:
        """Drop the read positions of files that are gone (deleted backups)."""
        kept = list(keep)
        marks = ",".join("?" * len(kept))
        self._db.execute(f"DELETE FROM files WHERE identity NOT IN ({marks})", kept)  # noqa: S608

    # -- calls -----------------------------------------------------------------------------

    def add_record(self, record: QueueRecord, now: float) -> None:
        """Remember a call or content record; the other half may come later."""
        column = "call" if record.kind == "call" else "content"
        self._db.execute(
            f"INSERT INTO calls (trace_id, span_id, {column}, service, first_seen) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?) "
            f"ON CONFLICT (trace_id, span_id) DO UPDATE SET {column} = "
            f"COALESCE(calls.{column}, excluded.{column}), "
            "service = COALESCE(calls.service, excluded.service)",
            (
                record.trace_id,
                record.span_id,
                json.dumps(record.attributes, ensure_ascii=False),
                record.service_name,
                now,
            ),
        )

    def pending(self) -> list[StoredCall]:
        """Calls not judged or skipped yet, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM calls WHERE state = 'pending' ORDER BY first_seen, trace_id, span_id"
        ).fetchall()
        return [_call(row) for row in rows]

    def pending_count(self) -> int:
        """How many calls wait to be judged."""
        row = self._db.execute("SELECT COUNT(*) AS n FROM calls WHERE state = 'pending'").fetchone()
        return int(row["n"])

    def finish_call(self, call: StoredCall, state: str, reason: str | None = None) -> None:
        """Mark a call ``done`` (every rubric has a verdict) or ``skipped`` (with a reason)."""
        self._db.execute(
            "UPDATE calls SET state = ?, reason = ? WHERE trace_id = ? AND span_id = ?",
            (state, reason, call.trace_id, call.span_id),
        )

    def prune(self, before: float) -> int:
        """Forget judged and skipped calls first seen before ``before`` (their content).

        Verdicts stay: a call seen again is still never judged twice.
        """
        cursor = self._db.execute(
            "DELETE FROM calls WHERE state != 'pending' AND first_seen < ?", (before,)
        )
        return cursor.rowcount

    def call(self, trace_id: str, span_id: str) -> StoredCall | None:
        """The stored call with these ids, if any."""
        row = self._db.execute(
            "SELECT * FROM calls WHERE trace_id = ? AND span_id = ?", (trace_id, span_id)
        ).fetchone()
        return _call(row) if row is not None else None

    # -- results ---------------------------------------------------------------------------

    def judged_rubrics(self, call: StoredCall) -> set[str]:
        """The rubrics that already have a verdict on this call."""
        rows = self._db.execute(
            "SELECT rubric FROM results WHERE trace_id = ? AND span_id = ?",
            (call.trace_id, call.span_id),
        ).fetchall()
        return {str(row["rubric"]) for row in rows}

    def add_result(self, result: Result) -> bool:
        """Store a verdict (committed at once); False if one was already stored."""
        marks = ",".join("?" * len(_RESULT_COLUMNS))
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO results ({','.join(_RESULT_COLUMNS)}) "  # noqa: S608
            f"VALUES ({marks})",
            tuple(getattr(result, c) for c in _RESULT_COLUMNS),
        )
        return cursor.rowcount == 1

    def unexported(self) -> list[Result]:
        """Verdicts whose export has not been confirmed, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM results WHERE exported = 0 ORDER BY created, trace_id, span_id, rubric"
        ).fetchall()
        return [_result(row) for row in rows]

    def mark_exported(self, results: Iterable[Result]) -> None:
        """Confirm the export of these verdicts."""
        keys = [(r.trace_id, r.span_id, r.rubric) for r in results]
        with self.transaction():
            self._db.executemany(
                "UPDATE results SET exported = 1 WHERE trace_id = ? AND span_id = ? AND rubric = ?",
                keys,
            )

    def results(self) -> list[Result]:
        """Every stored verdict, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM results ORDER BY created, trace_id, span_id, rubric"
        ).fetchall()
        return [_result(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Calls by state (``pending``, ``done``, ``skipped``) and verdicts (``results``)."""
        out = {"pending": 0, "done": 0, "skipped": 0}
        for row in self._db.execute("SELECT state, COUNT(*) AS n FROM calls GROUP BY state"):
            out[str(row["state"])] = int(row["n"])
        row = self._db.execute("SELECT COUNT(*) AS n FROM results").fetchone()
        out["results"] = int(row["n"])
        return out


def _call(row: sqlite3.Row) -> StoredCall:
    return StoredCall(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        call=_json(row["call"]),
        content=_json(row["content"]),
        service=row["service"],
        first_seen=float(row["first_seen"]),
    )


def _json(text: str | None) -> dict[str, Value] | None:
    if text is None:
        return None
    value: Any = json.loads(text)
    return value if isinstance(value, dict) else None


def _result(row: sqlite3.Row) -> Result:
    return Result(**{column: row[column] for column in _RESULT_COLUMNS})


@contextmanager
def worker_lock(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock: one worker per state directory.

    The kernel releases it when the process dies, however it dies.

    Raises:
        StateLocked: another process holds it.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateLocked(
                f"another eval worker is running on {state_dir} (lock {LOCK_FILE})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
