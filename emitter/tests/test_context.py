"""`llmtel.context`: user, session and conversation ids on spans and logs, never on metrics."""

from __future__ import annotations

import threading

import openai

import llmtel
from llmtel.testing import Capture

USER = [{"role": "user", "content": "hi"}]


def _ask(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]


def test_context_ids_go_on_span_and_log(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that ids set with `llmtel.context` appear on the span and the log record."""
    with llmtel.context(user_id="u-42", session_id="s-7", conversation_id="c-1"):
        _ask(client)
    (span,) = telemetry.spans()
    (record,) = telemetry.logs()
    for attrs in (span.attributes or {}, record.log_record.attributes or {}):
        assert attrs["user.id"] == "u-42"
        assert attrs["session.id"] == "s-7"
        assert attrs["gen_ai.conversation.id"] == "c-1"


def test_context_ids_never_become_metric_attributes(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that no metric data point carries user, session or conversation ids."""
    with llmtel.context(user_id="u-42", session_id="s-7", conversation_id="c-1"):
        _ask(client)
    points = telemetry.histogram("gen_ai.client.operation.duration") + telemetry.histogram(
        "gen_ai.client.token.usage"
    )
    assert points
    for point in points:
        keys = set(point.attributes or {})
        assert keys.isdisjoint({"user.id", "session.id", "gen_ai.conversation.id"})


def test_contexts_nest_and_unwind(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that an inner block overrides what it sets, keeps the rest, and is undone on exit."""
    with llmtel.context(user_id="u-1", session_id="s-1"):
        with llmtel.context(session_id="s-2"):
            _ask(client)
        _ask(client)
    _ask(client)
    inner, outer, outside = (dict(s.attributes or {}) for s in telemetry.spans())
    assert (inner["user.id"], inner["session.id"]) == ("u-1", "s-2")
    assert (outer["user.id"], outer["session.id"]) == ("u-1", "s-1")
    assert "user.id" not in outside
    assert "session.id" not in outside


def test_context_is_per_thread(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that a context set in one thread does not leak into calls made by another."""
    with llmtel.context(user_id="main-thread"):
        worker = threading.Thread(target=_ask, args=(client,))
        worker.start()
        worker.join()
    (span,) = telemetry.spans()
    assert "user.id" not in (span.attributes or {})
