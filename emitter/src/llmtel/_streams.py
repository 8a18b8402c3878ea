"""Streaming calls: the span stays open while the app reads the stream.

The app keeps the very ``Stream`` object the SDK returned (same type, same identity).
llmtel swaps the stream's private chunk iterator for one that looks at each chunk on
its way through, and patches the instance's ``close``. The call ends exactly once, at
the first of:

- the last chunk has been read (the iterator is exhausted),
- reading raised (the exception goes on to the app unchanged),
- the app closed the stream (``close()`` or leaving ``with stream:``),
- the stream was garbage-collected unread or half-read (a weakref finalizer).

If a future SDK drops the private iterator, ``instrument`` returns False and the
caller ends the call right away with what it knows: the stream still works.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from types import AsyncGeneratorType, GeneratorType
from typing import Any

from llmtel._call import Call, Result, cap, content_text, field_of, read_usage

_log = logging.getLogger("llmtel")

_PREVIEW_BUFFER = 1024  # characters kept of the first choice before capping


class _Accumulator:
    """Builds a ``Result`` from chunks. Holds no reference to the stream itself."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._lock = threading.Lock()
        self._result = Result()
        self._reasons: dict[int, str] = {}
        self._text: list[str] = []
        self._text_len = 0
        self._refusal: list[str] = []
        self._tool_names: list[str] = []

    def on_chunk(self, chunk: object) -> None:
        try:
            self._read(chunk)
        except Exception:
            _log.exception("llmtel: failed to read a stream chunk")

    def _read(self, chunk: object) -> None:
        result = self._result
        if result.time_to_first_chunk_s is None:
            result.time_to_first_chunk_s = time.perf_counter() - self._call.start
        model = field_of(chunk, "model")
        if isinstance(model, str) and model:
            result.response_model = model
        chunk_id = field_of(chunk, "id")
        if isinstance(chunk_id, str) and chunk_id:
            result.response_id = chunk_id
        usage = field_of(chunk, "usage")
        if usage is not None:
            read_usage(result, usage)
        choices = field_of(chunk, "choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            index = field_of(choice, "index")
            index = index if isinstance(index, int) else 0
            reason = field_of(choice, "finish_reason")
            if isinstance(reason, str):
                self._reasons[index] = reason
            if index != 0:
                continue
            delta = field_of(choice, "delta")
            if delta is None:
                continue
            refusal = field_of(delta, "refusal")
            if isinstance(refusal, str) and refusal:
                result.refusal = True
                self._refusal.append(refusal)
            if self._call.previews:
                text = content_text(field_of(delta, "content"))
                if text and self._text_len < _PREVIEW_BUFFER:
                    self._text.append(text)
                    self._text_len += len(text)
                calls = field_of(delta, "tool_calls")
                if isinstance(calls, list):
                    for tool_call in calls:
                        name = field_of(field_of(tool_call, "function"), "name")
                        if isinstance(name, str) and name:
                            self._tool_names.append(name)

    def finish(self, error: BaseException | None = None) -> None:
        try:
            with self._lock:
                result = self._result
                result.error = error
                result.finish_reasons = [self._reasons[i] for i in sorted(self._reasons)]
                if self._call.previews:
                    if self._text:
                        result.output_preview = cap("".join(self._text))
                    elif self._refusal:
                        result.output_preview = cap("".join(self._refusal))
                    elif self._tool_names:
                        result.output_preview = cap(
                            "[tool_calls: " + ", ".join(self._tool_names) + "]"
                        )
        except Exception:
            _log.exception("llmtel: failed to summarise a stream")
        self._call.finish(result)


def _sync_chunks(inner: Iterator[Any], acc: _Accumulator) -> Generator[Any, None, None]:
    try:
        for chunk in inner:
            acc.on_chunk(chunk)
            yield chunk
    except GeneratorExit:
        acc.finish()
        raise
    except BaseException as exc:
        acc.finish(exc)
        raise
    acc.finish()


async def _async_chunks(inner: AsyncIterator[Any], acc: _Accumulator) -> AsyncGenerator[Any, None]:
    try:
        async for chunk in inner:
            acc.on_chunk(chunk)
            yield chunk
    except GeneratorExit:
        acc.finish()
        raise
    except BaseException as exc:
        acc.finish(exc)
        raise
    acc.finish()


def instrument(stream: object, call: Call) -> bool:
    """Make ``call`` end with ``stream``. Return False if this SDK's stream can't be hooked."""
    inner = getattr(stream, "_iterator", None)
    close = getattr(type(stream), "close", None)
    if not callable(close):
        return False
    acc = _Accumulator(call)
    ref = weakref.ref(stream)  # the patched close must not keep the stream alive
    if isinstance(inner, GeneratorType):

        def sync_close() -> None:
            try:
                if (target := ref()) is not None:
                    close(target)
            finally:
                acc.finish()

        stream._iterator = _sync_chunks(inner, acc)  # type: ignore[attr-defined]
        stream.close = sync_close  # type: ignore[attr-defined]
    elif isinstance(inner, AsyncGeneratorType):

        async def async_close() -> None:
            try:
                if (target := ref()) is not None:
                    await close(target)
            finally:
                acc.finish()

        stream._iterator = _async_chunks(inner, acc)  # type: ignore[attr-defined]
        stream.close = async_close  # type: ignore[attr-defined]
    else:
        return False
    weakref.finalize(stream, acc.finish)
    return True
