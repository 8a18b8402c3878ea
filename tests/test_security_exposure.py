"""Exposure: what the native stack lets in, and what it lets out.

- Every listening socket of every stack process binds 127.0.0.1, and they are exactly
  the ports the stack documents (read from /proc/net/tcp* by socket inode of each PID).
- Prometheus' admin and lifecycle endpoints are off.
- With collector-config/auth-overlay.yaml (LLMTEL_OTLP_TOKEN), the OTLP receivers refuse
  a request without the token, or with another one (HTTP 401, gRPC UNAUTHENTICATED), and
  accept the emitter configured with the standard OTEL_EXPORTER_OTLP_HEADERS.
- A canary API key on the app's openai client (sent as `Authorization: Bearer` and as an
  extra header) is in no exported record, backend, log file, blob, eval or disk queue.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import openai
import pytest
from conftest import TEST_PORT_OFFSET, poll_until
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from stack import AUTH_OVERLAY, NativeStack, Ports
from test_collector_support import (
    get_json,
    log_record,
    logs_payload,
    read_blob_store,
    victorialogs,
)

import llmtel
from llmtel.demo.server import DemoServer

pytestmark = pytest.mark.stack

# The bearer-auth collector runs beside the session's stack, 700 ports above it.
AUTH_PORT_OFFSET = TEST_PORT_OFFSET + 700
LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


# -- sockets ----------------------------------------------------------------------------


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> tuple[str, int]:
    """'0100007F:1F90' (IPv4) or a 32-digit IPv6 form -> ('127.0.0.1', 8080)."""
    host, port = hex_address.split(":")
    if len(host) == 8:
        ip = ".".join(str(b) for b in reversed(bytes.fromhex(host)))
    else:  # four little-endian 32-bit words
        words = [bytes.fromhex(host[i : i + 8])[::-1] for i in range(0, 32, 8)]
        raw = b"".join(words)
        ip = ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2))
    return ip, int(port, 16)


def listening_sockets(pid: int) -> set[tuple[str, str, int]]:
    """(protocol, address, port) of every TCP socket in LISTEN and every bound UDP
    socket the process holds."""
    inodes = _socket_inodes(pid)
    found = set()
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in inodes:
                continue
            if protocol.startswith("tcp") and state != LISTEN:
                continue
            found.add((protocol, *_address(local)))
    return found


def test_every_stack_socket_listens_on_loopback_only(stack: NativeStack) -> None:
    """Verify that every stack process listens on 127.0.0.1 only, on its documented ports."""
    sockets: dict[str, set[tuple[str, str, int]]] = {}
    for name in stack.status():
        pid = stack._pid(name)
        assert pid is not None, f"{name} is not running"
        sockets[name] = listening_sockets(pid)
    everything = set().union(*sockets.values())
    assert {address for _, address, _ in everything} == {"127.0.0.1"}, sockets
    assert {protocol for protocol, _, _ in everything} == {"tcp"}, sockets
    p = stack.ports
    assert {name: {port for _, _, port in found} for name, found in sockets.items()} == {
        "victorialogs": {p.victorialogs},
        "jaeger": {
            p.jaeger_otlp_grpc,
            p.jaeger_otlp_http,
            p.jaeger_query,
            p.jaeger_query_grpc,
            p.jaeger_health,
            p.jaeger_telemetry,
        },
        "alertmanager": {p.alertmanager},
        "prometheus": {p.prometheus},
        "otel-collector": {
            p.collector_otlp_grpc,
            p.collector_otlp_http,
            p.collector_health,
            p.collector_telemetry,
        },
    }


def _post(url: str, headers: dict[str, str] | None = None, data: bytes = b"") -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_prometheus_admin_and_lifecycle_endpoints_are_off(stack: NativeStack) -> None:
    """Verify that Prometheus refuses its admin API (TSDB delete, snapshot) and /-/quit."""
    base = f"http://127.0.0.1:{stack.ports.prometheus}"
    for path in ("/api/v1/admin/tsdb/snapshot", "/api/v1/admin/tsdb/delete_series?match[]=up"):
        status, body = _post(base + path)
        assert (status, json.loads(body)["error"]) == (500, "admin APIs disabled"), path
    for path in ("/-/quit", "/-/reload"):
        assert _post(base + path) == (403, "Lifecycle API is not enabled."), path


# -- bearer-token auth ----------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_collector(
    stack: NativeStack, bins: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NativeStack, str]]:
    """A second collector with auth-overlay.yaml, exporting to the session stack's backends."""
    token = uuid.uuid4().hex
    auth = NativeStack(
        Ports().shifted(AUTH_PORT_OFFSET),
        tmp_path_factory.mktemp("auth-collector"),
        collector_overlays=[AUTH_OVERLAY],
    )
    (service,) = [s for s in auth.services(bins) if s.name == "otel-collector"]
    backends = {
        key: value
        for key, value in stack.collector_env().items()
        if key.startswith(("JAEGER_", "VICTORIALOGS_", "PROMETHEUS_"))
    }
    env = {**os.environ, **service.env, **backends, "LLMTEL_OTLP_TOKEN": token}
    log = auth.state_dir / "otel-collector.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [service.binary, *service.args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def healthy() -> None:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(service.health_url, timeout=2) as response:
                    assert response.status == 200
            except OSError as error:
                raise AssertionError(str(error)) from error

        poll_until(healthy, "the bearer-auth collector to be healthy", timeout=60, interval=0.3)
        yield auth, token
    finally:
        process.terminate()
        process.wait(timeout=20)


def _grpc_export(port: int, service: str, body: str, metadata: list[tuple[str, str]]) -> None:
    record = LogRecord(time_unix_nano=time.time_ns(), body=AnyValue(string_value=body))
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
                ),
                scope_logs=[ScopeLogs(log_records=[record])],
            )
        ]
    )
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            request_serializer=ExportLogsServiceRequest.SerializeToString,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        export(request, metadata=metadata, timeout=10)


