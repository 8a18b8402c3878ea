"""llmtel: observability for LLM applications.

Call ``llmtel.init()`` once at start-up; from then on every OpenAI SDK chat call sends
a span, a log record and metrics over OTLP to an OpenTelemetry Collector.

Example:
    >>> import llmtel
    >>> llmtel.init("support-bot")  # doctest: +SKIP
    >>> with llmtel.context(user_id="u-42"):  # doctest: +SKIP
    ...     client.chat.completions.create(model="gpt-4o-mini", messages=[...])
"""

from llmtel._attributes import Outcome
from llmtel._context import context
from llmtel._setup import _VERSION as __version__
from llmtel._setup import force_flush, init, shutdown
from llmtel._state import CaptureContent

__all__ = [
    "CaptureContent",
    "Outcome",
    "__version__",
    "context",
    "force_flush",
    "init",
    "shutdown",
]
