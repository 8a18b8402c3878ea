"""``llmtel.feedback`` and ``llmtel.call_id``: what users did about an answer."""

from __future__ import annotations

import logging
import time
from typing import get_args

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.util.types import AttributeValue

from llmtel import _attributes as attr
from llmtel import _context, _registry, _state
from llmtel._attributes import FeedbackKind

_log = logging.getLogger("llmtel")

_KINDS: tuple[str, ...] = get_args(FeedbackKind)


def call_id(response: object) -> str | None:
    """Return the call id of an OpenAI SDK result, or None if llmtel did not see the call.

    A call id is ``"<trace id>-<span id>"`` (32 and 16 lowercase hex digits): the ids of
    the call's span. Hand it to your front end with the answer and pass it back to
    ``llmtel.feedback`` when the user reacts, in this process or another one. Any
    object an instrumented call returned works (a completion, a ``Response``, a stream,
    a raw response), as does the ``id`` of a recent response (the last 10,000 calls).

    Example:
        >>> import llmtel
        >>> llmtel.call_id(object()) is None
        True
    """
    try:
        ref = _registry.lookup(response)
    except Exception:
        _state.report_error("look up a call id")
        return None
    return ref.call_id if ref is not None else None


def feedback(call: object, kind: FeedbackKind, *, comment: str | None = None) -> bool:
    """Record what a user did about an answer, linked to the call's trace and span.

    Emits one OTLP log record, event ``llmtel.feedback``, carrying the call's trace and
    span ids and the attributes ``llmtel.feedback.kind``, ``llmtel.call.id``, the
    ``llmtel.feedback.comment`` (left out when capture is ``"none"``: it is the user's
    own text), the app context of the enclosing ``llmtel.context`` and, for a call made
    in this process, its model, response id, endpoint and prompt version. Never raises.

    Args:
        call: The call: a call id (see ``call_id``), an object the call returned (a
            completion, a ``Response``, a stream, a raw response), or the ``id`` of a
            recent response of this process.
        kind: ``"thumbs_up"``, ``"thumbs_down"``, ``"retried"``, ``"abandoned"`` or
            ``"comment"``.
        comment: Free text from the user.

    Returns:
        True if the record was emitted; False (with a warning) if llmtel is not
        running, the call is unknown or the kind is not one of the five.

    Example:
        >>> import llmtel
        >>> llmtel.feedback("0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", "thumbs_up")
        False
    """
    try:
        return _feedback(call, kind, comment)
    except Exception:
        _state.report_error("record feedback")
        return False


def _feedback(call: object, kind: str, comment: str | None) -> bool:
    telemetry = _state.get()
    if telemetry is None:
        _log.warning("llmtel: feedback() before llmtel.init(); nothing recorded")
        return False
    if kind not in _KINDS:
        _log.warning("llmtel: unknown feedback kind %r (expected one of %s)", kind, _KINDS)
        return False
    ref = _registry.lookup(call)
    if ref is None:
        _log.warning("llmtel: feedback() for a call llmtel does not know: %r", call)
        return False
    attributes: dict[str, AttributeValue] = {
        **_context.current(),
        **ref.attributes,
        attr.LLMTEL_FEEDBACK_KIND: kind,
        attr.LLMTEL_CALL_ID: ref.call_id,
    }
    if comment is not None and telemetry.capture_content != "none":
        attributes[attr.LLMTEL_FEEDBACK_COMMENT] = str(comment)
    span_context = SpanContext(
        trace_id=ref.trace_id,
        span_id=ref.span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    telemetry.logger.emit(
        timestamp=time.time_ns(),
        context=trace.set_span_in_context(NonRecordingSpan(span_context)),
        severity_number=SeverityNumber.INFO,
        severity_text=SeverityNumber.INFO.name,
        body=f"feedback {kind}",
        attributes=attributes,
        event_name=attr.FEEDBACK_EVENT_NAME,
    )
    return True
