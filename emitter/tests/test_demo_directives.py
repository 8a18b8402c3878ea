"""Per-request x-llmtel-demo-* headers script failures, sizes, latency and refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from llmtel.demo import DemoConfig, DemoServer

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def server() -> Iterator[DemoServer]:
    with DemoServer(config=DemoConfig(timeout_s=30)) as running:
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


def chat(client: OpenAI, **headers: str) -> openai.types.chat.ChatCompletion:
    """Make a chat call with directive headers given as keyword arguments."""
    extra = {f"x-llmtel-demo-{name.replace('_', '-')}": v for name, v in headers.items()}
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=extra)


@pytest.mark.parametrize(
    ("fail", "exception", "status"),
    [
        ("429", openai.RateLimitError, 429),
        ("500", openai.InternalServerError, 500),
        ("503", openai.InternalServerError, 503),
        ("400", openai.BadRequestError, 400),
        ("401", openai.AuthenticationError, 401),
    ],
)
def test_fail_directive_raises_the_sdk_exception(
    client: OpenAI, fail: str, exception: type[openai.APIStatusError], status: int
) -> None:
    """Verify that each fail directive gives its status and the SDK's exception type."""
    with pytest.raises(exception) as caught:
        chat(client, fail=fail)
    assert caught.value.status_code == status
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


def test_rate_limit_carries_retry_after_and_error_code(client: OpenAI) -> None:
    """Verify that a 429 has a retry-after header and OpenAI's error code."""
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, fail="429")
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"


def test_timeout_directive_outlasts_the_client(client: OpenAI, server: DemoServer) -> None:
    """Verify that fail: timeout makes the SDK raise APITimeoutError with a short timeout."""
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-llmtel-demo-fail": "timeout"}
        )
    assert server.counts()[("/v1/chat/completions", "timeout")] == 1


def test_hung_request_answers_504_after_timeout_s() -> None:
    """Verify that a client that waits past timeout_s gets a 504 (InternalServerError)."""
    with (
        DemoServer(config=DemoConfig(timeout_s=0.1)) as server,
        OpenAI(base_url=server.base_url, api_key="demo", max_retries=0) as client,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        chat(client, fail="timeout")
    assert caught.value.status_code == 504


def test_fail_none_overrides_configured_failures() -> None:
    """Verify that fail: none succeeds even when every request is configured to fail."""
    with (
        DemoServer(config=DemoConfig(rate_500=1.0)) as server,
        OpenAI(base_url=server.base_url, api_key="demo", max_retries=0) as client,
    ):
        with pytest.raises(openai.InternalServerError):
            chat(client)
        assert chat(client, fail="none").choices[0].finish_reason == "stop"


def test_output_tokens_directive_sets_the_size(client: OpenAI) -> None:
    """Verify that output-tokens: N gives exactly N words and N completion tokens."""
    reply = chat(client, output_tokens="7")
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 7
    assert len((reply.choices[0].message.content or "").split()) == 7


def test_latency_directive_delays_the_answer(client: OpenAI) -> None:
    """Verify that latency-ms: 300 delays the answer by at least 300 ms."""
    started = time.monotonic()
    chat(client, latency_ms="300")
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("reason", ["stop", "length", "content_filter"])
def test_finish_reason_directive_is_reported(client: OpenAI, reason: str) -> None:
    """Verify that finish-reason directives are echoed in the choice."""
    assert chat(client, finish_reason=reason).choices[0].finish_reason == reason


def test_refusal_directive_sets_refusal_and_nulls_content(client: OpenAI) -> None:
    """Verify that a refusal directive sets message.refusal, content null, tokens = its words."""
    reply = chat(client, refusal="I can't help with that.")
    message = reply.choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.content is None
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 5


def test_refusal_directive_in_the_responses_api(client: OpenAI) -> None:
    """Verify that a refusal directive gives a refusal content part in /v1/responses."""
    response = client.responses.create(
        model="gpt-4o", input="hi", extra_headers={"x-llmtel-demo-refusal": "No, sorry."}
    )
    message = response.output[0]
    assert message.type == "message"
    part = message.content[0]
    assert part.type == "refusal"
    assert part.refusal == "No, sorry."


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-llmtel-demo-fail", "418"),
        ("x-llmtel-demo-output-tokens", "-1"),
        ("x-llmtel-demo-latency-ms", "soon"),
        ("x-llmtel-demo-finish-reason", "tool_calls"),
    ],
)
def test_malformed_directive_is_a_400_naming_the_header(
    client: OpenAI, header: str, value: str
) -> None:
    """Verify that a malformed directive is rejected with a 400 that names the header."""
    with pytest.raises(openai.BadRequestError, match=header):
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={header: value}
        )
