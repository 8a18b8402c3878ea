"""Emitter overhead: interleaved worker processes per variant, aggregated into figures.

Each repetition runs every variant once, in a shuffled order, each in a fresh process
(comparators in their own venvs). Inside a telemetry variant's process every
instrumented window is paired with a plain-call window next to it (see ``worker``); a
variant's added cost in a repetition is the median over its pairs of the difference,
so the machine's load, which drifts on a shared machine, mostly cancels. The ``bare``
process (no telemetry imported at all) gives the absolute cost of the call. Figures
are the median over repetitions with the interquartile range.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.overhead import bodies, profile, record, venvs

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("bare", "floor", "llmtel", "official", "openllmetry")
SHAPE_LABELS = {
    "chat": "chat.completions.create",
    "stream17": "17-chunk stream",
    "stream117": "117-chunk stream",
    "responses": "responses.create",
}
# Targets from the issue: llmtel's added CPU <= 1.5x the floor's, <= 0.5x the official
# instrumentation's, and <= 5 us per stream chunk.
MAX_VS_FLOOR, MAX_VS_OFFICIAL, MAX_US_PER_CHUNK = 1.5, 0.5, 5.0


@dataclass
class Settings:
    """How much to measure."""

    reps: int
    rounds: int
    calls: dict[str, int]
    warmup: int

    @classmethod
    def for_mode(cls, quick: bool) -> Settings:
        if quick:
            return cls(2, 2, {"chat": 100, "stream17": 60, "stream117": 15, "responses": 100}, 20)
        # Every window is paired with a plain one, so this is about 8 minutes on 2 cores.
        return cls(6, 3, {"chat": 200, "stream17": 100, "stream117": 30, "responses": 200}, 40)


@dataclass
class Result:
    """Everything the overhead part measured."""

    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # variant -> shape -> per-repetition median CPU us per call
    cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # variant -> shape -> per-repetition median of (instrumented - plain) over paired windows
    paired: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # variant -> shape -> spans / log records per call
    signals: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    profile: str | None = None

    def added(self, variant: str, shape: str) -> list[float]:
        """Per-repetition added CPU (us per call) of ``variant`` over the plain call."""
        pairs = self.paired.get(variant, {}).get(shape)
        if pairs:
            return pairs
        mine, bare = self.cpu.get(variant, {}).get(shape), self.cpu.get("bare", {}).get(shape)
        if not mine or not bare:
            return []
        return [m - b for m, b in zip(mine, bare, strict=False)]

    def instrumented(self, variant: str, shape: str) -> bool:
        """Whether ``variant`` produced a span for ``shape`` (else its cost means nothing)."""
        if variant == "bare":
            return True
        return self.signals.get(variant, {}).get(shape, {}).get("spans", 0) >= 1

    def per_chunk(self, variant: str) -> list[float]:
        """Per-repetition marginal added CPU per stream chunk (117 vs 17 chunks)."""
        long, short = self.added(variant, "stream117"), self.added(variant, "stream17")
        return [(a - b) / 100 for a, b in zip(long, short, strict=False)]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _run_worker(python: Path, variant: str, settings: Settings, extra: list[str]) -> dict[str, Any]:
    command = [
        str(python),
        "-m",
        "bench.overhead.worker",
        "--variant",
        variant,
        "--bodies",
        str(bodies_dir()),
        "--rounds",
        str(settings.rounds),
        "--warmup",
        str(settings.warmup),
        "--calls-per-shape",
        json.dumps(settings.calls),
        *extra,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        out: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        return {"variant": variant, "error": f"worker exited {done.returncode}: {tail}"}
    return out


def bodies_dir() -> Path:
    """Where the rendered bodies and llmtel's record live."""
    return ROOT / "var" / "bench" / "bodies"


def prepare() -> dict[str, Path | str]:
    """Bodies, llmtel's record for the floor, and one interpreter per variant (or an error)."""
    bodies.render(bodies_dir())
    record.write(bodies_dir())
    pythons: dict[str, Path | str] = {v: Path(sys.executable) for v in ("bare", "floor", "llmtel")}
    for name in venvs.COMPARATORS:
        venv = venvs.ensure(name)
        pythons[name] = venv.python if venv.python is not None else str(venv.error)
    return pythons


def run(quick: bool, seed: int = 7) -> Result:
    """Measure every variant; profile llmtel where it misses a target."""
    settings = Settings.for_mode(quick)
    pythons = prepare()
    result = Result()
    for variant, python in pythons.items():
        if isinstance(python, str):
            result.errors[variant] = python
    runnable = [v for v in VARIANTS if isinstance(pythons.get(v), Path)]
    order = random.Random(seed)  # noqa: S311 - a shuffle, not a secret
    for rep in range(settings.reps):
        sequence = runnable[:]
        order.shuffle(sequence)
        print(f"[overhead] repetition {rep + 1}/{settings.reps}: {' '.join(sequence)}", flush=True)
        for variant in sequence:
            python = pythons[variant]
            assert isinstance(python, Path)
            out = _run_worker(python, variant, settings, [])
            if "error" in out:
                result.errors[variant] = str(out["error"])
                continue
            result.versions[variant] = out["versions"]
            result.skipped[variant] = out.get("skipped", [])
            for shape, data in out["shapes"].items():
                cell = result.cpu.setdefault(variant, {}).setdefault(shape, [])
                cell.append(stats.median(data["cpu_us"]))
                plain = data.get("plain_cpu_us") or []
                if plain:
                    diffs = [a - b for a, b in zip(data["cpu_us"], plain, strict=False)]
                    pairs = result.paired.setdefault(variant, {}).setdefault(shape, [])
                    pairs.append(stats.median(diffs))
                result.signals.setdefault(variant, {})[shape] = data["per_call"]
    missed = misses(result)
    if missed and "llmtel" in runnable:
        shapes = sorted({shape for shape, _ in missed})
        print(f"[overhead] profiling llmtel on {', '.join(shapes)}: {missed}", flush=True)
        result.profile = profile.summarise(
            lambda variant, extra: _run_worker(Path(sys.executable), variant, settings, extra),
            shapes,
            settings.calls,
        )
    return result


def misses(result: Result) -> list[tuple[str, str]]:
    """(shape, which target) for every target llmtel misses."""
    missed: list[tuple[str, str]] = []
    for shape in SHAPE_LABELS:
        if shape == "stream117" or not result.instrumented("llmtel", shape):
            continue
        llmtel = stats.median(result.added("llmtel", shape))
        if result.instrumented("floor", shape):
            floor = stats.median(result.added("floor", shape))
            if floor > 0 and llmtel / floor > MAX_VS_FLOOR:
                missed.append((shape, "floor"))
        if result.instrumented("official", shape):
            official = stats.median(result.added("official", shape))
            if official > 0 and llmtel / official > MAX_VS_OFFICIAL:
                missed.append((shape, "official"))
    if stats.median(result.per_chunk("llmtel")) > MAX_US_PER_CHUNK:
        missed.append(("stream117", "per chunk"))
    return missed
