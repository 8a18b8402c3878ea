"""Bad input, case by case (tests/data/bad-input-corpus.yaml), against the real stack.

Emitter cases: each is one chat call through the real openai SDK, with llmtel on, to the
demo server; the app must see exactly what the corpus says (`ok`, or the SDK's own
exception), and the call's record must reach VictoriaLogs with the exact preview.
Collector cases: each is one raw request to the collector's OTLP/HTTP or gRPC endpoint;
the answer must be the exact status, and VictoriaLogs must keep (or drop) the record as
the corpus says. Afterwards the collector is the same process, healthy, and a record
sent last still arrives: nothing crashed.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import openai
import pytest
import yaml
from conftest import ROOT, poll_until
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from stack import NativeStack
from test_collector_support import (
    log_record,
    logs_payload,
    new_span_id,
    new_trace_id,
    span,
    traces_payload,
    victorialogs,
)

import llmtel
from llmtel.demo.server import DemoServer

pytestmark = pytest.mark.stack

CORPUS: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (ROOT / "tests" / "data" / "bad-input-corpus.yaml").read_text()
)
EMITTER_CASES = CORPUS["emitter"]
COLLECTOR_CASES = CORPUS["collector"]
RUN = uuid.uuid4().hex  # every record of this module carries run=RUN


# -- emitter cases -----------------------------------------------------------------------


@dataclass
class Call:
    """One chat call: create() keyword arguments, llmtel context, streamed or not."""

    kwargs: dict[str, Any]
    context: dict[str, str] = field(default_factory=dict)
    stream: bool = False


def _user(content: Any) -> Call:
    return Call({"messages": [{"role": "user", "content": content}]})


def _capped(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _b64(size: int) -> str:
    return base64.b64encode(os.urandom(size * 3 // 4)).decode()


def _image(size: int, text: str | None) -> Call:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    url = "data:image/png;base64," + _b64(size)
    return _user([*parts, {"type": "image_url", "image_url": {"url": url}}])


def _messages_generator(text: str) -> Call:
    return Call({"messages": (m for m in [{"role": "user", "content": text}])})


def _sdk_message_objects(text: str) -> Call:
    earlier = openai.types.chat.ChatCompletionMessage(role="assistant", content="earlier")
    return Call(
        {
            "messages": [
                {"role": "user", "content": "hi"},
                earlier,
                {"role": "user", "content": text},
            ]
        }
    )


EMITTER_BUILDERS: dict[str, Callable[..., Call]] = {
    "repeat": lambda text, times: _user(text * times),
    "surrogateescape": lambda hexed: _user(bytes.fromhex(hexed).decode("utf-8", "surrogateescape")),
    "raw_bytes": lambda hexed: _user(bytes.fromhex(hexed)),
    "chars": lambda start, stop: _user("".join(map(chr, range(start, stop)))),
    "nested_tool_call": lambda depth: Call(
        {
            "messages": [
                {"role": "user", "content": "do it"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "deep", "arguments": _nested_json(depth)},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "done"},
                {"role": "user", "content": "what now?"},
            ]
        }
    ),
    "nested_tool_schema": lambda depth: Call(
        {
            "messages": [{"role": "user", "content": "use the tool"}],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "deep", "parameters": _nested_schema(depth)},
                }
            ],
        }
    ),
    "image": _image,
    "audio": lambda size: _user(
        [
            {"type": "text", "text": "listen"},
            {"type": "input_audio", "input_audio": {"data": _b64(size), "format": "wav"}},
        ]
    ),
    "parts": _user,
    "content": _user,
    "messages_tuple": lambda text: Call({"messages": ({"role": "user", "content": text},)}),
    "messages_generator": _messages_generator,
    "sdk_message_objects": _sdk_message_objects,
    "many_messages": lambda n: Call(
        {"messages": [{"role": "user", "content": f"message {i}"} for i in range(n)]}
    ),
    "no_messages": lambda: Call({"messages": []}),
    "long_model": lambda n: Call({**_user("long model").kwargs, "model": "m" * n}),
    "odd_model": lambda model: Call({**_user("odd model").kwargs, "model": model}),
    "odd_context": lambda user_id: Call(_user("odd context").kwargs, {"user_id": user_id}),
    "kwargs": lambda text, extra: Call({**_user(text).kwargs, **extra}),
    "extra_body": lambda text, n: Call({**_user(text).kwargs, "extra_body": {"blob": "x" * n}}),
    "stream": lambda text, times: Call(
        {**_user(text * times).kwargs, "stream_options": {"include_usage": True}}, stream=True
    ),
}
PREVIEW_BUILDERS: dict[str, Callable[..., str]] = {
    "capped": lambda text, times: _capped(text * times),
    "chars": lambda start, stop: _capped("".join(map(chr, range(start, stop)))),
}


def build_call(case: dict[str, Any]) -> Call:
    spec = case["input"]
    if "text" in spec:
        return _user(spec["text"])
    return EMITTER_BUILDERS[spec["build"]](*spec.get("args", []))


def expected_preview(case: dict[str, Any]) -> str | None:
    if "preview_of" in case:
        spec = case["preview_of"]
        return PREVIEW_BUILDERS[spec["build"]](*spec["args"])
    return case["preview"]  # type: ignore[no-any-return]


@dataclass
class EmitterRun:
    """What the app saw per case, and each case's call record in VictoriaLogs."""

    app: dict[str, str]
    records: dict[str, list[dict[str, Any]]]
    service: str
    all_run_records: list[dict[str, Any]]


