"""Which call an SDK object (or a response id) came from, for feedback.

A call id is ``"<trace id, 32 hex>-<span id, 16 hex>"``: the ids of the call's span.
It is known as soon as the call starts, whether or not it succeeds, and it links a
feedback record to the call's trace and span without any lookup, so it can travel
to a browser and come back in another process.

In-process, llmtel also remembers which call returned which object (the completion,
the stream, the raw response: by identity, for as long as the app holds the object)
and the most recent response ids (a bounded table), so ``llmtel.call_id(response)``
and ``llmtel.feedback(response, ...)`` work on the object the app already has.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from opentelemetry.util.types import AttributeValue

_CALL_ID = re.compile(r"([0-9a-f]{32})-([0-9a-f]{16})")
MAX_REMEMBERED = 10_000

_lock = threading.Lock()
_by_object: dict[int, CallRef] = {}
_by_call_id: OrderedDict[str, CallRef] = OrderedDict()
_by_response_id: OrderedDict[str, CallRef] = OrderedDict()


@dataclass(frozen=True, slots=True)
class CallRef:
    """The span of one call and the bounded attributes a feedback record repeats."""

    trace_id: int
    span_id: int
    attributes: dict[str, AttributeValue]  # completed (response id) when the call ends

    @property
    def call_id(self) -> str:
        """The call id: ``"<trace id>-<span id>"`` in lowercase hex."""
        return f"{self.trace_id:032x}-{self.span_id:016x}"


def parse_call_id(text: str) -> CallRef | None:
    """Return the call a call id names, or None if ``text`` is not a call id."""
    match = _CALL_ID.fullmatch(text.strip().lower())
    if match is None:
        return None
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if trace_id == 0 or span_id == 0:
        return None
    return CallRef(trace_id, span_id, {})


def _forget(key: int) -> None:
    with _lock:
        _by_object.pop(key, None)


def remember_object(obj: object, ref: CallRef) -> None:
    """Remember that ``obj`` came from the call ``ref``, for as long as ``obj`` lives."""
    key = id(obj)
    try:
        weakref.finalize(obj, _forget, key)
    except TypeError:  # no weak references to this type: nothing to remember it by
        return
    with _lock:
        _by_object[key] = ref


def _bounded_put(table: OrderedDict[str, CallRef], key: str, ref: CallRef) -> None:
    with _lock:
        table[key] = ref
        table.move_to_end(key)
        while len(table) > MAX_REMEMBERED:
            table.popitem(last=False)


def remember_call(ref: CallRef) -> None:
    """Remember a started call by its call id (the newest ``MAX_REMEMBERED`` are kept)."""
    _bounded_put(_by_call_id, ref.call_id, ref)


def remember_response_id(response_id: str, ref: CallRef) -> None:
    """Remember the call of a response id (the newest ``MAX_REMEMBERED`` are kept)."""
    _bounded_put(_by_response_id, response_id, ref)


def lookup(target: object) -> CallRef | None:
    """Return the call ``target`` names: a call id, a response id, or an SDK object.

    A call id of another process still names its call (without the attributes this
    process would have remembered).
    """
    if isinstance(target, str):
        with _lock:
            ref = _by_call_id.get(target) or _by_response_id.get(target)
        return ref if ref is not None else parse_call_id(target)
    with _lock:
        ref = _by_object.get(id(target))
    if ref is not None:
        return ref
    response_id = getattr(target, "id", None)
    if isinstance(response_id, str):
        with _lock:
            return _by_response_id.get(response_id)
    return None
