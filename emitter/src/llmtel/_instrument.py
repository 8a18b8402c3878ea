"""Patching of the ``openai`` SDK's chat completion resources.

``Completions.create`` and ``AsyncCompletions.create`` are wrapped on the class (with
wrapt), so every client, created before or after ``llmtel.init()``, is covered, and so
are the SDK paths that go through ``create``: ``with_raw_response``,
``with_streaming_response`` and the ``chat.completions.stream()`` helper.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import wrapt
from openai import AsyncStream, Stream
from openai._legacy_response import LegacyAPIResponse
from openai.resources.chat.completions import completions as _completions
from openai.types.chat import ChatCompletion

from llmtel import _call, _state, _streams

_log = logging.getLogger("llmtel")

_lock = threading.Lock()
_handles: list[tuple[type, object, object]] = []

# Set while a create() call runs, so a create() nested in it (an app subclass calling
# super().create()) is not recorded twice.
_inside: ContextVar[bool] = ContextVar("llmtel_inside_call", default=False)


def _begin(instance: object, kwargs: Mapping[str, Any]) -> _call.Call | None:
    telemetry = _state.get()
    if telemetry is None or _inside.get():
        return None
    return _call.start(telemetry, getattr(instance, "_client", None), kwargs)


def _end(call: _call.Call, result: object) -> None:
    """Finish ``call`` with what ``create`` returned. Never raises."""
    try:
        if isinstance(result, ChatCompletion):
            call.finish(_call.result_from_completion(result))
        elif isinstance(result, Stream | AsyncStream):
            if not _streams.instrument(result, call):
                call.finish(_call.Result())
        elif isinstance(result, LegacyAPIResponse):
            # with_raw_response: the body is already read and parse() caches its result,
            # so the app's own parse() returns this very object (or instrumented stream).
            _end(call, result.parse())
        else:  # with_streaming_response: the body is the app's to read
            call.finish(_call.Result())
    except Exception:
        _log.exception("llmtel: failed to record a chat completion")
        call.finish(_call.Result())


def _sync_create(
    wrapped: Callable[..., object],
    instance: object,
    args: tuple[object, ...],
    kwargs: dict[str, Any],
) -> object:
    call = _begin(instance, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    token = call.activate()
    inside = _inside.set(True)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        call.finish(_call.Result(error=exc))
        raise
    finally:
        _inside.reset(inside)
        call.deactivate(token)
    _end(call, result)
    return result


async def _async_create(
    wrapped: Callable[..., Awaitable[object]],
    instance: object,
    args: tuple[object, ...],
    kwargs: dict[str, Any],
) -> object:
    call = _begin(instance, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    token = call.activate()
    inside = _inside.set(True)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        call.finish(_call.Result(error=exc))
        raise
    finally:
        _inside.reset(inside)
        call.deactivate(token)
    _end(call, result)
    return result


def instrument() -> None:
    """Wrap the SDK's ``create`` methods (once)."""
    with _lock:
        if _handles:
            return
        for cls, wrapper in (
            (_completions.Completions, _sync_create),
            (_completions.AsyncCompletions, _async_create),
        ):
            original = cls.__dict__["create"]
            handle = wrapt.FunctionWrapper(original, wrapper)
            setattr(cls, "create", handle)  # noqa: B010 - mypy forbids assigning to a method
            _handles.append((cls, original, handle))


def uninstrument() -> None:
    """Restore the SDK's ``create`` methods, unless another library wrapped them since."""
    with _lock:
        while _handles:
            cls, original, handle = _handles.pop()
            if cls.__dict__.get("create") is handle:
                setattr(cls, "create", original)  # noqa: B010 - see instrument()
            else:
                # Unwrapping would also remove the other library's wrapper; ours stays but
                # passes calls straight through while llmtel is not initialised.
                _log.warning("llmtel: %s.create was wrapped again by another library", cls)
