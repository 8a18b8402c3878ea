"""``POST /v1/chat/completions``: request checks, the completion body and its stream chunks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ._errors import JSON, BadRequest
from ._generation import Generation
from ._tokens import prompt_tokens_for

SYSTEM_FINGERPRINT = "fp_llmtel_demo"


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat completion request the demo server uses."""

    model: str
    prompt_tokens: int
    cap: int | None
    n: int
    stream: bool
    include_usage: bool


def parse_chat_request(body: Mapping[str, object]) -> ChatRequest:
    """Check a chat completion request body.

    Raises:
        BadRequest: ``model`` or ``messages`` is missing or malformed.
    """
    model = require_model(body)
    messages = body.get("messages")
    if (
        not isinstance(messages, Sequence)
        or isinstance(messages, str)
        or not messages
        or not all(isinstance(m, Mapping) and isinstance(m.get("role"), str) for m in messages)
    ):
        raise BadRequest("'messages' must be a non-empty array of messages.", "messages")
    cap = optional_int(body, "max_completion_tokens", minimum=1)
    if cap is None:
        cap = optional_int(body, "max_tokens", minimum=1)
    n = optional_int(body, "n", minimum=1) or 1
    options = body.get("stream_options")
    return ChatRequest(
        model=model,
        prompt_tokens=prompt_tokens_for(messages),
        cap=cap,
        n=n,
        stream=body.get("stream") is True,
        include_usage=isinstance(options, Mapping) and options.get("include_usage") is True,
    )


def require_model(body: Mapping[str, object]) -> str:
    """Return the request's ``model``, which must be a non-empty string."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    return model


def optional_int(body: Mapping[str, object], name: str, *, minimum: int) -> int | None:
    """Return an optional integer parameter of at least ``minimum``."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadRequest(f"'{name}' must be an integer >= {minimum}.", name)
    return value


def usage(gen: Generation, n: int = 1) -> JSON:
    """The ``usage`` object: ``n`` choices each cost ``gen.completion_tokens``."""
    completion = gen.completion_tokens * n
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": gen.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": gen.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": gen.reasoning_tokens * n,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def tool_call_id(completion_id: str) -> str:
    """The id of the demo's tool call in a completion: derived from the completion id."""
    return "call_" + completion_id.removeprefix("chatcmpl-")[:24]


def chat_completion(gen: Generation, *, completion_id: str, n: int = 1) -> JSON:
    """The non-streaming ``chat.completion`` body."""
    message: JSON = {
        "role": "assistant",
        "content": gen.text,
        "refusal": gen.refusal,
        "annotations": [],
    }
    if gen.tool_call is not None:
        message["tool_calls"] = [
            {
                "id": tool_call_id(completion_id),
                "type": "function",
                "function": {"name": gen.tool_call.name, "arguments": gen.tool_call.arguments},
            }
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": gen.created,
        "model": gen.model,
        "choices": [
            {"index": i, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}
            for i in range(n)
        ],
        "usage": usage(gen, n),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chat_chunks(
    gen: Generation, *, completion_id: str, n: int = 1, include_usage: bool = False
) -> Iterator[JSON]:
    """The ``chat.completion.chunk`` bodies of a stream, without the final ``[DONE]``.

    A role chunk, one chunk per word and choice (for a tool call: a chunk naming the
    function, then one per 8 characters of its arguments), a finish chunk per choice,
    then (with ``include_usage``) a usage chunk with no choices.
    """
    key = "content" if gen.refusal is None else "refusal"

    def chunk(choices: list[JSON], usage_: JSON | None = None) -> JSON:
        body: JSON = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": gen.created,
            "model": gen.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = usage_
        return body

    def choice(i: int, delta: JSON, finish: str | None = None) -> JSON:
        return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}

    yield chunk([choice(i, {"role": "assistant", key: ""}) for i in range(n)])
    for piece in gen.pieces:
        yield chunk([choice(i, {key: piece}) for i in range(n)])
    if gen.tool_call is not None:
        start: JSON = {
            "index": 0,
            "id": tool_call_id(completion_id),
            "type": "function",
            "function": {"name": gen.tool_call.name, "arguments": ""},
        }
        yield chunk([choice(i, {"tool_calls": [start]}) for i in range(n)])
        for piece in gen.argument_pieces:
            delta: JSON = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            yield chunk([choice(i, delta) for i in range(n)])
    yield chunk([choice(i, {}, gen.finish_reason) for i in range(n)])
    if include_usage:
        yield chunk([], usage(gen, n))
