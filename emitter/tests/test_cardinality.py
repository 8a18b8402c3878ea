"""Case 8: ids live on spans and logs only; metric attribute sets do not grow with them."""

from __future__ import annotations

import itertools
import json

import httpx2
import openai

import llmtel
from llmtel.testing import Capture, capture

CALLS = 10_000


def _completion_server() -> httpx2.MockTransport:
    """An in-process OpenAI endpoint (httpx2 transport): a new response id for every call."""
    counter = itertools.count()

    def handle(request: httpx2.Request) -> httpx2.Response:
        n = next(counter)
        body = {
            "id": f"chatcmpl-{n:08d}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
        }
        return httpx2.Response(
            200, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )

    return httpx2.MockTransport(handle)


def _combinations(cap: Capture) -> set[tuple[str, frozenset[tuple[str, object]]]]:
    return {
        (metric.name, frozenset(dict(point.attributes or {}).items()))
        for metric in cap.metrics()
        for point in metric.data.data_points
    }


def test_metric_attributes_do_not_grow_with_ids() -> None:
    """Verify that 10,000 calls with distinct user and response ids add no metric series."""
    http = httpx2.Client(transport=_completion_server())
    with (
        openai.OpenAI(
            base_url="https://api.openai.com/v1", api_key="test-key", http_client=http
        ) as client,
        capture() as cap,
    ):
        first_ids: list[str] = []
        combinations_after: dict[int, int] = {}
        for n in range(CALLS):
            with llmtel.context(
                user_id=f"user-{n}", conversation_id=f"conv-{n}", endpoint="support-answer"
            ):
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            if n < 2:
                first_ids.append(reply.id)
            if n + 1 in (1, 100, CALLS):
                combinations_after[n + 1] = len(_combinations(cap))
                last_spans = cap.spans()
                cap.clear()
        assert first_ids == ["chatcmpl-00000000", "chatcmpl-00000001"]
        assert combinations_after == {1: 3, 100: 3, CALLS: 3}
        attrs = dict(last_spans[-1].attributes or {})
        assert (attrs["user.id"], attrs["gen_ai.response.id"]) == (
            f"user-{CALLS - 1}",
            f"chatcmpl-{CALLS - 1:08d}",
        )
        points = cap.histogram("gen_ai.client.operation.duration")
        assert [p.count for p in points] == [CALLS]
        keys = set().union(*(dict(p.attributes or {}) for p in points))
        assert keys == {
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "llmtel.endpoint",
            "llmtel.outcome",
        }
