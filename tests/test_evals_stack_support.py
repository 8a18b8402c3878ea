"""Helpers for the eval worker's stack tests (this module holds no tests).

The session's collector samples the default 1% into its eval queue (other tests check
exactly that), so these tests start a second collector of the same binary and config,
sampling 100%, on free ports, in front of the session's Prometheus, Jaeger and
VictoriaLogs. Known calls go through the real ``openai`` SDK into it; the eval worker
runs as users run it, ``python -m llmtel evals ...`` in its own process.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from stack import NativeStack, StackError

import llmtel
from llmtel.demo.server import DemoServer
from llmtel.evals import default_config_text

DEMO_JUDGE_HEADER = "x-llmtel-demo-judge"


def _load_tests_conftest() -> Any:
    """This directory's conftest, by path.

    emitter/tests has a ``conftest`` module too; when pytest collects both directories
    in one run, ``from conftest import ...`` finds whichever it loaded last.
    """
    spec = importlib.util.spec_from_file_location(
        "llmtel_stack_tests_conftest", Path(__file__).with_name("conftest.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


poll_until = _load_tests_conftest().poll_until


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def sampling_collector(
    stack: NativeStack, bins: dict[str, Path], state_dir: Path
) -> Iterator[NativeStack]:
    """A second collector on the repo's config, copying 100% of traces to its eval queue.

    It runs the session's collector binary (``bins``), even if a changed builder
    manifest has made another one current since the session started.

    Its four ports are ones the system has free (fixed ones can be taken by any
    connection's local port); a port taken between the choice and the start means
    another try.
    """
    for attempt in range(3):
        grpc, http, health, telemetry = free_ports(4)
        ports = dataclasses.replace(
            stack.ports,
            collector_otlp_grpc=grpc,
            collector_otlp_http=http,
            collector_health=health,
            collector_telemetry=telemetry,
        )
        side = NativeStack(ports, state_dir)
        side.logs_dir.mkdir(parents=True, exist_ok=True)
        side.pids_dir.mkdir(parents=True, exist_ok=True)
        try:
            with pytest.MonkeyPatch.context() as env:
                env.setenv("LLMTEL_EVAL_SAMPLE_PERCENT", "100")  # the collector inherits it
                side.start_service("otel-collector", bins=bins)
            break
        except StackError:
            failed = side._processes.pop("otel-collector", None)  # reap it: no ResourceWarning
            if failed is not None:
                failed.wait(timeout=10)
            if attempt == 2:
                raise
    try:
        yield side
    finally:
        side.stop_service("otel-collector")


def eval_queue_dir(collector: NativeStack) -> Path:
    """Where a native collector writes its eval queue."""
    return Path(collector.collector_env()["LLMTEL_EVAL_QUEUE_DIR"])


def queued_records(collector: NativeStack, service: str) -> list[dict[str, Any]]:
    """Every eval-queue record (call or content) of ``service``, as raw OTLP/JSON records."""
    records = []
    for path in sorted(eval_queue_dir(collector).glob("eval-queue*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            for resource in json.loads(line)["resourceLogs"]:
                names = [
                    a["value"].get("stringValue")
                    for a in resource.get("resource", {}).get("attributes", [])
                    if a["key"] == "service.name"
                ]
                if names != [service]:
                    continue
                for scope in resource.get("scopeLogs", []):
                    records.extend(scope.get("logRecords", []))
    return records


@dataclass(frozen=True)
class KnownCall:
    """An app call the test made, and the verdict each rubric must give it."""

    model: str
    prompt: str
    trace_id: str
    span_id: str
    labels: dict[str, str]  # rubric -> pass | fail | not_applicable

    @property
    def call_id(self) -> str:
        """``<trace id>-<span id>``."""
        return f"{self.trace_id}-{self.span_id}"


RUBRICS = ("grounded", "cites_sources", "appropriate_refusal")


def expected_labels(prompt: str) -> dict[str, str]:
    """The demo judge's verdicts for a prompt (its markers, else pass), per rubric."""
    labels = dict.fromkeys(RUBRICS, "pass")
    if "[demo-verdict:fail]" in prompt:
        labels = dict.fromkeys(RUBRICS, "fail")
    for rubric in RUBRICS:
        for marker, label in (("fail", "fail"), ("na", "not_applicable"), ("pass", "pass")):
            if f"[demo-verdict:{rubric}={marker}]" in prompt:
                labels[rubric] = label
    return labels


def send_app_calls(
    collector: NativeStack,
    service: str,
    prompt_version: str,
    calls: Sequence[tuple[str, str, bool]],
) -> list[KnownCall]:
    """Send (model, prompt, fails) calls through the real SDK with llmtel (capture ``full``).

    Returns the calls that succeeded; waits until the eval queue holds every record.
    """
    llmtel.init(
        service_name=service,
        endpoint=f"http://127.0.0.1:{collector.ports.collector_otlp_http}",
        capture_content="full",
        set_global_providers=False,
    )
    known: list[KnownCall] = []
    try:
        with (
            DemoServer() as app_server,
            openai.OpenAI(base_url=app_server.base_url, api_key="k", max_retries=0) as client,
        ):
            for model, prompt, fails in calls:
                with llmtel.context(endpoint="support-answer", prompt_version=prompt_version):
                    try:
                        reply = client.chat.completions.create(
                            model=model,
                            messages=[
                                {"role": "system", "content": "Answer from the documents."},
                                {"role": "user", "content": prompt},
                            ],
                            extra_headers={"x-llmtel-demo-fail": "500"} if fails else {},
                        )
                    except openai.InternalServerError:
                        continue
                call_id = llmtel.call_id(reply)
                assert call_id is not None
                trace_id, span_id = call_id.split("-")
                known.append(KnownCall(model, prompt, trace_id, span_id, expected_labels(prompt)))
        assert llmtel.force_flush(timeout_s=10)
    finally:
        llmtel.shutdown()

    # Each call sends a call record and a content record (failed calls too).
    def all_queued() -> None:
        count = len(queued_records(collector, service))
        assert count == 2 * len(calls), f"{count} of {2 * len(calls)} records"

    poll_until(all_queued, f"{2 * len(calls)} records of {service} in the eval queue", 60)
    return known


def unique(prefix: str) -> str:
    """``prefix`` and 8 random hex digits."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def worker_config(path: Path, headers: dict[str, str] | None = None) -> Path:
    """The shipped rubrics, judged by a demo server (its judge header set), retrying fast.

    ``headers`` go on every judge request too (``x-llmtel-demo-latency-ms``, say).
    """
    text = default_config_text()
    sent = {DEMO_JUDGE_HEADER: "0", **(headers or {})}
    for old, new in (
        ("  headers: {}\n", f"  headers: {json.dumps(sent)}\n"),
        ("  backoff_initial_s: 1\n", "  backoff_initial_s: 0.1\n"),
    ):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return path


def worker_command(
    mode: str,
    collector: NativeStack,
    judge: DemoServer,
    config: Path,
    state_dir: Path,
    judge_model: str,
) -> list[str]:
    """``python -m llmtel evals MODE`` on the side collector's queue, judged by ``judge``."""
    return [
        sys.executable,
        "-m",
        "llmtel",
        "evals",
        mode,
        "--config",
        str(config),
        "--judge-base-url",
        judge.base_url,
        "--judge-model",
        judge_model,
        "--queue-dir",
        str(eval_queue_dir(collector)),
        "--state-dir",
        str(state_dir),
        "--endpoint",
        f"http://127.0.0.1:{collector.ports.collector_otlp_http}",
    ]


def worker_env() -> dict[str, str]:
    """The environment without OTEL_*, LLMTEL_* and OPENAI_* variables."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_", "OPENAI_"))
    }


def run_worker(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a worker command to its end."""
    return subprocess.run(
        command, capture_output=True, text=True, env=worker_env(), timeout=timeout, check=False
    )


def get_json(url: str) -> Any:
    """GET a URL and parse its JSON body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def prometheus_vector(stack: NativeStack, query: str) -> dict[tuple[tuple[str, str], ...], float]:
    """An instant query's result: sorted label pairs -> value."""
    url = f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    body = get_json(url)
    assert body["status"] == "success", body
    return {
        tuple(sorted(sample["metric"].items())): float(sample["value"][1])
        for sample in body["data"]["result"]
    }


def victorialogs_records(stack: NativeStack, query: str) -> list[dict[str, Any]]:
    """The records a LogsQL query returns."""
    url = f"http://127.0.0.1:{stack.ports.victorialogs}/select/logsql/query?" + (
        urllib.parse.urlencode({"query": query})
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        return [json.loads(line) for line in response.read().splitlines() if line]


def evaluation_records(stack: NativeStack, prompt_version: str) -> list[dict[str, Any]]:
    """The gen_ai.evaluation.result records in VictoriaLogs for the calls of a prompt version."""
    records = victorialogs_records(stack, f'llmtel.prompt.version:"{prompt_version}"')
    return [r for r in records if "gen_ai.evaluation.name" in r]