def test_bearer_auth_refuses_requests_without_the_token(
    stack: NativeStack, auth_collector: tuple[NativeStack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that with the auth overlay only requests carrying the token get in (HTTP, gRPC,
    and the emitter with OTEL_EXPORTER_OTLP_HEADERS)."""
    auth, token = auth_collector
    service = f"llmtel-auth-{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{auth.ports.collector_otlp_http}/v1/logs"

    def http(body: str, headers: dict[str, str]) -> int:
        payload = logs_payload(service, [log_record({}, body=body)])
        data = json.dumps(payload).encode()
        return _post(url, {"Content-Type": "application/json", **headers}, data)[0]

    assert http("http no token", {}) == 401
    assert http("http wrong token", {"Authorization": "Bearer not-the-token"}) == 401
    assert http("http token without scheme", {"Authorization": token}) == 401
    assert http("http ok", {"Authorization": f"Bearer {token}"}) == 200

    grpc_port = auth.ports.collector_otlp_grpc
    for body, metadata in [
        ("grpc no token", []),
        ("grpc wrong token", [("authorization", "Bearer not-the-token")]),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            _grpc_export(grpc_port, service, body, metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, body
    _grpc_export(grpc_port, service, "grpc ok", [("authorization", f"Bearer {token}")])

    # The documented app side: the standard variable, URL-encoded space.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{token}")
    llmtel.init(service, endpoint=f"http://127.0.0.1:{auth.ports.collector_otlp_http}")
    try:
        with (
            DemoServer() as server,
            openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client,
        ):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "emitter ok"}]
            )
        assert llmtel.force_flush(timeout_s=10)
    finally:
        llmtel.shutdown()

    def arrived() -> list[str]:
        records = victorialogs(stack, f'service.name:"{service}"')
        found = sorted(r.get("llmtel.input.preview") or r["_msg"] for r in records)
        assert found == ["emitter ok", "grpc ok", "http ok"], found
        return found

    poll_until(arrived, "the three authenticated records in VictoriaLogs", timeout=60)
    time.sleep(2)  # refused requests would have arrived by now too
    assert arrived() == ["emitter ok", "grpc ok", "http ok"]


# -- canary API key ---------------------------------------------------------------------


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    hits.append(str(path.relative_to(root)))
            except OSError:
                continue
    return hits


def test_canary_api_key_is_never_exported_logged_or_stored(
    stack: NativeStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that an API key set on the app's client appears in no record, backend, log
    file, blob or queue, while a marker in the prompt does (so the search can find)."""
    caplog.set_level(logging.DEBUG)
    # Not shaped like any key the collector redacts: finding it nowhere proves the
    # emitter never sent it, not that the collector masked it.
    canary = f"llmtel-canary-{uuid.uuid4().hex}"
    marker = f"llmtel-marker-{uuid.uuid4().hex}"
    service = f"llmtel-canary-svc-{uuid.uuid4().hex[:8]}"
    llmtel.init(
        service,
        endpoint=f"http://127.0.0.1:{stack.ports.collector_otlp_http}",
        capture_content="full",
    )
    # VictoriaLogs down: the call records wait in the collector's disk queue, which is
    # searched while they are there.
    stack.stop_service("victorialogs")
    try:
        with (
            DemoServer() as server,
            openai.OpenAI(
                base_url=server.base_url,
                api_key=canary,
                default_headers={"X-Api-Key": canary},
                max_retries=0,
            ) as client,
        ):
            messages: Any = [{"role": "user", "content": f"hello {marker}"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            list(stream)
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages,
                    extra_headers={"x-llmtel-demo-fail": "401"},
                )
            client.embeddings.create(model="text-embedding-3-small", input=f"embed {marker}")
        assert llmtel.force_flush(timeout_s=10)
        queue_dir = Path(stack.collector_env()["OTELCOL_QUEUE_DIR"])
        poll_until(
            lambda: _assert(_files_containing(queue_dir, marker.encode())),
            "the call records in the collector's disk queue",
            timeout=30,
        )
        queued_with_canary = _files_containing(queue_dir, canary.encode())
    finally:
        stack.start_service("victorialogs")
        llmtel.shutdown()
    assert queued_with_canary == []

    def delivered() -> list[dict[str, Any]]:
        records = victorialogs(stack, f'service.name:"{service}"')
        assert len([r for r in records if r.get("event_name") == "llmtel.call"]) == 4, records
        return records

    records = poll_until(delivered, "the 4 call records in VictoriaLogs", timeout=90)
    logs_text = json.dumps(records)
    assert marker in logs_text
    assert canary not in logs_text

    query = urllib.parse.urlencode({"service": service, "limit": "100"})
    traces = get_json(f"http://127.0.0.1:{stack.ports.jaeger_query}/api/traces?{query}")
    assert len(traces["data"]) == 4
    assert canary not in json.dumps(traces)

    series_url = f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/series?" + (
        urllib.parse.urlencode({"match[]": f'{{job="{service}"}}'})
    )
    series = get_json(series_url)
    assert series["data"], "no series for the canary app in Prometheus"
    assert canary not in json.dumps(series)

    blob = read_blob_store(Path(stack.collector_env()["LLMTEL_BLOB_DIR"]))
    blob_text = json.dumps(blob)
    assert marker in blob_text
    assert canary not in blob_text

    # Every file of the stack: logs, rendered configs, queues, eval queue, raw storage.
    assert _files_containing(stack.state_dir, canary.encode()) == []
    assert canary not in caplog.text


def _assert(value: list[str]) -> list[str]:
    assert value, "nothing yet"
    return value
