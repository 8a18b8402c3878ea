"""Streaming calls: the span stays open while the app reads the stream.

The app keeps the very ``Stream``/``AsyncStream`` object the SDK returned (same type,
same identity, same chunks). llmtel swaps the stream's private chunk iterator for one
that looks at each chunk on its way through, and wraps ``close``/``aclose`` of the
stream's HTTP response (every way of closing a stream, the SDK's helpers included,
ends there). The call ends exactly once, at the first of these, recorded as
``llmtel.stream.end``:

- ``completed``: the last chunk has been read (the iterator is exhausted);
- ``error``: reading raised (the exception goes on to the app unchanged);
- ``closed_early``: the app closed the stream before the end (``close()``, leaving
  ``with``/``async with``, a helper's ``close``), or its task was cancelled while
  reading;
- ``abandoned``: the stream was garbage-collected unread or half-read.

Closing is never deferred or scheduled: ``await stream.close()`` awaits the SDK's own
coroutine and nothing else, so no coroutine is left un-awaited.

If a future SDK drops the private iterator, ``instrument`` returns False and the
caller ends the call right away with what it knows: the stream still works.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from types import AsyncGeneratorType, GeneratorType
from typing import Any, Protocol

from llmtel import _attributes as attr
from llmtel._call import Call, Result
from llmtel._state import report_error


class Accumulator(Protocol):
    """Reads the chunks of one stream into a ``Result``."""

    def on_item(self, item: object) -> None:
        """Read one chunk (may raise: the caller catches)."""

    def result(self) -> Result:
        """Summarise what was read so far."""
        ...


class _Tracker:
    """Ends a streamed call once. Holds no reference to the stream itself."""

    def __init__(self, call: Call, accumulator: Accumulator) -> None:
        self._call = call
        self._accumulator = accumulator
        self._lock = threading.Lock()
        self._done = False
        self.reading = False  # inside the SDK's own iterator (whose cleanup closes too)

    def on_item(self, item: object) -> None:
        try:
            self._accumulator.on_item(item)
        except Exception:
            report_error("read a stream chunk")

    def finish(self, end: attr.StreamEnd, error: BaseException | None = None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        result = Result()
        try:
            result = self._accumulator.result()
        except Exception:
            report_error("summarise a stream")
        result.stream_end = end
        result.error = error
        self._call.finish(result)

    def closed(self) -> None:
        """The stream's response was closed: by the app unless the iterator itself did it."""
        if not self.reading:
            self.finish("closed_early")


def _sync_chunks(inner: Iterator[Any], tracker: _Tracker) -> Generator[Any, None, None]:
    try:
        while True:
            tracker.reading = True
            try:
                item = next(inner)
            except StopIteration:
                tracker.finish("completed")
                return
            finally:
                tracker.reading = False
            tracker.on_item(item)
            yield item
    except GeneratorExit:  # the generator is being collected: the stream was dropped
        tracker.finish("abandoned")
        raise
    except BaseException as exc:
        tracker.finish("error", exc)
        raise


async def _async_chunks(inner: AsyncIterator[Any], tracker: _Tracker) -> AsyncGenerator[Any, None]:
    try:
        while True:
            tracker.reading = True
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                tracker.finish("completed")
                return
            finally:
                tracker.reading = False
            tracker.on_item(item)
            yield item
    except GeneratorExit:
        tracker.finish("abandoned")
        raise
    except asyncio.CancelledError:  # the app's task stopped reading: not a failure
        tracker.finish("closed_early")
        raise
    except BaseException as exc:
        tracker.finish("error", exc)
        raise


def _wrap_sync_close(response: object, tracker: _Tracker) -> bool:
    close = getattr(response, "close", None)
    if not callable(close):
        return False
    original: Callable[[], object] = close

    def closing() -> object:
        try:
            return original()
        finally:
            tracker.closed()

    response.close = closing  # type: ignore[attr-defined]
    return True


def _wrap_async_close(response: object, tracker: _Tracker) -> bool:
    aclose = getattr(response, "aclose", None)
    if not callable(aclose):
        return False
    original: Callable[[], Any] = aclose

    async def closing() -> object:
        try:
            return await original()
        finally:
            tracker.closed()

    response.aclose = closing  # type: ignore[attr-defined]
    return True


def instrument(stream: object, call: Call, accumulator: Accumulator) -> bool:
    """Make ``call`` end with ``stream``. Return False if this SDK's stream can't be hooked."""
    inner = getattr(stream, "_iterator", None)
    response = getattr(stream, "response", None)
    tracker = _Tracker(call, accumulator)
    if isinstance(inner, GeneratorType):
        if not _wrap_sync_close(response, tracker):
            return False
        stream._iterator = _sync_chunks(inner, tracker)  # type: ignore[attr-defined]
    elif isinstance(inner, AsyncGeneratorType):
        if not _wrap_async_close(response, tracker):
            return False
        stream._iterator = _async_chunks(inner, tracker)  # type: ignore[attr-defined]
    else:
        return False
    weakref.finalize(stream, tracker.finish, "abandoned")
    return True
