"""Application context (user, session, conversation) attached to every call."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from llmtel import _attributes as attr

_EMPTY: Mapping[str, str] = MappingProxyType({})
_app_context: ContextVar[Mapping[str, str]] = ContextVar("llmtel_app_context", default=_EMPTY)


@contextmanager
def context(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
) -> Iterator[None]:
    """Attach who and what conversation to every LLM call made inside the block.

    The values go on the span and the log record of each call as ``user.id``,
    ``session.id`` and ``gen_ai.conversation.id``. They never become metric
    attributes (ids would explode metric cardinality). Blocks nest: an inner block
    overrides the values it sets and keeps the others. The values follow
    ``contextvars``, so they are safe with threads and asyncio tasks.

    Args:
        user_id: Your identifier of the end user (not an e-mail address or a name).
        session_id: Your identifier of the user's session.
        conversation_id: Your identifier of the conversation (thread) the call belongs to.

    Example:
        >>> import llmtel
        >>> with llmtel.context(user_id="u-42", session_id="s-7"):
        ...     pass  # client.chat.completions.create(...) calls here carry both ids
    """
    values = dict(_app_context.get())
    for key, value in (
        (attr.USER_ID, user_id),
        (attr.SESSION_ID, session_id),
        (attr.GEN_AI_CONVERSATION_ID, conversation_id),
    ):
        if value is not None:
            values[key] = str(value)
    token = _app_context.set(MappingProxyType(values))
    try:
        yield
    finally:
        _app_context.reset(token)


def current() -> Mapping[str, str]:
    """Return the attributes set by the enclosing ``context`` blocks."""
    return _app_context.get()
