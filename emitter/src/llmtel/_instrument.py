"""Patching of the ``openai`` SDK's resources.

These methods are wrapped on the class (with wrapt), so every client, created before
or after instrumentation, is covered, and so are the SDK paths that go through them:

- Chat Completions: ``Completions.create`` and ``.parse``, sync and async; also
  ``with_raw_response``, ``with_streaming_response`` and ``chat.completions.stream()``.
- Responses: ``Responses.create`` and ``.parse``, sync and async; also
  ``with_raw_response``, ``with_streaming_response`` and ``responses.stream()``.
- Embeddings: ``Embeddings.create``, sync and async; also ``with_raw_response`` and
  ``with_streaming_response``.

The app gets back exactly what the SDK returned: the same object, or for a stream the
same ``Stream`` object with an observing iterator inside (see ``_streams``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import wrapt
from openai import AsyncStream, Stream
from openai._legacy_response import LegacyAPIResponse
from openai.resources import embeddings as _embeddings_resource
from openai.resources.chat.completions import completions as _completions_resource
from openai.resources.responses import responses as _responses_resource
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from llmtel import _call, _chat, _embeddings, _registry, _responses, _state, _streams
from llmtel._state import CaptureContent, report_error

_log = logging.getLogger("llmtel")
_lock = threading.Lock()
_handles: list[tuple[type, str, object, object]] = []

# Set while an instrumented method runs, so one nested in it (an app subclass calling
# super().create(), a helper calling create()) is not recorded twice.
_inside: ContextVar[bool] = ContextVar("llmtel_inside_call", default=False)


@dataclass(frozen=True, slots=True)
class _Api:
    """How to read one API's requests, answers and streams."""

    request: Callable[[Mapping[str, Any], CaptureContent], _call.Request]
    result: Callable[[Any, CaptureContent], _call.Result]
    result_type: type
    stream: Callable[[_call.Call], _streams.Accumulator] | None


CHAT = _Api(_chat.request, _chat.result_from_completion, ChatCompletion, _chat.ChatStream)
RESPONSES = _Api(
    _responses.request, _responses.result_from_response, Response, _responses.ResponsesStream
)
EMBEDDINGS = _Api(
    _embeddings.request, _embeddings.result_from_embeddings, CreateEmbeddingResponse, None
)


def _begin(api: _Api, instance: object, kwargs: Mapping[str, Any]) -> _call.Call | None:
    telemetry = _state.get()
    if telemetry is None or _inside.get():
        return None
    try:
        request = api.request(kwargs, telemetry.capture_content)
    except Exception:
        report_error("read a request")
        return None
    return _call.start(telemetry, getattr(instance, "_client", None), request)


def _end(api: _Api, call: _call.Call, returned: object) -> None:
    """Finish ``call`` with what the SDK method returned. Never raises."""
    try:
        _registry.remember_object(returned, call.ref)
        if isinstance(returned, LegacyAPIResponse):
            # with_raw_response: the body is already read and parse() caches its result,
            # so the app's own parse() returns this very object (or instrumented stream).
            _end(api, call, returned.parse())
        elif isinstance(returned, Stream | AsyncStream):
            if api.stream is None or not _streams.instrument(returned, call, api.stream(call)):
                call.finish(_call.Result(responded=True))
        elif isinstance(returned, api.result_type):
            call.finish(api.result(returned, call.capture))
        else:  # with_streaming_response: the body is the app's to read
            call.finish(_call.Result())
    except Exception:
        report_error("read a response")
        call.finish(_call.Result())


def _sync_wrapper(api: _Api) -> Callable[..., object]:
    def wrapper(
        wrapped: Callable[..., object],
        instance: object,
        args: tuple[object, ...],
        kwargs: dict[str, Any],
    ) -> object:
        call = _begin(api, instance, kwargs)
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
        _end(api, call, result)
        return result

    return wrapper


def _async_wrapper(api: _Api) -> Callable[..., Awaitable[object]]:
    async def wrapper(
        wrapped: Callable[..., Awaitable[object]],
        instance: object,
        args: tuple[object, ...],
        kwargs: dict[str, Any],
    ) -> object:
        call = _begin(api, instance, kwargs)
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
        _end(api, call, result)
        return result

    return wrapper


def _targets() -> list[tuple[type, str, Callable[..., object]]]:
    c, r, e = _completions_resource, _responses_resource, _embeddings_resource
    return [
        (c.Completions, "create", _sync_wrapper(CHAT)),
        (c.Completions, "parse", _sync_wrapper(CHAT)),
        (c.AsyncCompletions, "create", _async_wrapper(CHAT)),
        (c.AsyncCompletions, "parse", _async_wrapper(CHAT)),
        (r.Responses, "create", _sync_wrapper(RESPONSES)),
        (r.Responses, "parse", _sync_wrapper(RESPONSES)),
        (r.AsyncResponses, "create", _async_wrapper(RESPONSES)),
        (r.AsyncResponses, "parse", _async_wrapper(RESPONSES)),
        (e.Embeddings, "create", _sync_wrapper(EMBEDDINGS)),
        (e.AsyncEmbeddings, "create", _async_wrapper(EMBEDDINGS)),
    ]


def instrument() -> None:
    """Wrap the SDK's methods (once)."""
    with _lock:
        if _handles:
            return
        for cls, name, wrapper in _targets():
            original = cls.__dict__.get(name)
            if original is None:  # an SDK without this method
                continue
            handle = wrapt.FunctionWrapper(original, wrapper)
            setattr(cls, name, handle)
            _handles.append((cls, name, original, handle))


def uninstrument() -> None:
    """Restore the SDK's methods, unless another library wrapped them since."""
    with _lock:
        while _handles:
            cls, name, original, handle = _handles.pop()
            if cls.__dict__.get(name) is handle:
                setattr(cls, name, original)
            else:
                # Unwrapping would also remove the other library's wrapper; ours stays but
                # passes calls straight through while llmtel is not instrumenting.
                _log.warning("llmtel: %s.%s was wrapped again by another library", cls, name)