@pytest.fixture(scope="module")
def emitter_run(stack: NativeStack) -> EmitterRun:
    """Every emitter case through one llmtel pipeline; the records read back once."""
    service = f"llmtel-bad-input-{RUN[:8]}"
    llmtel.init(
        service,
        endpoint=f"http://127.0.0.1:{stack.ports.collector_otlp_http}",
        resource_attributes={"run": RUN},
    )
    app: dict[str, str] = {}
    try:
        with (
            DemoServer() as server,
            openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client,
        ):
            for case in EMITTER_CASES:
                call = build_call(case)
                kwargs = {"model": "gpt-4o-mini", **call.kwargs}
                try:
                    with llmtel.context(conversation_id=case["id"], **call.context):
                        reply = client.chat.completions.create(stream=call.stream, **kwargs)
                        if call.stream:
                            list(reply)
                    app[case["id"]] = "ok"
                except Exception as error:  # the corpus names the exception it expects
                    app[case["id"]] = type(error).__name__
        assert llmtel.force_flush(timeout_s=20)
    finally:
        llmtel.shutdown()

    def all_arrived() -> list[dict[str, Any]]:
        records = victorialogs(stack, f'service.name:"{service}" AND event_name:"llmtel.call"')
        missing = {c["id"] for c in EMITTER_CASES} - {
            r.get("gen_ai.conversation.id") for r in records
        }
        assert not missing, f"no call record yet for {sorted(missing)}"
        return records

    records = poll_until(all_arrived, "a call record per emitter case", timeout=90)
    by_case: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_case.setdefault(record["gen_ai.conversation.id"], []).append(record)
    run_records = vl_records(stack, f'run:"{RUN}"')
    return EmitterRun(app, by_case, service, run_records)


@pytest.mark.parametrize("case", EMITTER_CASES, ids=[c["id"] for c in EMITTER_CASES])
def test_emitter_bad_input(emitter_run: EmitterRun, case: dict[str, Any]) -> None:
    """Verify that the app sees the corpus' outcome and VictoriaLogs the exact preview."""
    assert emitter_run.app[case["id"]] == case["app"]
    (record,) = emitter_run.records[case["id"]]  # exactly one record: nothing split it
    assert record.get("llmtel.input.preview") == expected_preview(case)


def test_no_emitter_input_forges_a_record_or_a_service(
    stack: NativeStack, emitter_run: EmitterRun
) -> None:
    """Verify that prompts holding newlines, JSON and OTLP fragments made no extra record."""
    assert Counter(r["service.name"] for r in emitter_run.all_run_records) == Counter(
        {emitter_run.service: len(emitter_run.all_run_records)}
    )
    assert victorialogs(stack, 'service.name:"victim"') == []
    assert victorialogs(stack, '_msg:"forged"') == []


# -- collector cases ---------------------------------------------------------------------


def _record(case_id: str, **fields: Any) -> dict[str, Any]:
    record = log_record({"case": case_id, "run": RUN}, body=case_id)
    attributes = fields.pop("attributes", [])
    record["attributes"].extend(attributes)
    record.update(fields)
    return record


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _service() -> str:
    return f"llmtel-bad-otlp-{RUN[:8]}"


def _proto_request(case_id: str, body: str = "x") -> ExportLogsServiceRequest:
    record = LogRecord(
        time_unix_nano=time.time_ns(),
        body=AnyValue(string_value=body),
        attributes=[
            KeyValue(key="case", value=AnyValue(string_value=case_id)),
            KeyValue(key="run", value=AnyValue(string_value=RUN)),
        ],
    )
    service = KeyValue(key="service.name", value=AnyValue(string_value=_service()))
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[service]),
                scope_logs=[ScopeLogs(log_records=[record])],
            )
        ]
    )


