"""``DemoConfig``: the demo server's global behaviour (failure shares, latency, output size)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._tokens import DEFAULT_OUTPUT_TOKENS_MAX, DEFAULT_OUTPUT_TOKENS_MIN

ENV_PREFIX = "LLMTEL_DEMO_"


@dataclass(frozen=True)
class DemoConfig:
    """How the demo server behaves when a request carries no directive headers.

    The defaults are the quiet ones tests want: no failures, no latency, deterministic
    output sizes. ``llmtel demo serve`` starts from livelier defaults.

    Attributes:
        rate_429: Share of requests answered 429 (with ``retry-after``).
        rate_500: Share of requests answered 500.
        rate_timeout: Share of requests that hang for ``timeout_s`` (then 504).
        latency_ms_min: Lower bound of the latency drawn per request.
        latency_ms_max: Upper bound of the latency drawn per request.
        output_tokens_min: Lower bound of generated tokens.
        output_tokens_max: Upper bound of generated tokens.
        vary: Draw output tokens from the seeded RNG instead of the prompt rule.
        seed: Seed of the RNG; with a seed the sequence of decisions is reproducible.
        timeout_s: How long a "timeout" request hangs (interrupted by ``stop()``).
        chunk_delay_ms: Pause between streamed chunks.

    Example:
        >>> DemoConfig(rate_429=0.1, seed=7).rate_429
        0.1
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    latency_ms_min: int = 0
    latency_ms_max: int = 0
    output_tokens_min: int = DEFAULT_OUTPUT_TOKENS_MIN
    output_tokens_max: int = DEFAULT_OUTPUT_TOKENS_MAX
    vary: bool = False
    seed: int | None = None
    timeout_s: float = 30.0
    chunk_delay_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500", "rate_timeout"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.rate_429 + self.rate_500 + self.rate_timeout > 1.0:
            raise ValueError("rate_429 + rate_500 + rate_timeout must not exceed 1")
        if not 0 <= self.latency_ms_min <= self.latency_ms_max:
            raise ValueError("latency_ms_min must be >= 0 and <= latency_ms_max")
        if not 0 <= self.output_tokens_min <= self.output_tokens_max:
            raise ValueError("output_tokens_min must be >= 0 and <= output_tokens_max")
        if self.timeout_s < 0 or self.chunk_delay_ms < 0:
            raise ValueError("timeout_s and chunk_delay_ms must not be negative")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, base: DemoConfig | None = None
    ) -> DemoConfig:
        """Return ``base`` (default ``DemoConfig()``) overridden by ``LLMTEL_DEMO_*`` variables.

        Variables: ``RATE_429``, ``RATE_500``, ``RATE_TIMEOUT`` (shares), ``LATENCY_MS`` and
        ``OUTPUT_TOKENS`` (``MIN:MAX`` or one number), ``VARY`` (``1``/``0``), ``SEED``,
        ``TIMEOUT_S``, ``CHUNK_DELAY_MS``. A malformed value raises ``ValueError`` naming it.

        Example:
            >>> DemoConfig.from_env({"LLMTEL_DEMO_LATENCY_MS": "200:1500"}).latency_ms_max
            1500
        """
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for field, parse in _SCALARS:
            if (value := _read(env, field, parse)) is not None:
                changes[field] = value
        for prefix in ("latency_ms", "output_tokens"):
            if (pair := _read(env, prefix, parse_range)) is not None:
                changes[f"{prefix}_min"], changes[f"{prefix}_max"] = pair
        return dataclasses.replace(base or cls(), **changes)


_T = TypeVar("_T")


def _read(env: Mapping[str, str], field: str, parse: Callable[[str], _T]) -> _T | None:
    name = ENV_PREFIX + field.upper()
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: {exc}") from None


def parse_range(text: str) -> tuple[int, int]:
    """Parse ``"MIN:MAX"`` (or one number, meaning both) into a pair of ints.

    Example:
        >>> parse_range("200:1500"), parse_range("50")
        ((200, 1500), (50, 50))
    """
    low, sep, high = text.partition(":")
    pair = (int(low), int(high if sep else low))
    if pair[0] > pair[1]:
        raise ValueError(f"range {text!r} has MIN > MAX")
    return pair


def parse_bool(text: str) -> bool:
    """Parse ``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case).

    Example:
        >>> parse_bool("Yes")
        True
    """
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


_SCALARS: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("rate_429", float),
    ("rate_500", float),
    ("rate_timeout", float),
    ("timeout_s", float),
    ("seed", int),
    ("chunk_delay_ms", int),
    ("vary", parse_bool),
)
