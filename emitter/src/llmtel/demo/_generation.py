"""The text one demo request generates, and its token counts, from a plan."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

from ._config import DemoConfig
from ._plan import FinishReason, Plan, ToolCall
from ._tokens import completion_tokens_for, count_words, lorem_words

_PIECE_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


def new_id(prefix: str) -> str:
    """Return a unique id such as ``chatcmpl-3f2a...``."""
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Generation:
    """What the model "said": ``text``, a ``refusal`` or a ``tool_call``, in stream pieces.

    ``cached_tokens`` of the prompt tokens were cache hits; ``reasoning_tokens`` of the
    completion tokens were spent thinking (they are not in the text).
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    text: str | None
    refusal: str | None
    finish_reason: FinishReason | Literal["tool_calls"]
    created: int = field(default_factory=lambda: int(time.time()))
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    tool_call: ToolCall | None = None

    @property
    def pieces(self) -> list[str]:
        """The streamed deltas, one per word; they concatenate to the text or refusal."""
        whole = self.text if self.refusal is None else self.refusal
        return [piece for piece in _PIECE_BOUNDARY.split(whole or "") if piece]

    @property
    def argument_pieces(self) -> list[str]:
        """The streamed tool-call argument deltas: the JSON text in pieces of 8 characters."""
        arguments = self.tool_call.arguments if self.tool_call is not None else ""
        return [arguments[i : i + 8] for i in range(0, len(arguments), 8)]


def generate(
    plan: Plan, *, model: str, prompt_tokens: int, cap: int | None, config: DemoConfig
) -> Generation:
    """Decide the output for a request: a refusal, a tool call, or ``N`` lorem words.

    A refusal costs its word count. A tool call costs the plan's output tokens, else
    the words of its arguments plus one, and finishes with ``tool_calls``. Otherwise
    ``N`` comes from the plan or the prompt rule; above ``cap`` (``max_tokens`` and
    friends) it is cut to ``cap`` and the natural finish reason becomes ``length``; the
    text has ``N`` minus the plan's reasoning tokens words. A finish-reason directive
    always wins. Cached tokens are capped at the prompt tokens.
    """
    natural: FinishReason | Literal["tool_calls"] = "stop"
    text: str | None = None
    if plan.refusal is not None:
        tokens = count_words(plan.refusal)
    elif plan.tool_call is not None:
        natural = "tool_calls"
        if plan.output_tokens is not None:
            tokens = plan.output_tokens
        else:
            tokens = count_words(plan.tool_call.arguments.replace(",", " ")) + 1
    else:
        if plan.output_tokens is not None:
            tokens = plan.output_tokens
        else:
            tokens = completion_tokens_for(
                prompt_tokens, config.output_tokens_min, config.output_tokens_max
            )
        if cap is not None and tokens > cap:
            tokens, natural = cap, "length"
        text = " ".join(lorem_words(max(0, tokens - plan.reasoning_tokens)))
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=tokens,
        text=text,
        refusal=plan.refusal,
        finish_reason=plan.finish_reason or natural,
        cached_tokens=min(plan.cached_tokens, prompt_tokens),
        reasoning_tokens=min(plan.reasoning_tokens, tokens),
        tool_call=plan.tool_call,
    )
