"""The handles the instrumentation writes to while llmtel is initialised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opentelemetry._logs import Logger
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Tracer

CaptureContent = Literal["preview", "none"]
"""How much prompt and completion text goes into log records.

``"preview"`` (the default) writes the first 200 characters of the last user message,
the system message and the first answer; ``"none"`` writes no content at all.
"""


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Everything one instrumented call needs to emit its span, log record and metrics."""

    tracer: Tracer
    logger: Logger
    duration: Histogram
    token_usage: Histogram
    capture_content: CaptureContent


_current: Telemetry | None = None


def get() -> Telemetry | None:
    """Return the active telemetry handles, or None when llmtel is not initialised."""
    return _current


def set_current(telemetry: Telemetry | None) -> None:
    """Install (or, with None, remove) the telemetry handles."""
    global _current
    _current = telemetry
