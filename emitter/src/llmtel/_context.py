"""Application context (who, which conversation, which endpoint and prompt version)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import ParamSpec, TypeVar, cast

from llmtel import _attributes as attr

_EMPTY: Mapping[str, str] = MappingProxyType({})
_app_context: ContextVar[Mapping[str, str]] = ContextVar("llmtel_app_context", default=_EMPTY)

# Bounded values: these may also label metrics. Ids never do.
METRIC_KEYS = (attr.LLMTEL_ENDPOINT, attr.LLMTEL_PROMPT_VERSION)

_P = ParamSpec("_P")
_R = TypeVar("_R")


class context:
    """Attach who, what conversation, which endpoint and prompt version to LLM calls.

    Every OpenAI call made inside the block (or inside the decorated function, sync or
    async) carries the values on its span and log records: ``user.id``, ``session.id``,
    ``gen_ai.conversation.id``, ``llmtel.endpoint`` and ``llmtel.prompt.version``.
    The endpoint and prompt version are meant to have a handful of values (a use case
    such as ``"support-answer"``, a version such as ``"v3"``): they also label the
    metrics, so a dashboard can split latency, tokens and cost by them. Ids never
    become metric attributes. Nothing set here is ever sent to the LLM provider (no
    outbound HTTP header carries it).

    Blocks nest: an inner block overrides the values it sets and keeps the others.
    The values live in ``contextvars``, so threads and asyncio tasks each see their own.

    Args:
        user_id: Your identifier of the end user (not an e-mail address or a name).
        session_id: Your identifier of the user's session.
        conversation_id: Your identifier of the conversation (thread) the call belongs to.
        endpoint: The app's endpoint or use case making the calls (low cardinality).
        prompt_version: The version of the prompt template in use (low cardinality).

    Example:
        >>> import llmtel
        >>> with llmtel.context(user_id="u-42", endpoint="support-answer"):
        ...     pass  # client.chat.completions.create(...) calls here carry both
        >>> @llmtel.context(endpoint="summarise", prompt_version="v3")
        ... async def summarise(text: str) -> str:
        ...     return text  # await client.chat.completions.create(...) here
    """

    __slots__ = ("_tokens", "_values")

    def __init__(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
        endpoint: str | None = None,
        prompt_version: str | None = None,
    ) -> None:
        self._values: dict[str, str] = {
            key: str(value)
            for key, value in (
                (attr.USER_ID, user_id),
                (attr.SESSION_ID, session_id),
                (attr.GEN_AI_CONVERSATION_ID, conversation_id),
                (attr.LLMTEL_ENDPOINT, endpoint),
                (attr.LLMTEL_PROMPT_VERSION, prompt_version),
            )
            if value is not None
        }
        self._tokens: list[Token[Mapping[str, str]]] = []

    def __enter__(self) -> None:
        values = {**_app_context.get(), **self._values}
        self._tokens.append(_app_context.set(MappingProxyType(values)))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _app_context.reset(self._tokens.pop())

    def _fresh(self) -> context:
        # Each decorated call enters its own copy, so concurrent calls (threads, tasks,
        # recursion) never share a token stack.
        copy = context.__new__(context)
        copy._values = self._values
        copy._tokens = []
        return copy

    def __call__(self, func: Callable[_P, _R]) -> Callable[_P, _R]:
        """Decorate ``func`` so that every call to it runs inside this context."""
        if inspect.iscoroutinefunction(func):
            coroutine_function = cast("Callable[_P, Awaitable[object]]", func)

            @functools.wraps(func)
            async def run_async(*args: _P.args, **kwargs: _P.kwargs) -> object:
                with self._fresh():
                    return await coroutine_function(*args, **kwargs)

            return cast("Callable[_P, _R]", run_async)

        @functools.wraps(func)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with self._fresh():
                return func(*args, **kwargs)

        return run


def current() -> Mapping[str, str]:
    """Return the attributes set by the enclosing ``context`` blocks."""
    return _app_context.get()
