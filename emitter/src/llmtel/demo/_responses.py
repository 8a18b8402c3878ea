"""``POST /v1/responses``: request checks, the ``response`` body and its stream events."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ._chat import optional_int, require_model
from ._errors import JSON, BadRequest
from ._generation import Generation
from ._tokens import response_input_tokens_for

_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True)
class ResponsesRequest:
    """The parts of a Responses API request the demo server uses."""

    model: str
    prompt_tokens: int
    cap: int | None
    stream: bool
    instructions: str | None


def parse_responses_request(body: Mapping[str, object]) -> ResponsesRequest:
    """Check a Responses API request body.

    Raises:
        BadRequest: ``model`` is missing, or ``input`` / ``instructions`` is malformed.
    """
    model = require_model(body)
    input_ = body.get("input")
    if input_ is not None and not isinstance(input_, str | list):
        raise BadRequest("'input' must be a string or an array of input items.", "input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BadRequest("'instructions' must be a string.", "instructions")
    return ResponsesRequest(
        model=model,
        prompt_tokens=response_input_tokens_for(input_, instructions),
        cap=optional_int(body, "max_output_tokens", minimum=1),
        stream=body.get("stream") is True,
        instructions=instructions,
    )


class ResponseBuilder:
    """Renders one generation as a ``response`` object or as its stream of events."""

    def __init__(
        self, gen: Generation, request: ResponsesRequest, *, response_id: str, message_id: str
    ) -> None:
        self.gen = gen
        self.request = request
        self.response_id = response_id
        self.message_id = message_id
        self.call_item_id = "fc_" + response_id.removeprefix("resp_")
        self.call_id = "call_" + response_id.removeprefix("resp_")[:24]
        reason = _INCOMPLETE_REASONS.get(str(gen.finish_reason))
        self.status = "completed" if reason is None else "incomplete"
        self.incomplete_details: JSON | None = None if reason is None else {"reason": reason}

    def part(self, text: str) -> JSON:
        """A content part holding ``text`` (output text, or a refusal)."""
        if self.gen.refusal is not None:
            return {"type": "refusal", "refusal": text}
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def message(self, status: str, content: list[JSON]) -> JSON:
        """The output message item."""
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def function_call(self, status: str, arguments: str) -> JSON:
        """The output item of the demo's tool call."""
        tool = self.gen.tool_call
        return {
            "type": "function_call",
            "id": self.call_item_id,
            "call_id": self.call_id,
            "name": tool.name if tool is not None else "",
            "arguments": arguments,
            "status": status,
        }

    def output(self) -> list[JSON]:
        """The output items of the finished response."""
        gen = self.gen
        if gen.tool_call is not None:
            return [self.function_call("completed", gen.tool_call.arguments)]
        whole = gen.text if gen.refusal is None else gen.refusal
        return [self.message(self.status, [self.part(whole or "")])]

    def response(self, *, final: bool = True) -> JSON:
        """The ``response`` object: finished, or as it looks when the stream starts."""
        gen = self.gen
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": gen.created,
            "status": self.status if final else "in_progress",
            "error": None,
            "incomplete_details": self.incomplete_details if final else None,
            "instructions": self.request.instructions,
            "max_output_tokens": self.request.cap,
            "model": gen.model,
            "output": self.output() if final else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": self.usage() if final else None,
            "user": None,
            "metadata": {},
        }

    def usage(self) -> JSON:
        """The Responses API ``usage`` object."""
        gen = self.gen
        return {
            "input_tokens": gen.prompt_tokens,
            "input_tokens_details": {"cached_tokens": gen.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": gen.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": gen.reasoning_tokens},
            "total_tokens": gen.prompt_tokens + gen.completion_tokens,
        }

    def events(self) -> Iterator[JSON]:
        """The stream events, from ``response.created`` to ``response.completed``/``incomplete``."""
        if self.gen.tool_call is not None:
            yield from self._numbered(self._tool_call_events())
            return
        yield from self._numbered(self._message_events())

    def _numbered(self, events: list[JSON]) -> Iterator[JSON]:
        for number, event in enumerate(events):
            yield {**event, "sequence_number": number}

    def _tool_call_events(self) -> list[JSON]:
        gen = self.gen
        arguments = gen.tool_call.arguments if gen.tool_call is not None else ""
        where: JSON = {"item_id": self.call_item_id, "output_index": 0}
        return [
            {"type": "response.created", "response": self.response(final=False)},
            {"type": "response.in_progress", "response": self.response(final=False)},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": self.function_call("in_progress", ""),
            },
            *(
                {"type": "response.function_call_arguments.delta", **where, "delta": piece}
                for piece in gen.argument_pieces
            ),
            {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": self.function_call("completed", arguments),
            },
            {"type": f"response.{self.status}", "response": self.response()},
        ]

    def _message_events(self) -> list[JSON]:
        gen = self.gen
        refusal = gen.refusal is not None
        whole = (gen.refusal if refusal else gen.text) or ""
        kind = "refusal" if refusal else "output_text"
        where: JSON = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
        extra: JSON = {} if refusal else {"logprobs": []}
        events: list[JSON] = [
            {"type": "response.created", "response": self.response(final=False)},
            {"type": "response.in_progress", "response": self.response(final=False)},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": self.message("in_progress", []),
            },
            {"type": "response.content_part.added", **where, "part": self.part("")},
        ]
        events += [
            {"type": f"response.{kind}.delta", **where, "delta": p, **extra} for p in gen.pieces
        ]
        done_field = "refusal" if refusal else "text"
        events += [
            {"type": f"response.{kind}.done", **where, done_field: whole, **extra},
            {"type": "response.content_part.done", **where, "part": self.part(whole)},
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": self.message(self.status, [self.part(whole)]),
            },
            {"type": f"response.{self.status}", "response": self.response()},
        ]
        return events
