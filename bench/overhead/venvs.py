"""One virtualenv per comparator under var/bench-venvs/, made by the benchmark itself.

Each gets the comparator plus the same ``openai`` and OpenTelemetry SDK versions as the
project's .venv, so every figure runs on the same SDK setup and nothing the comparators
pull in ever reaches .venv or llmtel's dependencies. A venv is reused while its
requirement list is unchanged.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / "var" / "bench-venvs"

# name -> (distribution, version, module with OpenAIInstrumentor)
COMPARATORS = {
    "official": ("opentelemetry-instrumentation-genai-openai", "1.3b0"),
    "openllmetry": ("opentelemetry-instrumentation-openai", "0.62.4"),
}
_SHARED = ("openai", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-common")


@dataclass
class Venv:
    """A comparator's interpreter, or why there is none."""

    name: str
    python: Path | None
    error: str | None = None


def requirements(name: str) -> list[str]:
    """The pins for ``name``'s venv: the comparator and .venv's own SDK versions."""
    dist, version = COMPARATORS[name]
    return [f"{dist}=={version}"] + [f"{d}=={importlib.metadata.version(d)}" for d in _SHARED]


def ensure(name: str) -> Venv:
    """Create or reuse ``var/bench-venvs/NAME``; on failure return the exact error."""
    home = VENVS / name
    python = home / "bin" / "python"
    stamp = home / ".bench-requirements"
    wanted = "\n".join(requirements(name))
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return Venv(name, python)
    print(f"[overhead] creating {home} ({', '.join(requirements(name))})", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(home)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements(name),
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-6:])
            return Venv(name, None, f"`{' '.join(step[-4:])}` exited {done.returncode}: {tail}")
    stamp.write_text(wanted)
    return Venv(name, python)
