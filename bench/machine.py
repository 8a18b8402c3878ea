"""The facts a reader needs to weigh the figures: cores, CPU, memory, load."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def facts() -> dict[str, str]:
    """nproc, CPU model, RAM, load average and the Python version."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "load": load,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def load_now() -> str:
    """The 1-minute load average, for the progress lines."""
    return f"{os.getloadavg()[0]:.2f}"
