"""Start and stop llmtel's telemetry for the traffic command, without ever failing it."""

from __future__ import annotations

from collections.abc import Callable

import llmtel


def start_telemetry(service_name: str, report: Callable[[str], None]) -> Callable[[], None]:
    """Call ``llmtel.init(service_name=...)``; return a function that calls ``llmtel.shutdown()``.

    Telemetry is a guest: if ``init`` is missing or raises, or ``shutdown`` raises, the
    problem is reported in one line and the traffic goes on.
    """
    init = getattr(llmtel, "init", None)
    if not callable(init):
        report("note: llmtel.init() is not available; sending without telemetry")
        return _nothing
    try:
        init(service_name=service_name)
    except Exception as exc:  # telemetry must not stop the demo
        report(f"note: telemetry did not start ({type(exc).__name__}); sending anyway")
        return _nothing

    def stop() -> None:
        shutdown = getattr(llmtel, "shutdown", None)
        if not callable(shutdown):
            return
        try:
            shutdown()
        except Exception as exc:  # a failed flush is worth a line, not a traceback
            report(f"note: telemetry shutdown failed ({type(exc).__name__})")

    return stop


def _nothing() -> None:
    return None
