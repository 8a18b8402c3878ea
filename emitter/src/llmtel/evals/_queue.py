"""The eval queue on disk: the collector's current file and its rotated backups.

The collector's file exporter writes ``eval-queue.jsonl``; when it reaches its size
limit it is renamed ``eval-queue-<UTC time>.jsonl`` (``2006-01-02T15-04-05.000``, the
lumberjack rotation format) and a new ``eval-queue.jsonl`` starts. A file is known by
its inode and a digest of its first bytes, so a read position survives the rename,
and a new file that reuses an old inode is not mistaken for it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

QUEUE_FILE = "eval-queue.jsonl"
_IDENTITY_BYTES = 4096
_CHUNK = 1 << 20


@dataclass(frozen=True)
class QueueFile:
    """One file of the queue, as found by a scan."""

    path: Path
    identity: str
    size: int


def queue_paths(directory: Path, name: str = QUEUE_FILE) -> list[Path]:
    """The queue's files, oldest first: rotated backups by their time stamp, then the current.

    Example:
        >>> queue_paths(Path("/nonexistent"))
        []
    """
    stem, ext = os.path.splitext(name)
    backup = re.compile(
        re.escape(stem) + r"-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}" + re.escape(ext) + "$"
    )
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    backups = sorted(p for p in entries if backup.match(p.name) and p.is_file())
    current = directory / name
    return [*backups, current] if current.is_file() else backups


def identify(path: Path) -> QueueFile | None:
    """Identify a queue file, or None while it has no complete first line (or vanished)."""
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            head = handle.read(_IDENTITY_BYTES)
    except OSError:
        return None
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < _IDENTITY_BYTES:
        return None  # the first line is still being written
    digest = hashlib.sha256(head).hexdigest()[:16]
    return QueueFile(path, f"{stat.st_ino}-{digest}", stat.st_size)


def read_lines(path: Path, offset: int) -> Iterator[tuple[bytes, int]]:
    """Yield each complete line after ``offset`` with the offset just past it.

    A last line without its newline is still being written: it is left for the next read.
    """
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        handle.seek(offset)
        pending = bytearray()
        position = offset
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                return
            searched = len(pending)  # a long line: only the new bytes can hold its end
            pending += chunk
            start = 0
            while True:
                end = pending.find(b"\n", max(start, searched))
                if end < 0:
                    break
                position += end + 1 - start
                yield bytes(pending[start:end]), position
                start = end + 1
            del pending[:start]
