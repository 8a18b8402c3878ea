"""The text one demo request generates, and its token counts, from a plan."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field

from ._config import DemoConfig
from ._plan import FinishReason, Plan
from ._tokens import completion_tokens_for, count_words, lorem_words

_PIECE_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


def new_id(prefix: str) -> str:
    """Return a unique id such as ``chatcmpl-3f2a...``."""
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Generation:
    """What the model "said": either ``text`` or ``refusal``, split into stream pieces."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    text: str | None
    refusal: str | None
    finish_reason: FinishReason
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def pieces(self) -> list[str]:
        """The streamed deltas, one per word; they concatenate to the text or refusal."""
        whole = self.text if self.refusal is None else self.refusal
        return [piece for piece in _PIECE_BOUNDARY.split(whole or "") if piece]


def generate(
    plan: Plan, *, model: str, prompt_tokens: int, cap: int | None, config: DemoConfig
) -> Generation:
    """Decide the output for a request: a refusal, or ``N`` lorem words capped by ``cap``.

    A refusal costs its word count. Otherwise ``N`` comes from the plan or the prompt
    rule; above ``cap`` (``max_tokens`` and friends) it is cut to ``cap`` and the natural
    finish reason becomes ``length``. A finish-reason directive always wins.
    """
    natural: FinishReason = "stop"
    text: str | None = None
    if plan.refusal is not None:
        tokens = count_words(plan.refusal)
    else:
        if plan.output_tokens is not None:
            tokens = plan.output_tokens
        else:
            tokens = completion_tokens_for(
                prompt_tokens, config.output_tokens_min, config.output_tokens_max
            )
        if cap is not None and tokens > cap:
            tokens, natural = cap, "length"
        text = " ".join(lorem_words(tokens))
    return Generation(
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=tokens,
        text=text,
        refusal=plan.refusal,
        finish_reason=plan.finish_reason or natural,
    )
