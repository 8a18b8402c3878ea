"""Where llmtel's added time goes: a differential cProfile, llmtel minus the bare call.

Both variants are profiled over the same calls; a function llmtel makes run more often
than the bare call does adds its own time in proportion to the extra calls, so what is
counted is the time the instrumentation adds, wherever it is spent (its own code, the
OpenTelemetry SDK, OTLP encoding, or the standard library it calls). cProfile slows
every Python call down, so read the shares and the ranking, not the absolute numbers.
"""

from __future__ import annotations

import pstats
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_AREAS = (
    ("llmtel", "/llmtel/"),
    ("genai-prices (llmtel's cost)", "/genai_prices/"),
    ("OTLP encoding", "/opentelemetry/exporter/"),
    ("OTLP encoding", "/opentelemetry/proto/"),
    ("OTLP encoding", "/google/protobuf/"),
    ("OTel SDK: attributes", "/opentelemetry/attributes/"),
    ("OTel SDK: metrics", "/opentelemetry/sdk/metrics/"),
    ("OTel SDK: logs", "/opentelemetry/sdk/_logs/"),
    ("OTel SDK: traces", "/opentelemetry/sdk/trace/"),
    ("OTel SDK: other", "/opentelemetry/"),
    ("wrapt", "/wrapt/"),
    ("openai SDK, httpx2, pydantic", "/openai/"),
    ("openai SDK, httpx2, pydantic", "/httpx2/"),
    ("openai SDK, httpx2, pydantic", "/pydantic"),
    ("Python: threading, locks", "threading.py"),
    ("Python: threading, locks", "acquire"),
)

Key = tuple[str, int, str]


def _area(key: Key) -> str:
    text = f"{key[0]}:{key[2]}"
    for area, fragment in _AREAS:
        if fragment in text:
            return area
    return "Python: builtins, stdlib"


def _own_us_per_call(path: Path, calls: int) -> dict[Key, tuple[float, float]]:
    """Function -> (own time in us per call, call count per call)."""
    entries: dict[Key, tuple[Any, ...]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    return {key: (1e6 * e[2] / calls, e[1] / calls) for key, e in entries.items()}


def _where(key: Key) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    short = filename.split("site-packages/")[-1].split("/src/")[-1]
    return f"{name} ({short}:{line})"


def _summary(
    shape: str, mine: dict[Key, tuple[float, float]], bare: dict[Key, tuple[float, float]]
) -> str:
    # A function the bare call runs just as often adds nothing (its time difference is
    # noise); one run more often adds its own time in proportion to the extra calls.
    added = {
        k: us * max(0.0, n - bare.get(k, (0.0, 0.0))[1]) / n if n else 0.0
        for k, (us, n) in mine.items()
    }
    total_mine = sum(v[0] for v in mine.values())
    total_bare = sum(v[0] for v in bare.values())
    extra = sum(added.values()) or 1.0
    by_area: dict[str, float] = {}
    for key, us in added.items():
        by_area[_area(key)] = by_area.get(_area(key), 0.0) + us
    lines = [
        f"Profile, {shape}: llmtel adds {extra:,.0f} us of own time per call under cProfile "
        f"(whole call {total_bare:,.0f} -> {total_mine:,.0f} us), by area:"
    ]
    for area, us in sorted(by_area.items(), key=lambda item: -item[1]):
        if abs(us) >= 0.01 * abs(extra):
            lines.append(f"  {area:30} {us:8,.0f} us  {100 * us / extra:5.1f} %")
    lines.append("  functions adding the most own time (us per call, calls per call):")
    for key, us in sorted(added.items(), key=lambda item: -item[1])[:12]:
        lines.append(f"    {us:7,.1f} us  {mine[key][1]:6.1f}x  {_where(key)}")
    return "\n".join(lines)


def summarise(
    run_worker: Callable[[str, list[str]], dict[str, Any]], shapes: list[str], calls: dict[str, int]
) -> str:
    """Profile bare and llmtel on each shape (2 windows each); return the text summaries."""
    parts = []
    with tempfile.TemporaryDirectory(prefix="llmtel-bench-profile-") as tmp:
        for shape in shapes:
            paths = {v: Path(tmp) / f"{shape}-{v}.pstats" for v in ("bare", "llmtel")}
            errors = []
            for variant, path in paths.items():
                out = run_worker(
                    variant, ["--shapes", shape, "--rounds", "2", "--profile", str(path)]
                )
                if "error" in out or not path.exists():
                    errors.append(f"{variant}: {out.get('error')}")
            if errors:
                parts.append(f"Profile of {shape} failed: {'; '.join(errors)}")
                continue
            n = 2 * calls[shape]
            parts.append(
                _summary(
                    shape, _own_us_per_call(paths["llmtel"], n), _own_us_per_call(paths["bare"], n)
                )
            )
    return "\n\n".join(parts)
