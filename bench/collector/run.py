"""The collector part: shipped vs pass-through config, per signal, then the ablation.

Runs on the benchmark's native stack: its own collector is stopped, the collector under
test takes its ports (so it exports to the stack's Jaeger and VictoriaLogs), and the
stack's collector is started again at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.collector import throughput
from bench.collector.process import Collector

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "var" / "bench" / "collector"
SIGNALS = ("traces", "logs")
CONFIGS = {"shipped": [throughput.SHIPPED], "pass-through": [throughput.PASSTHROUGH]}


@dataclass
class CollectorResult:
    """Searches per (config, signal) and the CPU cost of each shipped component."""

    searches: dict[str, dict[str, throughput.Search]] = field(default_factory=dict)
    # signal -> component -> CPU microseconds per item it adds (median of repeats)
    costs: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline_us: dict[str, float] = field(default_factory=dict)
    ablation_rates: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _collector(stack: Any, binary: Path, name: str, configs: list[Path]) -> Collector:  # noqa: ANN401
    work = WORK / name.replace("/", "_")
    env = {
        **stack.collector_env(),
        "LLMTEL_BLOB_DIR": str(work / "blob"),
        "LLMTEL_EVAL_QUEUE_DIR": str(work / "eval-queue"),
    }
    ports = {
        "otlp_http": stack.ports.collector_otlp_http,
        "health": stack.ports.collector_health,
        "telemetry": stack.ports.collector_telemetry,
    }
    return Collector(binary, configs, env, work, ports)


def _us_per_item(
    stack: Any,  # noqa: ANN401
    bins: dict[str, Path],
    name: str,
    configs: list[Path],
    signal: str,
    rate: float,
    seconds: float,
) -> float:
    collector = _collector(stack, bins["otelcol"], name, configs)
    collector.start()
    try:
        outcome = throughput.step(collector, bins["telemetrygen"], signal, rate, seconds, idle_s=3)
    finally:
        collector.stop()
    if outcome.error or outcome.lost or outcome.accepted == 0:
        return float("nan")
    return 1e6 * outcome.cpu_s / outcome.accepted


def run(stack: Any, bins: dict[str, Path], quick: bool) -> CollectorResult:  # noqa: ANN401
    """Search both configs for both signals, then price each shipped component."""
    rates = (
        [500.0, 2000, 5000, 10000]
        if quick
        else [250.0, 500, 1000, 2500, 5000, 7500, 10000, 15000, 20000]
    )
    seconds = 5.0 if quick else 10.0
    result = CollectorResult()
    stack.stop_service("otel-collector")
    try:
        for index, signal in enumerate(SIGNALS):
            order = list(CONFIGS) if index % 2 == 0 else list(reversed(CONFIGS))
            for name in order:
                print(f"[collector] {name} config, {signal}", flush=True)
                collector = _collector(stack, bins["otelcol"], name, CONFIGS[name])
                try:
                    collector.start()
                    found = throughput.search(
                        collector, bins["telemetrygen"], signal, rates, seconds
                    )
                except RuntimeError as exc:
                    result.errors.append(f"{name} {signal}: {exc}")
                    found = throughput.Search()
                finally:
                    collector.stop()
                result.searches.setdefault(name, {})[signal] = found
        _ablation(stack, bins, quick, result)
    finally:
        stack.start_service("otel-collector")
    return result


def _ablation(stack: Any, bins: dict[str, Path], quick: bool, result: CollectorResult) -> None:  # noqa: ANN401
    pipelines = throughput.pipelines_of(throughput.SHIPPED)
    seconds = 4.0 if quick else 8.0
    repeats = 1 if quick else 2
    for signal in SIGNALS:
        # Half of what the shipped config sustained (or reached, if no step passed).
        search = result.searches.get("shipped", {}).get(signal)
        reached = 1000.0
        if search is not None and search.steps:
            reached = (search.best or search.steps[0]).achieved
        # At least 1,000/s: below that the collector's idle CPU (flushes, GC, its own
        # metrics) is a large share of what is measured, and the differences drown in it.
        rate = float(max(1000, min(4000, round(0.5 * reached, -2))))
        # Enough items (3,000 quick, 8,000 full) that the fixed background costs average out.
        duration = max(seconds, min(30.0, (3000 if quick else 8000) / rate))
        result.ablation_rates[signal] = rate
        print(f"[collector] ablation, {signal} at {rate:,.0f}/s", flush=True)
        shipped = [throughput.SHIPPED]
        base = [
            _us_per_item(stack, bins, "ablation-base", shipped, signal, rate, duration)
            for _ in range(repeats)
        ]
        result.baseline_us[signal] = stats.median(base)
        costs: dict[str, float] = {}
        for component in throughput.components_for(signal, pipelines):
            overlay = throughput.overlay_without(
                component,
                pipelines,
                WORK / "overlays" / f"without-{component.replace('/', '_')}.yaml",
            )
            if overlay is None:
                continue
            without = [
                _us_per_item(
                    stack, bins, f"without-{component}", [*shipped, overlay], signal, rate, duration
                )
                for _ in range(repeats)
            ]
            costs[component] = result.baseline_us[signal] - stats.median(without)
            print(f"[collector]   {component}: {costs[component]:.1f} us/item", flush=True)
        result.costs[signal] = costs
