"""llmtel: observability for LLM applications.

Call ``llmtel.init()`` once at start-up; from then on every OpenAI SDK call (chat
completions, responses, embeddings) sends a span, a log record and metrics over OTLP
to an OpenTelemetry Collector, with its cost in USD.

Example:
    >>> import llmtel
    >>> llmtel.init("support-bot")  # doctest: +SKIP
    >>> with llmtel.context(user_id="u-42", endpoint="support-answer"):  # doctest: +SKIP
    ...     reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    >>> llmtel.feedback(reply, "thumbs_up")  # doctest: +SKIP
"""

from llmtel._attributes import FeedbackKind, Outcome, StreamEnd
from llmtel._context import context
from llmtel._feedback import call_id, feedback
from llmtel._instrumentor import VERSION as __version__
from llmtel._instrumentor import OpenAIInstrumentor
from llmtel._setup import force_flush, init, shutdown
from llmtel._state import CaptureContent

__all__ = [
    "CaptureContent",
    "FeedbackKind",
    "OpenAIInstrumentor",
    "Outcome",
    "StreamEnd",
    "__version__",
    "call_id",
    "context",
    "feedback",
    "force_flush",
    "init",
    "shutdown",
]
