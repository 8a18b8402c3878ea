"""Shared fixtures: the demo server, real openai clients, and llmtel's in-memory capture."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import llmtel
from llmtel.demo.server import DemoServer
from llmtel.testing import Capture, capture


@pytest.fixture(scope="session")
def server() -> Iterator[DemoServer]:
    """One OpenAI-compatible demo server for the whole session."""
    with DemoServer(host="127.0.0.1", port=0) as srv:
        yield srv


@pytest.fixture
def client(server: DemoServer) -> Iterator[openai.OpenAI]:
    """A real sync OpenAI client pointed at the demo server."""
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as c:
        yield c


@pytest.fixture
def async_client(server: DemoServer) -> openai.AsyncOpenAI:
    """A real async OpenAI client; use it inside ``asyncio.run`` and close it there."""
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def telemetry() -> Iterator[Capture]:
    """llmtel initialised with in-memory exporters for one test."""
    with capture() as cap:
        yield cap


@dataclass
class OtlpRequest:
    """One OTLP/HTTP export request received by the fake collector."""

    path: str
    headers: dict[str, str]
    body: bytes


class FakeCollector:
    """An OTLP/HTTP receiver that records every request and answers 200."""

    def __init__(self) -> None:
        self.requests: list[OtlpRequest] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner._lock:
                    owner.requests.append(
                        OtlpRequest(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def received(self, path: str) -> list[OtlpRequest]:
        """The requests posted to ``path`` so far."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def spans(self, path: str = "/v1/traces") -> list[Any]:
        """Every span (protobuf) posted to ``path``."""
        out = []
        for request in self.received(path):
            message = ExportTraceServiceRequest.FromString(request.body)
            out.extend(
                (rs.resource, span)
                for rs in message.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            )
        return out

    def logs(self, path: str = "/v1/logs") -> list[Any]:
        """Every log record (protobuf) posted to ``path``."""
        out = []
        for request in self.received(path):
            message = ExportLogsServiceRequest.FromString(request.body)
            out.extend(
                (rl.resource, record)
                for rl in message.resource_logs
                for sl in rl.scope_logs
                for record in sl.log_records
            )
        return out

    def metric_names(self, path: str = "/v1/metrics") -> set[str]:
        """The names of every metric posted to ``path``."""
        names = set()
        for request in self.received(path):
            message = ExportMetricsServiceRequest.FromString(request.body)
            names.update(
                m.name
                for rm in message.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
            )
        return names

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def make_collector() -> Iterator[Callable[[], FakeCollector]]:
    """A factory of fake OTLP/HTTP collectors, each on a free local port."""
    made: list[FakeCollector] = []

    def make() -> FakeCollector:
        made.append(FakeCollector())
        return made[-1]

    yield make
    llmtel.shutdown(timeout_s=1)  # while the collectors still answer
    for fake in made:
        fake.close()


@pytest.fixture
def collector(make_collector: Callable[[], FakeCollector]) -> FakeCollector:
    """A fake OTLP/HTTP collector on a free local port."""
    return make_collector()


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove every OTEL_* and LLMTEL_* variable so a test sets exactly what it needs."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "LLMTEL_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def llmtel_down() -> Iterator[None]:
    """Make sure llmtel is shut down after the test, whatever the test did."""
    yield
    llmtel.shutdown(timeout_s=1)
