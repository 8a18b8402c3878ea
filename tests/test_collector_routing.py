"""Log routing through the real collector: content to the blob store only, previews to
VictoriaLogs, and a deterministic 1% of calls to the eval queue.

1,000 calls, each one trace with an `llmtel.call` record and an `llmtel.content` record,
are sent as OTLP/JSON, then sent again with the same trace ids. The eval queue must
hold the call and content records of the same traces both times, as many as the
binomial 99.9% interval around 1% allows, and exactly the traces the sampler's hash
picks; VictoriaLogs must hold every call record and no content record; the blob store
every content record and no call record.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from conftest import ROOT, poll_until
from stack import NativeStack
from test_collector_support import (
    collector_dir,
    log_record,
    logs_payload,
    read_blob_store,
    read_eval_queue,
    send,
    victorialogs,
)

pytestmark = pytest.mark.stack

CALLS = 1000
BATCH = 100
CONFIG = yaml.safe_load((ROOT / "collector-config" / "otelcol-config.yaml").read_text())
SAMPLER = CONFIG["processors"]["probabilistic_sampler/eval"]
DEFAULT_PERCENT = 1.0


def sampled_by_collector(trace_id: str, seed: int, percent: float) -> bool:
    """The probabilistic_sampler's hash_seed decision for a trace id, re-derived:
    FNV-1a (32 bit) over the seed (4 bytes, little-endian) and the 16 trace-id bytes;
    the low 14 bits below percent * 163.84 (truncated, in float32) are sampled."""
    digest = 0x811C9DC5
    for byte in seed.to_bytes(4, "little") + bytes.fromhex(trace_id):
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return (digest & 0x3FFF) < int(percent * 163.84)


def binomial_interval(n: int, p: float, confidence: float) -> tuple[int, int]:
    """The central interval [lo, hi] holding `confidence` of Binomial(n, p)."""
    tail = (1 - confidence) / 2
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    cumulative, lo = 0.0, 0
    for k, mass in enumerate(pmf):
        if cumulative + mass > tail:
            lo = k
            break
        cumulative += mass
    cumulative, hi = 0.0, n
    for k in range(n, -1, -1):
        if cumulative + pmf[k] > tail:
            hi = k
            break
        cumulative += pmf[k]
    return lo, hi


@dataclass
class Sent:
    service: str
    trace_ids: list[str]


def send_calls(stack: NativeStack, service: str, trace_ids: list[str]) -> None:
    for start in range(0, len(trace_ids), BATCH):
        records = []
        for trace_id in trace_ids[start : start + BATCH]:
            span_id = trace_id[:16]
            records.append(
                log_record(
                    {
                        "gen_ai.request.model": "gpt-4o-mini",
                        "llmtel.outcome": "ok",
                        "llmtel.input.preview": "Summarise ticket",
                    },
                    body="chat gpt-4o-mini ok 812 ms",
                    event_name="llmtel.call",
                    trace_id=trace_id,
                    span_id=span_id,
                )
            )
            records.append(
                log_record(
                    {
                        "llmtel.content.input": "Summarise ticket 42 in one line, in full",
                        "llmtel.content.output": "The full answer",
                    },
                    event_name="llmtel.content",
                    trace_id=trace_id,
                    span_id=span_id,
                )
            )
        send(stack.ports.collector_otlp_http, "logs", logs_payload(service, records))


@pytest.fixture(scope="module")
def sent(stack: NativeStack) -> Sent:
    """1,000 calls with trace ids from a fixed seed, sent once."""
    service = f"llmtel-routing-{uuid.uuid4().hex[:8]}"
    rng = random.Random(20261203)
    trace_ids = [rng.randbytes(16).hex() for _ in range(CALLS)]
    send_calls(stack, service, trace_ids)
    return Sent(service, trace_ids)


def eval_queue_for(stack: NativeStack, service: str) -> list[dict[str, Any]]:
    return [
        r
        for r in read_eval_queue(collector_dir(stack, "LLMTEL_EVAL_QUEUE_DIR"))
        if r["resource"].get("service.name") == service
    ]


def test_sampler_config_is_deterministic_with_one_percent_by_default() -> None:
    """Verify that the eval sampler hashes trace ids with a fixed seed at 1% by default."""
    assert SAMPLER["mode"] == "hash_seed"
    assert SAMPLER["attribute_source"] == "traceID"
    assert SAMPLER["sampling_percentage"] == "${env:LLMTEL_EVAL_SAMPLE_PERCENT:-1}"


def test_eval_queue_holds_a_binomially_plausible_deterministic_sample(
    stack: NativeStack, sent: Sent
) -> None:
    """Verify that the eval queue holds exactly the hashed 1% of traces, calls and content."""
    expected = {t for t in sent.trace_ids if sampled_by_collector(t, SAMPLER["hash_seed"], 1)}
    lo, hi = binomial_interval(CALLS, DEFAULT_PERCENT / 100, 0.999)

    def queued() -> list[dict[str, Any]]:
        got = eval_queue_for(stack, sent.service)
        assert len(got) == 2 * len(expected), f"{len(got)} records"
        return got

    records = poll_until(queued, f"{2 * len(expected)} records in the eval queue", timeout=60)
    kinds = Counter((r["trace_id"], r["event_name"]) for r in records)
    assert kinds == Counter(
        {(t, e): 1 for t in expected for e in ("llmtel.call", "llmtel.content")}
    )
    assert lo <= len(expected) <= hi, f"{len(expected)} of {CALLS} outside [{lo}, {hi}]"
    print(f"\n[eval queue] {len(expected)} of {CALLS} traces sampled; 99.9% interval [{lo}, {hi}]")


def test_resent_traces_get_the_same_decision(stack: NativeStack, sent: Sent) -> None:
    """Verify that sending the same 1,000 traces again queues the same traces, once more each."""
    before = {r["trace_id"] for r in eval_queue_for(stack, sent.service)}
    assert before, "the first send queued nothing"
    send_calls(stack, sent.service, sent.trace_ids)

    def twice() -> Counter[str]:
        got = Counter(r["trace_id"] for r in eval_queue_for(stack, sent.service))
        assert set(got) == before
        assert set(got.values()) == {4}, got  # call + content, sent twice
        return got

    poll_until(twice, "every sampled trace queued a second time, and no other", timeout=60)


def test_victorialogs_gets_every_call_record_and_no_content(stack: NativeStack, sent: Sent) -> None:
    """Verify that VictoriaLogs holds every call record of the run and not one content record."""

    def stored() -> list[dict[str, Any]]:
        got = victorialogs(stack, f'service.name:"{sent.service}"')
        assert len(got) >= CALLS, f"{len(got)} records"
        return got

    records = poll_until(stored, f"{CALLS} call records in VictoriaLogs", timeout=60)
    assert {r["event_name"] for r in records} == {"llmtel.call"}
    assert not [r for r in records if any(key.startswith("llmtel.content") for key in r)]
    # The eval sampler marks only its own copy of a record.
    assert not [r for r in records if "sampling.randomness" in r]
    calls_per_trace = Counter(r["trace_id"] for r in records)
    assert set(calls_per_trace) == set(sent.trace_ids)
    assert set(calls_per_trace.values()) <= {1, 2}  # 2 once the resend test has run
    content = victorialogs(stack, f'service.name:"{sent.service}" AND event_name:"llmtel.content"')
    assert content == []


def test_blob_store_gets_every_content_record_and_no_call(stack: NativeStack, sent: Sent) -> None:
    """Verify that the blob store holds every content record of the run and no call record."""
    blob_dir = collector_dir(stack, "LLMTEL_BLOB_DIR")

    def stored() -> list[dict[str, Any]]:
        got = [
            r for r in read_blob_store(blob_dir) if r["resource"]["service.name"] == sent.service
        ]
        assert len(got) >= CALLS, f"{len(got)} records"
        return got

    records = poll_until(stored, f"{CALLS} content records in the blob store", timeout=60)
    assert {r["event_name"] for r in records} == {"llmtel.content"}
    assert {r["trace_id"] for r in records} == set(sent.trace_ids)
    assert all(
        r["attributes"]["llmtel.content.input"] == "Summarise ticket 42 in one line, in full"
        for r in records
    )


def test_content_is_recognised_by_its_attributes_without_an_event_name(
    stack: NativeStack,
) -> None:
    """Verify that a record carrying llmtel.content.* but no event name still skips VictoriaLogs."""
    service = f"llmtel-routing-noname-{uuid.uuid4().hex[:8]}"
    records = [
        log_record({"llmtel.content.input": "full prompt", "probe": "content"}, trace_id="ab" * 16),
        log_record({"llmtel.input.preview": "short", "probe": "preview"}, trace_id="cd" * 16),
    ]
    send(stack.ports.collector_otlp_http, "logs", logs_payload(service, records))
    blob_dir = collector_dir(stack, "LLMTEL_BLOB_DIR")

    def routed() -> tuple[list[str], list[str]]:
        in_logs = [r["probe"] for r in victorialogs(stack, f'service.name:"{service}"')]
        in_blob = [
            r["attributes"]["probe"]
            for r in read_blob_store(blob_dir)
            if r["resource"]["service.name"] == service
        ]
        assert (in_logs, in_blob) == (["preview"], ["content"])
        return in_logs, in_blob

    poll_until(routed, "the preview in VictoriaLogs and the content in the blob store")