def _invalid_utf8_proto(case_id: str) -> bytes:
    data = _proto_request(case_id, "MARK-MARK").SerializeToString()
    return data.replace(b"MARK-MARK", b"\xff\xfe\xfd-\xff\xfe\xfd")


def _odd_span(case_id: str, duration_s: float) -> bytes:
    attributes = {"case": case_id, "run": RUN, "gen_ai.operation.name": "chat"}
    spans = [span(new_trace_id(), new_span_id(), "chat odd", attributes, duration_s=duration_s)]
    return _json(traces_payload(_service(), spans))


def _nan_gauge(case_id: str) -> bytes:
    now = str(time.time_ns())
    points = [
        {
            "timeUnixNano": now,
            "asDouble": value,
            "attributes": [{"key": "v", "value": {"stringValue": value}}],
        }
        for value in ("NaN", "Infinity", "-Infinity")
    ]
    metric = {"name": "llmtel_bad_input_gauge", "gauge": {"dataPoints": points}}
    return _json(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": _service()}}
                        ]
                    },
                    "scopeMetrics": [{"metrics": [metric]}],
                }
            ]
        }
    )


def _nested_kvlist(case_id: str, depth: int) -> bytes:
    value = '{"stringValue":"leaf"}'
    for _ in range(depth):
        value = '{"kvlistValue":{"values":[{"key":"a","value":' + value + "}]}}"
    record = _record(case_id)
    text = json.dumps(logs_payload(_service(), [record]))
    marker = '"attributes": ['
    return text.replace(marker, marker + '{"key":"deep","value":' + value + "},", 1).encode()


def _gzip_bomb(case_id: str, size: int) -> bytes:
    return gzip.compress(b"\0" * size, compresslevel=9)


COLLECTOR_BUILDERS: dict[str, Callable[..., bytes]] = {
    "record_with": lambda case_id, fields: _json(
        logs_payload(_service(), [_record(case_id, **fields)])
    ),
    "invalid_utf8_json": lambda case_id: _json(
        logs_payload(_service(), [_record(case_id, body={"stringValue": "BAD-BYTES"})])
    ).replace(b"BAD-BYTES", b"bad \xff\xfe bytes"),
    "nested_kvlist": _nested_kvlist,
    "truncated_proto": lambda case_id: _proto_request(case_id, "y" * 1000).SerializeToString()[
        :-500
    ],
    "invalid_utf8_proto": _invalid_utf8_proto,
    "traces_proto": lambda case_id: ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="t")]
                    )
                ]
            )
        ]
    ).SerializeToString(),
    "valid_proto": lambda case_id: _proto_request(case_id).SerializeToString(),
    "valid_json": lambda case_id: _json(logs_payload(_service(), [_record(case_id)])),
    "zeros": lambda case_id, size: b"\0" * size,
    "gzip_bomb": _gzip_bomb,
    "record_attrs": lambda case_id, n: _json(
        logs_payload(
            _service(),
            [
                _record(
                    case_id,
                    attributes=[{"key": f"k{i}", "value": {"stringValue": "v"}} for i in range(n)],
                )
            ],
        )
    ),
    "record_value": lambda case_id, n: _json(
        logs_payload(
            _service(),
            [_record(case_id, attributes=[{"key": "big", "value": {"stringValue": "x" * n}}])],
        )
    ),
    "record_key": lambda case_id, n: _json(
        logs_payload(
            _service(),
            [_record(case_id, attributes=[{"key": "k" * n, "value": {"stringValue": "v"}}])],
        )
    ),
    "service_newline": lambda case_id: _json(
        logs_payload(_service() + "\nservice.name=victim", [_record(case_id)])
    ),
    "many_records": lambda case_id, n: _json(
        logs_payload(_service(), [_record(case_id) for _ in range(n)])
    ),
    "odd_span": _odd_span,
    "nan_gauge": _nan_gauge,
    "big_proto": lambda case_id, size: _proto_request(case_id, "z" * size).SerializeToString(),
}


def collector_body(case: dict[str, Any]) -> bytes:
    spec = case.get("body")
    if spec is None:
        return b""
    if "raw" in spec:
        return spec["raw"].encode()  # type: ignore[no-any-return]
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    return COLLECTOR_BUILDERS[spec["build"]](case["id"], *spec.get("args", []))


