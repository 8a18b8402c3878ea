"""``TrafficSummary``: what a traffic run sent, by model and outcome, and how to print it."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

OK = "ok"

# `make demo PORT_OFFSET=N` runs the stack N ports up and says so in this variable.
PORT_OFFSET_ENV = "LLMTEL_PORT_OFFSET"


def where_to_look(offset: int = 0) -> tuple[tuple[str, str], ...]:
    """The stack's UIs, ``offset`` ports above the defaults.

    Example:
        >>> where_to_look(16000)[1]
        ('Prometheus', 'http://127.0.0.1:25090')
    """
    return (
        ("Grafana", f"http://127.0.0.1:{3000 + offset} (when Docker runs the stack)"),
        ("Prometheus", f"http://127.0.0.1:{9090 + offset}"),
        ("Jaeger", f"http://127.0.0.1:{16686 + offset}"),
        ("VictoriaLogs", f"http://127.0.0.1:{9428 + offset}/select/vmui"),
    )


def _port_offset() -> int:
    try:
        return int(os.environ.get(PORT_OFFSET_ENV) or 0)
    except ValueError:
        return 0


@dataclass
class TrafficSummary:
    """Counts of a traffic run.

    Attributes:
        calls: Calls by ``(model, outcome)``; the outcome is ``"ok"`` or, for a call that
            raised, the emitter's outcome label (``"rate_limit"``, ``"timeout"``,
            ``"server_error"``...), the same as ``llmtel_outcome`` in Prometheus.
        input_tokens: Input tokens of successful calls, by model (from ``usage``).
        output_tokens: Output tokens of successful calls, by model.
        duration_s: Wall time of the run.
        interrupted: The run was stopped early (Ctrl+C or the stop event).

    Example:
        >>> summary = TrafficSummary()
        >>> summary.record("gpt-4o-mini", "ok", 12, 30)
        >>> summary.record("gpt-4o-mini", "rate_limit")
        >>> summary.sent, summary.ok, summary.errors
        (2, 1, 1)
    """

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    input_tokens: Counter[str] = field(default_factory=Counter)
    output_tokens: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0
    interrupted: bool = False

    def record(
        self, model: str, outcome: str, input_tokens: int = 0, output_tokens: int = 0
    ) -> None:
        """Count one finished call."""
        self.calls[(model, outcome)] += 1
        self.input_tokens[model] += input_tokens
        self.output_tokens[model] += output_tokens

    @property
    def sent(self) -> int:
        """All calls, whatever their outcome."""
        return sum(self.calls.values())

    @property
    def ok(self) -> int:
        """Calls that succeeded."""
        return sum(n for (_, outcome), n in self.calls.items() if outcome == OK)

    @property
    def errors(self) -> int:
        """Calls that raised."""
        return self.sent - self.ok

    def by_outcome(self) -> Counter[str]:
        """Calls by outcome across models."""
        totals: Counter[str] = Counter()
        for (_, outcome), n in self.calls.items():
            totals[outcome] += n
        return totals

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (``calls`` as a list of ``{model, outcome, count}``)."""
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 3),
            "interrupted": self.interrupted,
            "calls": [
                {"model": model, "outcome": outcome, "count": n}
                for (model, outcome), n in sorted(self.calls.items())
            ],
            "input_tokens": dict(sorted(self.input_tokens.items())),
            "output_tokens": dict(sorted(self.output_tokens.items())),
        }


def format_summary(summary: TrafficSummary) -> str:
    """The end-of-run table: calls by model and outcome, tokens, and where to look.

    Example:
        >>> s = TrafficSummary()
        >>> s.record("gpt-4o", "ok", 10, 20)
        >>> print(format_summary(s).splitlines()[2])
        gpt-4o  ok           1
    """
    rows = [(model, outcome, str(n)) for (model, outcome), n in sorted(summary.calls.items())]
    rows.append(("total", "", str(summary.sent)))
    lines = _table(("model", "outcome", "calls"), rows, left=2)
    models = sorted(set(summary.input_tokens) | set(summary.output_tokens))
    token_rows = [(m, str(summary.input_tokens[m]), str(summary.output_tokens[m])) for m in models]
    token_rows.append(
        ("total", str(sum(summary.input_tokens.values())), str(sum(summary.output_tokens.values())))
    )
    lines += ["", *_table(("model", "tokens in", "tokens out"), token_rows)]
    lines += ["", "Where to look:"]
    lines += [f"  {name:<13} {url}" for name, url in where_to_look(_port_offset())]
    return "\n".join(lines)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], left: int = 1) -> list[str]:
    """Columns padded to width: the first ``left`` aligned left, the rest (numbers) right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        padded = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
