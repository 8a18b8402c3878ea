"""Collector throughput: step the load up until something is dropped, per config and signal.

A step sends ``rate`` items/s for a few seconds with telemetrygen, waits until the
collector's sending queues are empty, then reads the collector's own counters. It
passes when every generated item was accepted, nothing was refused, failed or dropped
at a queue, the queues drained within 15 s, and telemetrygen reached 90 % of the rate
or the collector still had CPU to spare. telemetrygen exports synchronously and paces
with a token bucket of burst 1, so the time a request spends in the collector is lost
to the rate: short of the rate with CPU to spare is latency, not saturation, and the
search goes on. It stops at the first failing step, once the collector is saturated
(busy >= 0.9 of its one core), or when a higher offered rate no longer raises the
accepted rate (telemetrygen or the shared machine is the limit: the figure is a lower
bound). The collector runs with GOMAXPROCS=1; "per core" is accepted items per
CPU-second of the collector process at the highest passing step.

The ablation runs the shipped config at one fixed rate with one component taken out
of every pipeline (an overlay restating the pipelines' lists), so the CPU a component
costs is the difference to the full config.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.collector import load
from bench.collector.process import Collector

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "collector-config" / "otelcol-config.yaml"
PASSTHROUGH = Path(__file__).resolve().parent / "passthrough.yaml"
ITEM = {"traces": "spans", "logs": "log_records"}


@dataclass
class Step:
    """One load step's outcome."""

    rate: float
    seconds: float
    generated: int = 0
    accepted: float = 0
    lost: float = 0  # refused + failed at the receiver, send/enqueue failures at exporters
    cpu_s: float = 0
    wall_s: float = 0
    drained: bool = True
    error: str = ""

    @property
    def achieved(self) -> float:
        return self.accepted / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.accepted / self.cpu_s if self.cpu_s > 0 else float("nan")

    @property
    def busy(self) -> float:
        """Cores the collector used per second of load (GOMAXPROCS=1: about 1.0 when saturated).

        Divided by the load's duration, not the step's wall time (which adds telemetrygen's
        start and the drain), so a collector that works through a backlog after the load
        counts as busy.
        """
        return self.cpu_s / self.seconds if self.seconds > 0 else float("nan")

    @property
    def saturated(self) -> bool:
        """The collector used (nearly) all of its one core."""
        return self.busy >= 0.9

    @property
    def latency_bound(self) -> bool:
        """Short of the offered rate while the collector had CPU to spare (see the docstring)."""
        return self.achieved < 0.9 * self.rate and not self.saturated

    @property
    def ok(self) -> bool:
        """Nothing lost, everything generated accepted and delivered, and the collector kept up."""
        return (
            not self.error
            and self.drained
            and self.lost == 0
            and self.accepted >= 0.99 * self.generated
            and (self.achieved >= 0.9 * self.rate or self.latency_bound)
        )


@dataclass
class Search:
    """Every step of one (config, signal) search, lowest rate first."""

    steps: list[Step] = field(default_factory=list)

    @property
    def best(self) -> Step | None:
        passed = [s for s in self.steps if s.ok]
        return passed[-1] if passed else None

    @property
    def limited_by_load(self) -> bool:
        """The last step passed unsaturated: the collector could take more than was offered."""
        return bool(self.steps) and self.steps[-1].ok and not self.steps[-1].saturated

    def at(self, rate: float) -> Step | None:
        """The passing step at ``rate``, if any."""
        return next((s for s in self.steps if s.rate == rate and s.ok), None)


def _loss(metrics: dict[str, float], item: str) -> float:
    return sum(
        metrics.get(name, 0.0)
        for name in (
            f"otelcol_receiver_refused_{item}",
            f"otelcol_receiver_failed_{item}",
            f"otelcol_exporter_send_failed_{item}",
            f"otelcol_exporter_enqueue_failed_{item}",
        )
    )


