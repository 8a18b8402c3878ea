"""Calibration: a sample of verdicts for people to label, and judge-human agreement.

``export_sample`` writes, per rubric, a random sample of the judge's verdicts with what
the judge saw (CSV for a spreadsheet, or JSONL), and empty ``human_label`` and
``human_score`` columns. People fill those in; ``agreement`` reads the file back and
reports Cohen's kappa per rubric, so you know which rubrics the judge can be trusted on.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._config import ERROR, FAIL, PASS, EvalConfig
from ._kappa import cohen_kappa, weighted_kappa
from ._store import Store
from ._worker import subject_of

COLUMNS = (
    "eval_id",
    "rubric",
    "human_label",
    "human_score",
    "judge_label",
    "judge_score",
    "judge_explanation",
    "scale",
    "pass_threshold",
    "model",
    "prompt_version",
    "endpoint",
    "conversation",
    "answer",
)
"""The columns of an export file, in order. ``human_label`` and ``human_score`` are blank."""


def export_sample(
    store: Store,
    config: EvalConfig,
    *,
    per_rubric: int = 50,
    seed: int | None = None,
    rubrics: Sequence[str] = (),
) -> list[dict[str, str]]:
    """Pick up to ``per_rubric`` verdicts of each rubric at random, with the judged text.

    Verdicts labelled ``error``, and those whose call's text is no longer kept, are left
    out. Rows come sorted by rubric, then ``eval_id``.

    Example:
        >>> import tempfile
        >>> from llmtel.evals import load_config
        >>> export_sample(Store(Path(tempfile.mkdtemp())), load_config())
        []
    """
    chosen = set(rubrics)
    by_rubric: dict[str, list[dict[str, str]]] = defaultdict(list)
    for result in store.results():
        if result.label == ERROR or (chosen and result.rubric not in chosen):
            continue
        call = store.call(result.trace_id, result.span_id)
        subject = subject_of(call) if call is not None else None
        if subject is None:
            continue
        rubric = config.rubric(result.rubric)
        scale = rubric.scale if rubric is not None else ""
        by_rubric[result.rubric].append(
            {
                "eval_id": result.eval_id,
                "rubric": result.rubric,
                "human_label": "",
                "human_score": "",
                "judge_label": result.label,
                "judge_score": _number(result.score),
                "judge_explanation": result.explanation,
                "scale": scale,
                "pass_threshold": str(rubric.pass_threshold) if scale == "1-5" and rubric else "",
                "model": result.model or "",
                "prompt_version": result.prompt_version or "",
                "endpoint": result.endpoint or "",
                "conversation": subject.conversation,
                "answer": subject.answer,
            }
        )
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    rows: list[dict[str, str]] = []
    for name in sorted(by_rubric):
        candidates = by_rubric[name]
        picked = rng.sample(candidates, min(per_rubric, len(candidates)))
        rows.extend(sorted(picked, key=lambda row: row["eval_id"]))
    return rows


def write_rows(rows: Iterable[dict[str, str]], path: Path | None, fmt: str) -> str:
    """Write rows as ``csv`` or ``jsonl`` to ``path`` (or return the text when None)."""
    buffer = io.StringIO()
    if fmt == "jsonl":
        for row in rows:
            buffer.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    text = buffer.getvalue()
    if path is not None:
        path.write_text(text, encoding="utf-8")
    return text


def read_rows(path: Path) -> list[dict[str, str]]:
    """Read a labelled export file back (CSV, or JSONL when it ends in ``.jsonl``).

    Raises:
        ValueError: the file lacks the ``rubric``, ``judge_label`` or ``human_label`` column.
    """
    text = path.read_text(encoding="utf-8-sig")
    rows: list[dict[str, Any]]
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    needed = {"rubric", "judge_label", "human_label"}
    for number, row in enumerate(rows, start=1):
        missing = needed - set(row)
        if missing:
            raise ValueError(f"{path} row {number}: no {', '.join(sorted(missing))} column")
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]


@dataclass(frozen=True)
class Agreement:
    """Judge-human agreement on one rubric.

    Attributes:
        rubric: The rubric's name.
        items: Rows a human labelled (and the judge did not answer ``error``).
        agreement: Share of those rows where both gave the same label.
        kappa: Cohen's kappa of the labels (None when undefined).
        weighted_kappa: For 1-5 rubrics with human scores, quadratic-weighted kappa of
            the scores (None otherwise).

    Example:
        >>> Agreement("grounded", 50, 0.7, 0.4, None).reading
        'fair'
    """

    rubric: str
    items: int
    agreement: float
    kappa: float | None
    weighted_kappa: float | None

    @property
    def reading(self) -> str:
        """Landis & Koch's words for the kappa: slight, fair, moderate, substantial..."""
        if self.kappa is None:
            return "undefined"
        for bound, word in ((0.0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate")):
            if self.kappa <= bound:
                return word
        return "substantial" if self.kappa <= 0.8 else "almost perfect"


def agreement(rows: Sequence[dict[str, str]]) -> list[Agreement]:
    """Per rubric, how well the judge's labels agree with the humans' (Cohen's kappa).

    A row counts when ``human_label`` is set, or ``human_score`` for a 1-5 rubric (the
    label then follows ``pass_threshold``). Labels compare case-insensitively.

    Raises:
        ValueError: a ``human_score`` is not an integer from 1 to 5.

    Example:
        >>> rows = [
        ...     {"rubric": "grounded", "judge_label": j, "human_label": h}
        ...     for j, h in [("pass", "pass"), ("fail", "fail"), ("pass", "fail"), ("fail", "fail")]
        ... ]
        >>> result = agreement(rows)[0]
        >>> result.items, result.agreement, result.kappa
        (4, 0.75, 0.5)
    """
    labels: dict[str, list[tuple[str, str]]] = defaultdict(list)
    scores: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        judge_label = row.get("judge_label", "").strip().lower()
        if judge_label in ("", ERROR):
            continue
        human_label = row.get("human_label", "").strip().lower()
        human_score = _score(row.get("human_score", ""))
        judge_score = _score(row.get("judge_score", "")) if row.get("scale") == "1-5" else None
        if human_score is not None and not human_label and row.get("scale") == "1-5":
            threshold = int(row.get("pass_threshold") or 4)
            human_label = PASS if human_score >= threshold else FAIL
        if not human_label:
            continue
        labels[row["rubric"]].append((judge_label, human_label))
        if human_score is not None and judge_score is not None:
            scores[row["rubric"]].append((judge_score, human_score))
    out = []
    for rubric in sorted(labels):
        pairs = labels[rubric]
        agreed = sum(1 for judge, human in pairs if judge == human)
        scored = scores.get(rubric, [])
        out.append(
            Agreement(
                rubric=rubric,
                items=len(pairs),
                agreement=agreed / len(pairs),
                kappa=cohen_kappa([j for j, _ in pairs], [h for _, h in pairs]),
                weighted_kappa=(
                    weighted_kappa([j for j, _ in scored], [h for _, h in scored], range(1, 6))
                    if scored
                    else None
                ),
            )
        )
    return out


def format_agreement(results: Sequence[Agreement]) -> str:
    """A table of agreement per rubric, for the terminal."""
    if not results:
        return "no labelled rows: fill in human_label (or human_score) and run again"
    lines = [f"{'rubric':<24} {'items':>5} {'agree':>6} {'kappa':>6}  reading"]
    for item in results:
        kappa = "n/a" if item.kappa is None else f"{item.kappa:.2f}"
        line = (
            f"{item.rubric:<24} {item.items:>5} {item.agreement:>6.0%} {kappa:>6}  {item.reading}"
        )
        if item.weighted_kappa is not None:
            line += f" (scores: weighted kappa {item.weighted_kappa:.2f})"
        lines.append(line)
    return "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else str(value)


def _score(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"human_score {raw!r} is not a number") from None
    if not 1 <= value <= 5 or value != float(raw):
        raise ValueError(f"human_score {raw!r}: expected an integer from 1 to 5")
    return value
