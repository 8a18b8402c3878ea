"""Memory with the collector down vs up: the same app twice, side by side, RSS sampled.

Both runs start together (so the machine's load is the same for both) and send to a
collector: the native stack's for "up", a port nothing listens on for "down". The
figure is the difference of peak RSS, against the issue's 20 MB bound.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "var" / "bench"
MAX_EXTRA_MB = 20.0


@dataclass
class Run:
    """One app run's RSS samples (MB) and what it reported."""

    label: str
    samples: list[tuple[float, float]] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def peak(self) -> float:
        return max((mb for _, mb in self.samples), default=float("nan"))

    @property
    def last(self) -> float:
        return self.samples[-1][1] if self.samples else float("nan")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def closed_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(up_endpoint: str, bodies: Path, seconds: float, rate: float = 50) -> dict[str, Run]:
    """Run the app against ``up_endpoint`` and against a closed port, at once."""
    endpoints = {"up": up_endpoint, "down": f"http://127.0.0.1:{closed_port()}"}
    runs = {label: Run(label) for label in endpoints}
    # stderr goes to files: with the collector down the SDK logs every failed export,
    # and an unread pipe fills and blocks the app (it then stops making calls).
    LOGS.mkdir(parents=True, exist_ok=True)
    stderr = {label: (LOGS / f"memory-{label}.stderr").open("w") for label in endpoints}
    processes = {
        label: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.overhead.memory_app",
                "--endpoint",
                endpoint,
                "--rate",
                str(rate),
                "--seconds",
                str(seconds),
                "--bodies",
                str(bodies),
                "--service",
                f"bench-memory-{label}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr[label],
            text=True,
        )
        for label, endpoint in endpoints.items()
    }
    start = time.monotonic()
    print(f"[memory] {seconds:.0f} s at {rate:.0f} calls/s, collector up and down", flush=True)
    next_report = 60.0
    while any(p.poll() is None for p in processes.values()):
        elapsed = time.monotonic() - start
        for label, process in processes.items():
            mb = _rss_mb(process.pid) if process.poll() is None else None
            if mb is not None:
                runs[label].samples.append((elapsed, mb))
        if elapsed >= next_report:
            now = ", ".join(f"{r.label} {r.last:.1f} MB" for r in runs.values())
            print(f"[memory] {elapsed:.0f} s: {now}", flush=True)
            next_report += 60
        time.sleep(2)
    for label, process in processes.items():
        out, _ = process.communicate()
        stderr[label].close()
        try:
            report = json.loads(out.strip().splitlines()[-1])
            runs[label].calls, runs[label].seconds = report["calls"], report["seconds"]
        except (IndexError, json.JSONDecodeError, KeyError):
            err = (LOGS / f"memory-{label}.stderr").read_text()
            runs[label].error = f"exit {process.returncode}: {err.strip()[-400:]}"
    return runs
