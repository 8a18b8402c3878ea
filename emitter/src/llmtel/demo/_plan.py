"""What the demo server does with one request: per-request directives over a seeded config.

Directive headers (they take precedence over ``DemoConfig``):

- ``x-llmtel-demo-fail``: ``429``, ``500``, ``503``, ``400``, ``401``, ``timeout``,
  ``content_filter`` (a 400 whose error code is ``content_filter``, as Azure OpenAI
  answers a filtered prompt), or ``none`` (succeed even when the config injects failures).
- ``x-llmtel-demo-output-tokens``: ``N`` generated tokens (words).
- ``x-llmtel-demo-latency-ms``: ``N`` ms before the first byte.
- ``x-llmtel-demo-finish-reason``: ``stop``, ``length`` or ``content_filter``.
- ``x-llmtel-demo-refusal``: a refusal text (``message.refusal`` set, content null).
- ``x-llmtel-demo-cached-tokens``: ``N`` of the prompt tokens reported as cached
  (``prompt_tokens_details.cached_tokens``; Responses: ``input_tokens_details``).
- ``x-llmtel-demo-reasoning-tokens``: ``N`` of the output tokens reported as reasoning
  (``completion_tokens_details.reasoning_tokens``); the visible answer has that many
  fewer words.
- ``x-llmtel-demo-tool-call``: ``NAME:{JSON arguments}``: the answer is one call of
  function ``NAME`` (finish reason ``tool_calls``; streamed as tool-call deltas).

Every planned request draws exactly three numbers from the RNG (failure, latency, output
size), whether or not a directive overrides them, so one request's headers never shift
the decisions of the requests after it.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast, get_args

from ._config import DemoConfig

Failure = Literal["429", "500", "503", "400", "401", "timeout", "content_filter"]
FinishReason = Literal["stop", "length", "content_filter"]

HEADER_FAIL = "x-llmtel-demo-fail"
HEADER_OUTPUT_TOKENS = "x-llmtel-demo-output-tokens"
HEADER_LATENCY_MS = "x-llmtel-demo-latency-ms"
HEADER_FINISH_REASON = "x-llmtel-demo-finish-reason"
HEADER_REFUSAL = "x-llmtel-demo-refusal"
HEADER_CACHED_TOKENS = "x-llmtel-demo-cached-tokens"
HEADER_REASONING_TOKENS = "x-llmtel-demo-reasoning-tokens"
HEADER_TOOL_CALL = "x-llmtel-demo-tool-call"


@dataclass(frozen=True)
class ToolCall:
    """A function call the demo model answers with."""

    name: str
    arguments: str  # JSON text


class DirectiveError(ValueError):
    """A directive header has a value the demo server does not understand."""


@dataclass(frozen=True)
class Plan:
    """The decisions for one request.

    ``output_tokens`` is None when the prompt rule decides; ``finish_reason`` is None when
    the natural one (``stop``, or ``length`` when capped) applies.
    """

    failure: Failure | None
    latency_ms: int
    output_tokens: int | None
    finish_reason: FinishReason | None
    refusal: str | None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    tool_call: ToolCall | None = None


class Planner:
    """Turns request headers into a ``Plan``, drawing from one seeded RNG (thread-safe)."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)  # noqa: S311 - simulation, not security
        self._lock = threading.Lock()

    def plan(self, headers: Mapping[str, str]) -> Plan:
        """Return the plan for a request with these headers (lower-case names).

        Raises:
            DirectiveError: a directive header is malformed.
        """
        d = _parse_directives(headers)
        with self._lock:
            draw_failure, draw_latency, draw_output = (self._rng.random() for _ in range(3))
        c = self.config
        failure = _failure_for(draw_failure, c) if d.fail is None else d.fail
        latency = c.latency_ms_min + round(draw_latency * (c.latency_ms_max - c.latency_ms_min))
        output: int | None = None
        if c.vary:
            span = c.output_tokens_max - c.output_tokens_min + 1
            output = c.output_tokens_min + min(int(draw_output * span), span - 1)
        return Plan(
            failure=None if failure == "none" else failure,
            latency_ms=latency if d.latency_ms is None else d.latency_ms,
            output_tokens=output if d.output_tokens is None else d.output_tokens,
            finish_reason=d.finish_reason,
            refusal=d.refusal,
            cached_tokens=d.cached_tokens or 0,
            reasoning_tokens=d.reasoning_tokens or 0,
            tool_call=d.tool_call,
        )


def _failure_for(draw: float, config: DemoConfig) -> Failure | None:
    if draw < config.rate_429:
        return "429"
    if draw < config.rate_429 + config.rate_500:
        return "500"
    if draw < config.rate_429 + config.rate_500 + config.rate_timeout:
        return "timeout"
    return None


@dataclass(frozen=True)
class _Directives:
    fail: Failure | Literal["none"] | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None
    finish_reason: FinishReason | None = None
    refusal: str | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    tool_call: ToolCall | None = None


def _parse_directives(headers: Mapping[str, str]) -> _Directives:
    fail = headers.get(HEADER_FAIL)
    if fail is not None:
        fail = fail.strip().lower()
        if fail not in (*get_args(Failure), "none"):
            raise DirectiveError(
                f"{HEADER_FAIL}: expected one of 429|500|503|400|401|timeout|content_filter|none"
            )
    reason = headers.get(HEADER_FINISH_REASON)
    if reason is not None:
        reason = reason.strip().lower()
        if reason not in get_args(FinishReason):
            raise DirectiveError(f"{HEADER_FINISH_REASON}: expected stop|length|content_filter")
    return _Directives(
        fail=cast("Failure | Literal['none'] | None", fail),
        output_tokens=_non_negative(headers, HEADER_OUTPUT_TOKENS),
        latency_ms=_non_negative(headers, HEADER_LATENCY_MS),
        finish_reason=cast("FinishReason | None", reason),
        refusal=headers.get(HEADER_REFUSAL),
        cached_tokens=_non_negative(headers, HEADER_CACHED_TOKENS),
        reasoning_tokens=_non_negative(headers, HEADER_REASONING_TOKENS),
        tool_call=_tool_call(headers.get(HEADER_TOOL_CALL)),
    )


def _tool_call(raw: str | None) -> ToolCall | None:
    if raw is None:
        return None
    name, sep, arguments = raw.partition(":")
    name = name.strip()
    try:
        valid = bool(sep) and bool(name) and isinstance(json.loads(arguments), dict)
    except ValueError:
        valid = False
    if not valid:
        raise DirectiveError(f"{HEADER_TOOL_CALL}: expected NAME:{{JSON object}}, got {raw!r}")
    return ToolCall(name, arguments.strip())


def _non_negative(headers: Mapping[str, str], header: str) -> int | None:
    raw = headers.get(header)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise DirectiveError(f"{header}: expected a non-negative integer, got {raw!r}")
    return value
