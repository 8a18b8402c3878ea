"""`llmtel.context`: ids on spans and logs only; endpoint and prompt version on metrics too."""

from __future__ import annotations

import asyncio
import threading

import httpx2
import openai

import llmtel
from llmtel.demo.server import DemoServer
from llmtel.testing import Capture, capture

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


def test_endpoint_and_prompt_version_label_spans_logs_and_metrics(
    telemetry: Capture, client: openai.OpenAI
) -> None:
    """Verify that endpoint and prompt version are on spans, logs and every metric point."""
    with llmtel.context(user_id="u-1", endpoint="support-answer", prompt_version="v3"):
        _ask(client)
    (span,) = telemetry.spans()
    (record,) = telemetry.logs()
    for attrs in (span.attributes or {}, record.log_record.attributes or {}):
        assert attrs["llmtel.endpoint"] == "support-answer"
        assert attrs["llmtel.prompt.version"] == "v3"
    points = telemetry.histogram("gen_ai.client.operation.duration") + telemetry.histogram(
        "gen_ai.client.token.usage"
    )
    assert len(points) == 3
    for point in points:
        attrs = dict(point.attributes or {})
        attrs.pop("gen_ai.token.type", None)
        assert attrs == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini",
            "llmtel.endpoint": "support-answer",
            "llmtel.prompt.version": "v3",
            "llmtel.outcome": "ok",
        }


def test_context_decorates_sync_functions(telemetry: Capture, client: openai.OpenAI) -> None:
    """Verify that `@llmtel.context(...)` applies to each call of a sync function, and only then."""

    @llmtel.context(endpoint="summarise", prompt_version="v1")
    def summarise() -> str:
        _ask(client)
        return "done"

    assert summarise() == "done"
    assert summarise.__name__ == "summarise"
    _ask(client)
    first, outside = (dict(s.attributes or {}) for s in telemetry.spans())
    assert (first["llmtel.endpoint"], first["llmtel.prompt.version"]) == ("summarise", "v1")
    assert "llmtel.endpoint" not in outside


def test_context_decorates_async_functions_per_task(
    telemetry: Capture, async_client: openai.AsyncOpenAI
) -> None:
    """Verify that a decorated coroutine function keeps its values per concurrent task."""

    @llmtel.context(endpoint="triage")
    async def triage(user: str) -> None:
        with llmtel.context(user_id=user):
            await async_client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                extra_headers={"x-llmtel-demo-latency-ms": "30"},
            )

    async def main() -> None:
        async with async_client:
            await asyncio.gather(*(triage(f"u{i}") for i in range(4)))
            await async_client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]

    asyncio.run(main())
    spans = [dict(s.attributes or {}) for s in telemetry.spans()]
    assert sorted(str(s.get("user.id")) for s in spans[:4]) == ["u0", "u1", "u2", "u3"]
    assert {s["llmtel.endpoint"] for s in spans[:4]} == {"triage"}
    assert "llmtel.endpoint" not in spans[4]
    assert "user.id" not in spans[4]


def test_context_values_never_reach_the_provider(server: DemoServer) -> None:
    """Verify that no outbound HTTP header carries a context value (ids, endpoint, version)."""
    sent: list[dict[str, str]] = []

    def record(request: httpx2.Request) -> None:
        sent.append(dict(request.headers))

    values = ["u-secret-42", "s-secret-7", "c-secret-1", "ep-secret", "pv-secret"]
    http = openai.DefaultHttpxClient(event_hooks={"request": [record]})
    with (
        openai.OpenAI(
            base_url=server.base_url, api_key="test-key", max_retries=0, http_client=http
        ) as client,
        capture(),
        llmtel.context(
            user_id=values[0],
            session_id=values[1],
            conversation_id=values[2],
            endpoint=values[3],
            prompt_version=values[4],
        ),
    ):
        _ask(client)
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):  # type: ignore[arg-type]
            pass
    assert len(sent) == 2
    for headers in sent:
        assert not any(v in f"{k}: {h}" for k, h in headers.items() for v in values)
