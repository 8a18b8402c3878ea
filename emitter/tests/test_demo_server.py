"""The demo server answers like the OpenAI API, with token counts from documented rules."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from llmtel.demo import (
    DemoServer,
    completion_tokens_for,
    embedding_input_tokens_for,
    prompt_tokens_for,
    response_input_tokens_for,
)

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is two plus two?"},
]


@pytest.fixture
def server() -> Iterator[DemoServer]:
    with DemoServer() as running:
        yield running


@pytest.fixture
def client(server: DemoServer) -> Iterator[OpenAI]:
    strict = OpenAI(
        base_url=server.base_url,
        api_key="demo",
        max_retries=0,
        timeout=10,
        _strict_response_validation=True,
    )
    yield strict
    strict.close()


def raw(
    server: DemoServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """Send a request without the SDK; return the status and the JSON body."""
    request = urllib.request.Request(server.url + path, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_token_rule_examples() -> None:
    """Verify that the documented token rules give the documented numbers."""
    assert prompt_tokens_for(MESSAGES) == (3 + 3) + (3 + 5)
    parts = [{"type": "text", "text": "hello world"}, {"type": "image_url", "image_url": {}}]
    assert prompt_tokens_for([{"role": "user", "content": parts}]) == 3 + 2
    assert response_input_tokens_for("Tell me a joke", "Be funny.") == (3 + 2) + (3 + 4)
    assert embedding_input_tokens_for(["a b c", "d"]) == 4
    assert embedding_input_tokens_for([1, 2, 3]) == 3
    assert completion_tokens_for(14) == 10 + 14
    assert completion_tokens_for(14, 5, 9) == 5 + 14 % 5


def test_chat_completion_has_exact_usage(client: OpenAI) -> None:
    """Verify that a chat completion reports the rule's tokens and has that many words."""
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    expected_in = prompt_tokens_for(MESSAGES)
    expected_out = completion_tokens_for(expected_in)
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (14, 24)
    assert (expected_in, expected_out) == (14, 24)
    assert reply.usage.total_tokens == 38
    content = reply.choices[0].message.content
    assert content is not None
    assert len(content.split()) == 24
    assert reply.choices[0].finish_reason == "stop"
    assert reply.object == "chat.completion"


def test_model_is_echoed_and_ids_are_unique(client: OpenAI) -> None:
    """Verify that the response echoes the model exactly and each id is new."""
    first = client.chat.completions.create(model="my-model-2030", messages=MESSAGES)
    second = client.chat.completions.create(model="my-model-2030", messages=MESSAGES)
    assert first.model == second.model == "my-model-2030"
    assert first.id.startswith("chatcmpl-")
    assert first.id != second.id


def test_token_cap_cuts_output_with_finish_reason_length(client: OpenAI) -> None:
    """Verify that max_completion_tokens below the output size cuts it and says length."""
    reply = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, max_completion_tokens=5
    )
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 5
    assert len((reply.choices[0].message.content or "").split()) == 5
    assert reply.choices[0].finish_reason == "length"


def test_n_choices_multiply_completion_tokens(client: OpenAI) -> None:
    """Verify that n choices each carry the text and usage counts all of them."""
    reply = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, n=2, extra_headers={"x-llmtel-demo-output-tokens": "4"}
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 8


def test_responses_api_reports_input_and_output_tokens(client: OpenAI) -> None:
    """Verify that /v1/responses parses with the SDK and follows the token rules."""
    response = client.responses.create(
        model="gpt-4o-mini", input="Tell me a joke", instructions="Be funny."
    )
    assert response.status == "completed"
    assert response.model == "gpt-4o-mini"
    assert response.id.startswith("resp_")
    assert response.usage is not None
    assert response.usage.input_tokens == 12
    assert response.usage.output_tokens == completion_tokens_for(12) == 22
    assert response.usage.total_tokens == 34
    assert len(response.output_text.split()) == 22


def test_responses_api_cap_makes_the_response_incomplete(client: OpenAI) -> None:
    """Verify that max_output_tokens below the output size gives an incomplete response."""
    response = client.responses.create(model="gpt-4o", input="Tell me a joke", max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 3


def test_embeddings_are_unit_vectors_in_both_encodings(server: DemoServer) -> None:
    """Verify that embeddings come back as floats or base64 and count input words."""
    with OpenAI(base_url=server.base_url, api_key="demo", max_retries=0) as client:
        default = client.embeddings.create(model="text-embedding-3-small", input=["a b c", "d"])
        floats = client.embeddings.create(
            model="text-embedding-3-small", input="a b c", encoding_format="float", dimensions=8
        )
    assert default.usage.prompt_tokens == default.usage.total_tokens == 4
    assert [e.index for e in default.data] == [0, 1]
    assert len(default.data[0].embedding) == 16
    assert math.isclose(sum(v * v for v in default.data[0].embedding), 1.0, rel_tol=1e-5)
    assert len(floats.data[0].embedding) == 8
    assert floats.model == "text-embedding-3-small"


def test_models_can_be_listed_and_retrieved(client: OpenAI) -> None:
    """Verify that /v1/models lists the demo models and retrieves one."""
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"


def test_healthz_answers_ok(server: DemoServer) -> None:
    """Verify that GET /healthz answers 200."""
    assert raw(server, "GET", "/healthz") == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "body",
    [None, b"", b"{not json", b"[1, 2]", b'"text"'],
    ids=["no-body", "empty", "invalid", "array", "string"],
)
def test_missing_or_invalid_json_is_a_400_in_openai_shape(
    server: DemoServer, body: bytes | None
) -> None:
    """Verify that a missing or invalid JSON body gets a 400 with an OpenAI error object."""
    status, payload = raw(server, "POST", "/v1/chat/completions", body)
    assert status == 400
    assert payload["error"]["type"] == "invalid_request_error"
    assert set(payload["error"]) == {"message", "type", "param", "code"}


def test_missing_messages_is_a_400_naming_the_param(server: DemoServer) -> None:
    """Verify that a chat request without messages is a 400 whose param says messages."""
    status, payload = raw(server, "POST", "/v1/chat/completions", b'{"model": "gpt-4o"}')
    assert status == 400
    assert payload["error"]["param"] == "messages"


def test_unknown_path_is_a_404(server: DemoServer) -> None:
    """Verify that an unknown path gets a 404 in OpenAI's shape."""
    status, payload = raw(server, "POST", "/v1/nothing", b"{}")
    assert status == 404
    assert "Invalid URL" in payload["error"]["message"]


def test_base_url_needs_a_started_server() -> None:
    """Verify that base_url before start() raises a clear error."""
    with pytest.raises(RuntimeError, match="not started"):
        _ = DemoServer().base_url
