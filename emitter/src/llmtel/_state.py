"""The handles the instrumentation writes to while llmtel is instrumenting."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from opentelemetry._logs import Logger
from opentelemetry.metrics import Counter, Histogram
from opentelemetry.trace import Tracer

if TYPE_CHECKING:
    from llmtel._cost import Pricer

_log = logging.getLogger("llmtel")

CaptureContent = Literal["full", "preview", "none"]
"""How much prompt and answer text llmtel sends.

- ``"preview"`` (the default): the call's log record carries the first 200 characters
  of the last user message, the system message and the answer.
- ``"full"``: the previews, plus one ``llmtel.content`` log record per call with the
  whole prompt messages and answer as JSON; the collector routes it to the blob store.
- ``"none"``: no prompt, answer, system or tool-argument text anywhere, and exceptions
  are recorded by type only (their messages can quote the prompt).
"""


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Everything one instrumented call needs to emit its span, log records and metrics."""

    tracer: Tracer
    logger: Logger
    duration: Histogram
    token_usage: Histogram
    errors: Counter
    capture_content: CaptureContent
    pricer: Pricer


_current: Telemetry | None = None


def get() -> Telemetry | None:
    """Return the active telemetry handles, or None when llmtel is not instrumenting."""
    return _current


def set_current(telemetry: Telemetry | None) -> None:
    """Install (or, with None, remove) the telemetry handles."""
    global _current
    _current = telemetry


def report_error(what: str) -> None:
    """Log the exception being handled and count it in ``llmtel.emitter.errors``.

    Call it from an ``except`` block. It never raises: llmtel's own failures must not
    reach the app.
    """
    try:
        _log.exception("llmtel: failed to %s", what)
        telemetry = _current
        if telemetry is not None:
            telemetry.errors.add(1, {"llmtel.error.where": what})
    except Exception:  # noqa: S110 - logging itself failed; nothing is left to tell
        pass