def step(
    collector: Collector,
    telemetrygen: Path,
    signal: str,
    rate: float,
    seconds: float,
    idle_s: float = 0,
) -> Step:
    """Send ``rate`` items/s of ``signal`` for ``seconds``; see the module docstring."""
    item = ITEM[signal]
    result = Step(rate, seconds)
    idle_rate = 0.0
    if idle_s > 0:  # the collector's own background CPU (flushes, GC), taken out below
        cpu_idle = collector.cpu_seconds()
        time.sleep(idle_s)
        idle_rate = (collector.cpu_seconds() - cpu_idle) / idle_s
    before, cpu0, t0 = collector.metrics(), collector.cpu_seconds(), time.monotonic()
    endpoint = f"127.0.0.1:{collector.ports['otlp_http']}"
    result.generated, result.error = load.run(telemetrygen, signal, endpoint, rate, seconds)
    deadline = time.monotonic() + 15
    while True:
        after = collector.metrics()
        busy = after.get("otelcol_exporter_queue_size", 0) + after.get(
            "otelcol_exporter_in_flight_requests", 0
        )
        if busy == 0 or time.monotonic() > deadline:
            result.drained = busy == 0
            break
        time.sleep(0.5)
    result.wall_s = time.monotonic() - t0
    result.cpu_s = collector.cpu_seconds() - cpu0 - idle_rate * result.wall_s
    result.accepted = after.get(f"otelcol_receiver_accepted_{item}", 0) - before.get(
        f"otelcol_receiver_accepted_{item}", 0
    )
    result.lost = _loss(after, item) - _loss(before, item)
    return result


def search(
    collector: Collector, telemetrygen: Path, signal: str, rates: list[float], seconds: float
) -> Search:
    """Step through ``rates`` until a step fails."""
    found = Search()
    for rate in rates:
        outcome = step(collector, telemetrygen, signal, rate, seconds)
        found.steps.append(outcome)
        verdict = "ok" if outcome.ok else "FAILED"
        if outcome.ok and outcome.latency_bound:
            verdict = "ok, latency-bound"
        print(
            f"[collector]   {signal} {rate:>7,.0f}/s: accepted {outcome.achieved:,.0f}/s, "
            f"lost {outcome.lost:.0f}, {outcome.per_cpu_second:,.0f} per CPU-s, "
            f"busy {outcome.busy:.2f} cores, "
            f"drained={outcome.drained} {verdict} {outcome.error[:200]}",
            flush=True,
        )
        previous = found.steps[-2].achieved if len(found.steps) > 1 else 0.0
        if not outcome.ok or outcome.saturated or outcome.achieved < 1.05 * previous:
            break  # the collector fell behind or is saturated, or the load no longer rises
    return found


def pipelines_of(config: Path) -> dict[str, dict[str, list[str]]]:
    """The ``service.pipelines`` section of a collector config."""
    data: dict[str, Any] = yaml.safe_load(config.read_text())
    pipelines: dict[str, dict[str, list[str]]] = data["service"]["pipelines"]
    return pipelines


def components_for(signal: str, pipelines: dict[str, dict[str, list[str]]]) -> list[str]:
    """Processors and connectors on ``signal``'s paths, in pipeline order."""
    seen: list[str] = []
    connectors = {
        name for p in pipelines.values() for name in p.get("receivers", []) if name != "otlp"
    }
    for name, pipeline in pipelines.items():
        if not name.startswith(signal):
            continue
        for component in pipeline.get("processors", []):
            if component not in seen:
                seen.append(component)
        for exporter in pipeline.get("exporters", []):
            if (
                exporter in connectors
                and not exporter.startswith("forward")
                and exporter not in seen
            ):
                seen.append(exporter)
    return seen


def overlay_without(
    component: str, pipelines: dict[str, dict[str, list[str]]], path: Path
) -> Path | None:
    """An overlay taking ``component`` out of every pipeline; None if that empties one."""
    restated: dict[str, dict[str, list[str]]] = {}
    for name, pipeline in pipelines.items():
        changed = {
            key: [c for c in pipeline.get(key, []) if c != component]
            for key in ("receivers", "processors", "exporters")
        }
        if not changed["receivers"] or not changed["exporters"]:
            return None
        restated[name] = changed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Generated by bench/collector/throughput.py: the shipped config without "
        f"{component}.\n" + yaml.safe_dump({"service": {"pipelines": restated}})
    )
    return path
