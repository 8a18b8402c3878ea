"""The one table `make bench` prints (Markdown), and the detail tables under it."""

from __future__ import annotations

from bench import stats
from bench.collector.run import CollectorResult
from bench.freshness import Freshness
from bench.overhead import memory
from bench.overhead.run import (
    MAX_US_PER_CHUNK,
    MAX_VS_FLOOR,
    MAX_VS_OFFICIAL,
    SHAPE_LABELS,
    Result,
)

COMPARATORS = {"official": "official", "openllmetry": "OpenLLMetry"}
FRESHNESS_TARGETS = {"metrics": 15.0, "traces": 5.0, "logs": 5.0}


def _yes(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _us(values: list[float]) -> str:
    return f"{stats.fmt_spread(values)} us" if values else "n/a"


def _overhead_rows(res: Result) -> list[list[str]]:
    rows = []
    for shape in ("chat", "stream17", "responses"):
        label = SHAPE_LABELS[shape]
        if not res.instrumented("llmtel", shape):
            rows.append(
                ["emitter", f"{label}: added CPU per call", "not instrumented", "", "", "n/a"]
            )
            continue
        mine = stats.median(res.added("llmtel", shape))
        notes, checks, ok = [], [], True
        for variant, name in (("floor", "floor"), *COMPARATORS.items()):
            if res.instrumented(variant, shape):
                notes.append(f"{name} {stats.fmt(stats.median(res.added(variant, shape)))}")
        floor = (
            stats.median(res.added("floor", shape)) if res.instrumented("floor", shape) else None
        )
        official = (
            stats.median(res.added("official", shape))
            if res.instrumented("official", shape)
            else None
        )
        if floor:
            checks.append(f"{mine / floor:.2f}x floor (<= {MAX_VS_FLOOR})")
            ok = ok and mine / floor <= MAX_VS_FLOOR
        if official:
            checks.append(f"{mine / official:.2f}x official (<= {MAX_VS_OFFICIAL})")
            ok = ok and mine / official <= MAX_VS_OFFICIAL
        rows.append(
            [
                "emitter",
                f"{label}: added CPU per call",
                _us(res.added("llmtel", shape)),
                ", ".join(notes) + " us",
                "; ".join(checks),
                _yes(ok if checks else None),
            ]
        )
    chunk = res.per_chunk("llmtel")
    others = [
        f"{name} {stats.fmt(stats.median(res.per_chunk(v)), 1)}"
        for v, name in COMPARATORS.items()
        if res.per_chunk(v)
    ]
    rows.append(
        [
            "emitter",
            "added CPU per stream chunk (117 vs 17 chunks)",
            f"{stats.fmt_spread(chunk, 1)} us" if chunk else "n/a",
            ", ".join(others) + " us" if others else "",
            f"<= {MAX_US_PER_CHUNK:g} us",
            _yes(stats.median(chunk) <= MAX_US_PER_CHUNK if chunk else None),
        ]
    )
    return rows


def _memory_row(runs: dict[str, memory.Run] | None) -> list[str]:
    if not runs:
        return ["emitter", "RSS, collector down - up", "not run", "", "", "n/a"]
    up, down = runs["up"], runs["down"]
    minutes = down.seconds / 60 if down.seconds else 0
    extra = down.peak - up.peak
    return [
        "emitter",
        f"peak RSS, collector down - up ({minutes:.0f} min at 50 calls/s)",
        f"{extra:+.1f} MB",
        f"down {down.peak:.1f} MB, up {up.peak:.1f} MB",
        f"<= {memory.MAX_EXTRA_MB:g} MB",
        _yes(extra <= memory.MAX_EXTRA_MB if not (down.error or up.error) else None),
    ]


def _collector_rows(res: CollectorResult | None) -> list[list[str]]:
    if res is None:
        return [["collector", "throughput", "not run", "", "", "n/a"]]
    rows = []
    for signal, item in (("traces", "spans"), ("logs", "logs")):
        shipped = res.searches.get("shipped", {}).get(signal)
        passthrough = res.searches.get("pass-through", {}).get(signal)
        best = shipped.best if shipped else None
        base = passthrough.best if passthrough else None
        if best is None and shipped and shipped.steps:
            best = shipped.steps[0]  # no step passed: its CPU figure still says what an item costs
        if best is None:
            rows.append(["collector", f"{item} per CPU-second", "not measured", "", "", "n/a"])
            continue
        per_core = best.per_cpu_second
        # Compared at the same offered rate: batching makes items cheaper under load.
        same = passthrough.at(best.rate) if passthrough else None
        base = same or base
        base_core = base.per_cpu_second if base else float("nan")
        share = per_core / base_core if base else float("nan")
        if best.ok:
            at = f"at {best.achieved:,.0f}/s sustained"
            if shipped and shipped.limited_by_load:
                at += ", collector not saturated"
        else:
            at = f"no step passed; {best.achieved:,.0f}/s reached at {best.rate:,.0f}/s offered"
        rows.append(
            [
                "collector",
                f"{item} per CPU-second, shipped config ({at})",
                f"{per_core:,.0f}",
                f"pass-through {stats.fmt(base_core)} at {base.rate if base else 0:,.0f}/s"
                f" ({100 * share:.0f} %)",
                ">= 10,000 and >= 50 % of pass-through",
                _yes(per_core >= 10_000 and share >= 0.5),
            ]
        )
    return rows


def _freshness_rows(res: Freshness | None) -> list[list[str]]:
    if res is None:
        return [["freshness", "call end -> queryable", "not run", "", "", "n/a"]]
    rows = []
    for backend, label in (
        ("metrics", "Prometheus count"),
        ("traces", "Jaeger trace"),
        ("logs", "VictoriaLogs log"),
    ):
        values = [v for v in getattr(res, backend) if v is not None]
        missing = len(getattr(res, backend)) - len(values)
        p50, p95 = stats.quantile(values, 0.5), stats.quantile(values, 0.95)
        target = FRESHNESS_TARGETS[backend]
        rows.append(
            [
                "freshness",
                f"{label}, p50 / p95 over {res.calls} calls",
                f"{stats.fmt(p50, 1)} / {stats.fmt(p95, 1)} s",
                f"max {stats.fmt(max(values, default=float('nan')), 1)} s"
                + (f", {missing} never seen" if missing else "")
                + (
                    f"; a new series: {stats.fmt(res.new_series_s, 1)} s"
                    if backend == "metrics" and res.new_series_s is not None
                    else ""
                ),
                f"p95 <= {target:g} s",
                _yes(p95 <= target and not missing if values else None),
            ]
        )
    return rows


def table(
    overhead: Result | None,
    runs: dict[str, memory.Run] | None,
    collector: CollectorResult | None,
    freshness: Freshness | None,
) -> str:
    """The summary table: every figure the issue asks for, its target, and whether it is met."""
    rows = [["part", "measure", "llmtel", "for comparison", "target", "met"]]
    rows += (
        _overhead_rows(overhead)
        if overhead
        else [["emitter", "overhead", "not run", "", "", "n/a"]]
    )
    rows.append(_memory_row(runs))
    rows += _collector_rows(collector)
    rows += _freshness_rows(freshness)
    return _markdown(rows)


def overhead_detail(res: Result) -> str:
    """CPU per call of every variant (absolute), and what each one emits per call."""
    rows = [["call", "bare call", "floor", "llmtel", "official", "OpenLLMetry"]]
    for shape, label in SHAPE_LABELS.items():
        row = [label, _us(res.cpu.get("bare", {}).get(shape, []))]
        for variant in ("floor", "llmtel", "official", "openllmetry"):
            if not res.cpu.get(variant, {}).get(shape):
                row.append("n/a")
                continue
            signals = res.signals.get(variant, {}).get(shape, {})
            spans, logs = signals.get("spans", 0), signals.get("logs", 0)
            row.append(
                f"+{stats.fmt_spread(res.added(variant, shape))} ({spans:g} span, {logs:g} log)"
            )
        rows.append(row)
    return (
        "CPU per call: the bare call, and what each variant adds (us, median [IQR] over "
        "repetitions; spans and log records it emits per call)\n\n" + _markdown(rows)
    )


def collector_detail(res: CollectorResult) -> str:
    """Every load step, and the ablation."""
    rows = [
        ["config", "signal", "target /s", "accepted /s", "lost", "per CPU-s", "drained", "passed"]
    ]
    for name, searches in res.searches.items():
        for signal, search in searches.items():
            for s in search.steps:
                rows.append(
                    [
                        name,
                        signal,
                        f"{s.rate:,.0f}",
                        f"{s.achieved:,.0f}",
                        f"{s.lost:.0f}",
                        stats.fmt(s.per_cpu_second),
                        str(s.drained),
                        _yes(s.ok),
                    ]
                )
    out = "Collector load steps (GOMAXPROCS=1)\n\n" + _markdown(rows)
    if res.costs:
        cost_rows = [["signal", "component", "CPU us per item", "share of the shipped config"]]
        for signal, costs in res.costs.items():
            base = res.baseline_us.get(signal, float("nan"))
            cost_rows.append([signal, "(whole shipped config)", stats.fmt(base, 1), "100 %"])
            for component, cost in sorted(costs.items(), key=lambda item: -item[1]):
                cost_rows.append(
                    [signal, component, stats.fmt(cost, 1), f"{100 * cost / base:.0f} %"]
                )
        rates = ", ".join(f"{s} at {r:,.0f}/s" for s, r in res.ablation_rates.items())
        out += (
            "\n\nWhat each shipped component costs: CPU per item of the full config minus "
            f"that of the config without it ({rates})\n\n" + _markdown(cost_rows)
        )
    return out


def _markdown(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)