def send_http(port: int, case: dict[str, Any]) -> tuple[int, str]:
    headers = {}
    if case.get("content_type") is not None:
        headers["Content-Type"] = case["content_type"]
    if "encoding" in case:
        headers["Content-Encoding"] = case["encoding"]
    method = case.get("method", "POST")
    data = collector_body(case) if method != "GET" else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/{case['signal']}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(300).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(300).decode(errors="replace")


def send_grpc(port: int, case: dict[str, Any]) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            request_serializer=lambda raw: raw,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        try:
            export(collector_body(case), timeout=30)
        except grpc.RpcError as error:
            return error.code().name  # type: ignore[no-any-return]
    return "OK"


def vl_records(stack: NativeStack, query: str) -> list[dict[str, Any]]:
    """Like victorialogs(), but reading invalid UTF-8 in the answer as U+FFFD."""
    url = f"http://127.0.0.1:{stack.ports.victorialogs}/select/logsql/query?" + (
        urllib.parse.urlencode({"query": query, "limit": "100000"})
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        # split on "\n" only: str.splitlines() would also split at U+2028 inside values
        lines = response.read().decode(errors="replace").split("\n")
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class CollectorRun:
    answers: dict[str, str]
    stored: Counter[str]
    messages: dict[str, list[str]]


def collector_pid(stack: NativeStack) -> int:
    pid = stack._pid("otel-collector")
    assert pid is not None, "the collector is not running"
    return pid


@pytest.fixture(scope="module")
def collector_run(stack: NativeStack) -> CollectorRun:
    """Every collector case sent once; then a last good record, and what VictoriaLogs kept."""
    pid = collector_pid(stack)
    answers: dict[str, str] = {}
    for case in COLLECTOR_CASES:
        if case.get("transport") == "grpc":
            answers[case["id"]] = send_grpc(stack.ports.collector_otlp_grpc, case)
        else:
            answers[case["id"]] = str(send_http(stack.ports.collector_otlp_http, case)[0])
    last = {"id": "last-good-record", "signal": "logs", "content_type": "application/json"}
    last["body"] = {"build": "valid_json"}
    assert send_http(stack.ports.collector_otlp_http, last)[0] == 200

    def last_arrived() -> Counter[str]:
        stored = Counter(r.get("case", "") for r in vl_records(stack, f'run:"{RUN}"'))
        assert stored["last-good-record"] == 1, stored
        expected = {c["id"] for c in COLLECTOR_CASES if c.get("stored") == "yes"}
        assert expected <= set(stored), f"missing {expected - set(stored)}"
        return stored

    stored = poll_until(last_arrived, "the last good record in VictoriaLogs", timeout=90)
    assert collector_pid(stack) == pid, "the collector restarted"
    messages: dict[str, list[str]] = {}
    for record in vl_records(stack, f'run:"{RUN}"'):
        messages.setdefault(record.get("case", ""), []).append(record["_msg"])
    return CollectorRun(answers, stored, messages)


@pytest.mark.parametrize("case", COLLECTOR_CASES, ids=[c["id"] for c in COLLECTOR_CASES])
def test_collector_bad_input(collector_run: CollectorRun, case: dict[str, Any]) -> None:
    """Verify the collector's exact answer to each case and what VictoriaLogs keeps."""
    assert collector_run.answers[case["id"]] == str(case["status"])
    if case.get("stored") == "yes":
        assert collector_run.stored[case["id"]] == case.get("count", 1)
    elif case.get("stored") == "no":
        assert collector_run.stored[case["id"]] == 0
    if "msg" in case:
        assert collector_run.messages[case["id"]] == [case["msg"]]


def test_collector_survives_the_corpus(stack: NativeStack, collector_run: CollectorRun) -> None:
    """Verify that after every case the collector is healthy and logged no panic."""
    url = f"http://127.0.0.1:{stack.ports.collector_health}/"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.loads(response.read())["status"] == "Server available"
    log = (stack.logs_dir / "otel-collector.log").read_text(errors="replace")
    assert "panic" not in log.lower()
    assert len(collector_run.answers) == len(COLLECTOR_CASES)


def test_corpus_has_at_least_50_cases_each_with_its_handling() -> None:
    """Verify that the corpus holds 50+ uniquely named cases, each with documented handling."""
    cases = EMITTER_CASES + COLLECTOR_CASES
    assert len(cases) >= 50
    assert len({c["id"] for c in cases}) == len(cases)
    assert all(c.get("handling") for c in cases)
