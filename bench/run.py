"""`make bench`: emitter overhead, collector throughput and freshness, in one run, one table.

    .venv/bin/python -m bench.run            # everything (about 30 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # a few minutes, for checking the harness
    .venv/bin/python -m bench.run --parts overhead,memory

The native stack runs LLMTEL_BENCH_PORT_OFFSET (default 35000) ports above the
defaults, in var/bench/stack. Results: var/bench/results.md and results.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bench import machine, report
from bench.collector import run as collector_run
from bench.collector.run import CollectorResult
from bench.freshness import Freshness
from bench.overhead import memory
from bench.overhead import run as overhead_run
from bench.overhead.run import Result

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
T = TypeVar("T")
PARTS = ("overhead", "collector", "freshness", "memory")


def _native_stack(offset: int) -> Any:  # noqa: ANN401 - native/stack.py is a script, not a package
    sys.path.insert(0, str(ROOT / "native"))
    native = importlib.import_module("stack")
    return native.NativeStack(native.Ports().shifted(offset), OUT / "stack")


def binaries() -> dict[str, Path]:
    """Build what is missing (telemetrygen included) and return NAME -> path."""
    script = ROOT / "native" / "build-binaries.sh"
    subprocess.run(["bash", str(script), "--with-bench"], check=True)
    out = subprocess.run(
        ["bash", str(script), "--with-bench", "--print"], check=True, capture_output=True, text=True
    ).stdout
    return {name: Path(path) for name, path in (line.split("=", 1) for line in out.splitlines())}


def _freshness(ports: Any, url: str, calls: int, rate: float) -> Freshness:  # noqa: ANN401
    from bench import freshness as freshness_part

    return freshness_part.run(ports, url, _bodies(), calls, rate)


def _memory(url: str, seconds: float) -> dict[str, memory.Run]:
    return memory.run(url, _bodies(), seconds)


def _bodies() -> Path:
    if not (overhead_run.bodies_dir() / "record.json").exists():
        overhead_run.prepare()
    return overhead_run.bodies_dir()


def _up(stack: Any, attempts: int = 4) -> bool:  # noqa: ANN401
    """Start the stack; retry when a port is briefly taken (35000+ is in the ephemeral range)."""
    for attempt in range(1, attempts + 1):
        try:
            stack.up(build=False)
            return True
        except Exception as exc:
            if "address already in use" not in str(exc) or attempt == attempts:
                raise
            print(f"[bench] a stack port was taken, retrying ({attempt}/{attempts})", flush=True)
            time.sleep(5)
    return False


def _jsonable(value: object) -> Any:  # noqa: ANN401 - JSON
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: checks the harness")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    facts = machine.facts()
    started = time.monotonic()
    print(f"[bench] {'quick' if args.quick else 'full'} run of {', '.join(parts)} on {facts}")

    overhead: Result | None = None
    runs: dict[str, memory.Run] | None = None
    collector: CollectorResult | None = None
    freshness: Freshness | None = None
    failures: list[str] = []

    def attempt(part: str, action: Callable[[], T]) -> T | None:
        # A part that fails is reported with its error; the others still run.
        try:
            return action()
        except Exception as exc:
            failures.append(f"{part}: {type(exc).__name__}: {str(exc)[-1500:]}")
            print(f"[bench] {part} FAILED: {type(exc).__name__}: {str(exc)[-600:]}", flush=True)
            return None

    if "overhead" in parts:  # first, with no stack running to add noise
        overhead = attempt("overhead", lambda: overhead_run.run(quick=args.quick))

    stack: Any = None
    if {"collector", "freshness", "memory"} & set(parts):
        bins = binaries()
        offset = int(os.environ.get("LLMTEL_BENCH_PORT_OFFSET", "35000"))
        stack = _native_stack(offset)
        stack.down(quiet=True)
        if attempt("native stack", lambda: _up(stack)) is None:
            stack = None
    try:
        if stack is not None and "collector" in parts:
            collector = attempt("collector", lambda: collector_run.run(stack, bins, args.quick))
        if stack is not None and "freshness" in parts:
            calls, rate = (40, 4.0) if args.quick else (200, 2.0)
            url = f"http://127.0.0.1:{stack.ports.collector_otlp_http}"
            freshness = attempt(
                "freshness",
                lambda: _freshness(stack.ports, url, calls, rate),
            )
        if stack is not None and "memory" in parts:
            url = f"http://127.0.0.1:{stack.ports.collector_otlp_http}"
            seconds = 60 if args.quick else 600
            runs = attempt("memory", lambda: _memory(url, seconds))
    finally:
        if stack is not None:
            stack.down(quiet=True)

    minutes = (time.monotonic() - started) / 60
    facts["load_end"] = machine.facts()["load"]
    sections = [
        f"llmtel benchmarks ({'quick' if args.quick else 'full'} run, {minutes:.0f} min): "
        f"{facts['nproc']} cores ({facts['cpu']}), {facts['ram']} RAM, "
        f"load average (1, 5, 15 min) at start {facts['load']}, at end {facts['load_end']}, "
        f"Python {facts['python']}, {facts['os']}; a machine shared with other work",
        report.table(overhead, runs, collector, freshness),
    ]
    if overhead is not None:
        sections.append(report.overhead_detail(overhead))
        versions = {v: overhead.versions.get(v, {}) for v in overhead.versions}
        sections.append("Versions: " + json.dumps(versions))
        if overhead.errors:
            sections.append("Overhead errors: " + json.dumps(overhead.errors, indent=1))
        if overhead.profile:
            sections.append(overhead.profile)
    if collector is not None:
        sections.append(report.collector_detail(collector))
        if collector.errors:
            sections.append("Collector errors: " + "; ".join(collector.errors))
    if failures:
        sections.append("Failed parts:\n" + "\n".join(f"- {f}" for f in failures))
    if freshness is not None and freshness.error:
        sections.append(f"Freshness error: {freshness.error}")
    if runs is not None:
        for run in runs.values():
            if run.error:
                sections.append(f"Memory run {run.label} failed: {run.error}")
    text = "\n\n".join(sections) + "\n"
    (OUT / "results.md").write_text(text)
    (OUT / "results.json").write_text(
        json.dumps(
            _jsonable(
                {
                    "machine": facts,
                    "quick": args.quick,
                    "overhead": overhead,
                    "memory": runs,
                    "collector": collector,
                    "freshness": freshness,
                }
            ),
            indent=1,
        )
    )
    print("\n" + text)
    print(f"[bench] written to {OUT / 'results.md'} and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
