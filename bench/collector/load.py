"""telemetrygen command lines that look like llmtel's traffic.

Spans carry the attributes llmtel puts on a chat span; log records carry those of an
``llmtel.call`` record, including 200-character prompt, system and answer previews (the
size llmtel caps previews at) with PII in them: an e-mail address, phone numbers, an
e-mail as ``user.id``. telemetrygen sets the same attributes on every item and has no
float attributes (``gen_ai.request.temperature``, ``llmtel.cost.usd`` are left out, so
the collector's fallback price table computes the cost) and no log event names (so the
eval-queue branch filters every record out early).
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

_SPAN: dict[str, str | int | bool | list[str]] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.max_tokens": 512,
    "gen_ai.request.stream": False,
    "server.address": "api.openai.com",
    "server.port": 443,
    "gen_ai.conversation.id": "conv-9f1c2e7a4b",
    "user.id": "maria.keller@example.com",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-BXk2v9QmT4sE8yLwZ1nR",
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 226,
    "gen_ai.usage.output_tokens": 60,
    "gen_ai.usage.cache_read.input_tokens": 0,
    "gen_ai.usage.reasoning.output_tokens": 0,
    "llmtel.outcome": "ok",
}
_INPUT = (
    "Hello, I ordered running shoes (order 7781-2231) ten days ago and tracking still says "
    "'label created'. Please call me on +49 151 2345 6789 or write to maria.keller@example.com "
    "before Friday, I need th\u2026"
)
_SYSTEM = (
    "You are the support assistant of an online shop. Answer in the customer's language, in "
    "at most five sentences. Never promise refunds; offer to open a ticket instead. Quote "
    "order numbers exactly. If the q\u2026"
)
_OUTPUT = (
    "I'm sorry about the delay, Maria. Your parcel for order 7781-2231 left our warehouse "
    "yesterday and should arrive on Thursday. If it doesn't, call our hotline on "
    "(555) 010-4477 and we will refund th\u2026"
)
_LOG: dict[str, str | int | bool | list[str]] = {
    **_SPAN,
    "llmtel.latency_ms": 812,
    "llmtel.input.preview": _INPUT,
    "llmtel.system.preview": _SYSTEM,
    "llmtel.output.preview": _OUTPUT,
}
BODY = "chat gpt-4o-mini ok 812 ms"
# telemetrygen paces each worker with a token bucket of burst 1: past ~500 items/s a
# worker oversleeps on a busy machine, so the load is spread over enough workers.
PER_WORKER = 500


def _flag(value: str | int | bool | list[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return '"' + value.replace('"', "'") + '"'


def command(binary: Path, signal: str, endpoint: str, rate: float, seconds: float) -> list[str]:
    """telemetrygen sending ``rate`` spans or log records per second for ``seconds``."""
    attributes = _SPAN if signal == "traces" else _LOG
    workers = max(2, math.ceil(rate / PER_WORKER))
    args = [
        str(binary),
        signal,
        "--otlp-endpoint",
        endpoint,
        "--otlp-http",
        "--otlp-insecure",
        "--duration",
        f"{seconds:g}s",
        "--workers",
        str(workers),
        "--batch-size",
        "512",
        "--service",
        "bench-telemetrygen",
    ]
    args += ["--rate", f"{rate / workers:g}"]  # --rate is per worker
    if signal == "traces":
        # One span per trace, as an LLM call without child spans.
        args += ["--child-spans", "0", "--span-duration", "800ms"]
    else:
        args += [
            "--body",
            BODY,
            "--severity-text",
            "INFO",
            "--trace-id",
            "5b8efff798038103d269b633813fc60c",
            "--span-id",
            "eee19b7ec3c1b174",
        ]
    for key, value in attributes.items():
        args += ["--telemetry-attributes", f"{key}={_flag(value)}"]
    return args


_GENERATED = re.compile(r'(?:traces|logs) generated\s+\{"worker": \d+, "(?:traces|logs)": (\d+)\}')


def run(binary: Path, signal: str, endpoint: str, rate: float, seconds: float) -> tuple[int, str]:
    """Run telemetrygen; return (items it generated, error or "")."""
    done = subprocess.run(
        command(binary, signal, endpoint, rate, seconds),
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    output = done.stdout + done.stderr
    generated = sum(int(n) for n in _GENERATED.findall(output))
    error = (
        "" if done.returncode == 0 else f"telemetrygen exited {done.returncode}: {output[-300:]}"
    )
    return generated, error
