"""`llmtel.init`, `shutdown` and `force_flush` against a fake OTLP/HTTP collector."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import openai
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

import llmtel
from llmtel import _setup
from llmtel.demo.server import DemoServer

if TYPE_CHECKING:
    from conftest import FakeCollector

pytestmark = pytest.mark.usefixtures("clean_otel_env", "llmtel_down")

USER = [{"role": "user", "content": "Summarise ticket 7"}]


def _ask(server: DemoServer, api_key: str = "test-key") -> None:
    with openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]


def _resource(resource: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in resource.attributes}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_init_exports_traces_logs_and_metrics(collector: FakeCollector, server: DemoServer) -> None:
    """Verify that init sends all three signals as OTLP http/protobuf to the endpoint."""
    llmtel.init("checkout", endpoint=collector.url, set_global_providers=False)
    _ask(server)
    assert llmtel.force_flush(timeout_s=5)

    for path in ("/v1/traces", "/v1/logs", "/v1/metrics"):
        requests = collector.received(path)
        assert requests, path
        assert requests[0].headers["content-type"] == "application/x-protobuf"
    ((resource, span),) = collector.spans()
    assert _resource(resource)["service.name"] == "checkout"
    assert _resource(resource)["telemetry.distro.name"] == "llmtel"
    assert span.name == "chat gpt-4o-mini"
    ((_, record),) = collector.logs()
    assert record.event_name == "llmtel.call"
    assert record.trace_id == span.trace_id
    assert record.span_id == span.span_id
    assert collector.metric_names() == {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
    }


def test_otel_env_vars_configure_init(
    collector: FakeCollector, server: DemoServer, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the OTLP endpoint apply."""
    clean_otel_env.setenv("OTEL_SERVICE_NAME", "from-env")
    clean_otel_env.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,team=search"
    )
    clean_otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    llmtel.init(set_global_providers=False)
    _ask(server)
    assert llmtel.force_flush(timeout_s=5)
    ((resource, _),) = collector.spans()
    attrs = _resource(resource)
    assert attrs["service.name"] == "from-env"
    assert attrs["deployment.environment.name"] == "test"
    assert attrs["team"] == "search"


def test_explicit_arguments_win_over_env(
    collector: FakeCollector, server: DemoServer, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that service_name, endpoint and resource_attributes override OTEL_* variables."""
    dead = f"http://127.0.0.1:{_free_port()}"
    clean_otel_env.setenv("OTEL_SERVICE_NAME", "from-env")
    clean_otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=search")
    clean_otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", dead)
    clean_otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{dead}/v1/traces")
    llmtel.init(
        "from-arg",
        endpoint=collector.url + "/",
        resource_attributes={"team": "ranking"},
        set_global_providers=False,
    )
    _ask(server)
    assert llmtel.force_flush(timeout_s=5)
    ((resource, _),) = collector.spans()
    assert _resource(resource)["service.name"] == "from-arg"
    assert _resource(resource)["team"] == "ranking"
    assert collector.logs()


def test_per_signal_endpoint_env_vars(
    collector: FakeCollector, server: DemoServer, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is, the others get /v1/<signal>."""
    clean_otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    clean_otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{collector.url}/custom/spans")
    llmtel.init(set_global_providers=False)
    _ask(server)
    assert llmtel.force_flush(timeout_s=5)
    assert len(collector.spans("/custom/spans")) == 1
    assert collector.received("/v1/traces") == []
    assert len(collector.logs()) == 1


def test_signal_exporter_none_turns_a_signal_off(
    collector: FakeCollector, server: DemoServer, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that OTEL_TRACES_EXPORTER=none stops spans while logs and metrics still flow."""
    clean_otel_env.setenv("OTEL_TRACES_EXPORTER", "none")
    llmtel.init(endpoint=collector.url, set_global_providers=False)
    _ask(server)
    assert llmtel.force_flush(timeout_s=5)
    assert collector.received("/v1/traces") == []
    assert len(collector.logs()) == 1
    assert collector.metric_names()


def test_sdk_disabled_means_no_instrumentation(
    collector: FakeCollector, server: DemoServer, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that OTEL_SDK_DISABLED=true makes init a no-op."""
    clean_otel_env.setenv("OTEL_SDK_DISABLED", "true")
    llmtel.init(endpoint=collector.url, set_global_providers=False)
    assert not _setup.is_initialised()
    _ask(server)
    assert llmtel.force_flush(timeout_s=1)
    assert collector.requests == []


def test_second_init_warns_and_keeps_the_first(
    make_collector: Callable[[], FakeCollector],
    server: DemoServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that calling init twice logs a warning and changes nothing."""
    first, second = make_collector(), make_collector()
    llmtel.init("first", endpoint=first.url, set_global_providers=False)
    with caplog.at_level(logging.WARNING, logger="llmtel"):
        llmtel.init("second", endpoint=second.url, set_global_providers=False)
    assert any("init() called again" in r.getMessage() for r in caplog.records)
    _ask(server)
    assert llmtel.force_flush(timeout_s=5)
    assert second.requests == []
    ((resource, _),) = first.spans()
    assert _resource(resource)["service.name"] == "first"


def test_shutdown_allows_a_fresh_init(collector: FakeCollector, server: DemoServer) -> None:
    """Verify that after shutdown the SDK is unpatched and init can start again."""
    llmtel.init("one", endpoint=collector.url, set_global_providers=False)
    _ask(server)
    llmtel.shutdown()
    assert len(collector.spans()) == 1  # shutdown flushed
    _ask(server)  # not instrumented
    assert len(collector.spans()) == 1
    llmtel.init("two", endpoint=collector.url, set_global_providers=False)
    _ask(server)
    assert llmtel.force_flush(timeout_s=5)
    assert [_resource(r)["service.name"] for r, _ in collector.spans()] == ["one", "two"]


def test_force_flush_without_init_returns_true() -> None:
    """Verify that force_flush and shutdown are harmless before init."""
    assert llmtel.force_flush() is True
    llmtel.shutdown()


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [(None, None, 10_000.0), (None, "250", 250.0), (500, "250", 500.0), (None, "soon", 10_000.0)],
)
def test_metric_export_interval(
    explicit: float | None, env: str | None, expected: float, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that the interval is the argument, else OTEL_METRIC_EXPORT_INTERVAL, else 10 s."""
    if env is not None:
        clean_otel_env.setenv("OTEL_METRIC_EXPORT_INTERVAL", env)
    assert _setup.resolve_metric_interval_ms(explicit) == expected


def test_metrics_are_exported_periodically(
    collector: FakeCollector, server: DemoServer, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that metrics reach the collector on their own at OTEL_METRIC_EXPORT_INTERVAL."""
    clean_otel_env.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    llmtel.init(endpoint=collector.url, set_global_providers=False)
    _ask(server)
    deadline = time.monotonic() + 5
    while not collector.metric_names() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "gen_ai.client.operation.duration" in collector.metric_names()


def test_collector_down_never_raises_or_blocks(server: DemoServer) -> None:
    """Verify that a dead collector neither fails nor slows calls, and exit stays bounded."""
    llmtel.init(
        endpoint=f"http://127.0.0.1:{_free_port()}",
        metric_export_interval_ms=100,
        set_global_providers=False,
    )
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as client:
        for _ in range(20):
            started = time.monotonic()
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
            assert time.monotonic() - started < 1.0
            assert reply.choices
    started = time.monotonic()
    assert llmtel.force_flush(timeout_s=0.5) is False
    llmtel.shutdown(timeout_s=1)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("capture", ["none", "preview", "full"])
def test_no_credentials_are_exported(
    collector: FakeCollector, server: DemoServer, capture: str
) -> None:
    """Verify that neither the API key nor the Authorization header ends up in any export,
    whatever the capture setting."""
    secret = "sk-llmtel-secret-0123456789"
    llmtel.init(
        "creds",
        endpoint=collector.url,
        capture_content=capture,  # type: ignore[arg-type]
        set_global_providers=False,
    )
    with openai.OpenAI(
        base_url=server.base_url,
        api_key=secret,
        max_retries=0,
        default_headers={"X-Custom-Auth": f"Bearer {secret}"},
    ) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,  # type: ignore[arg-type]
                extra_headers={"x-llmtel-demo-fail": "401"},
            )
    assert llmtel.force_flush(timeout_s=5)
    assert collector.requests
    for request in collector.requests:
        assert secret.encode() not in request.body
        assert b"Bearer" not in request.body
        assert b"authorization" not in request.body.lower()


def test_init_installs_global_providers_once() -> None:
    """Verify that init sets the OTel globals when unset, and leaves an app's own provider alone."""
    script = textwrap.dedent(
        """
        import logging, sys
        from opentelemetry import _logs, metrics, trace
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider
        import llmtel

        own = TracerProvider()
        if sys.argv[1] == "app-has-tracer":
            trace.set_tracer_provider(own)
        logging.basicConfig(level=logging.WARNING)
        llmtel.init("globals", endpoint="http://127.0.0.1:9")
        tp = trace.get_tracer_provider()
        assert isinstance(tp, TracerProvider), tp
        assert (tp is own) == (sys.argv[1] == "app-has-tracer")
        assert isinstance(_logs.get_logger_provider(), LoggerProvider)
        assert isinstance(metrics.get_meter_provider(), MeterProvider)
        llmtel.shutdown(timeout_s=0.5)
        print("ok")
        """
    )
    for mode in ("fresh", "app-has-tracer"):
        done = subprocess.run(
            [sys.executable, "-c", script, mode],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ok"
        assert "Overriding" not in done.stderr


DROPS_APP = textwrap.dedent(
    """
    import os, sys
    import openai, llmtel

    llmtel.init("drops", metric_export_interval_ms=60_000)
    assert "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED" not in os.environ
    client = openai.OpenAI(base_url=sys.argv[1], api_key="k", max_retries=0)
    for n in range(int(sys.argv[2])):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"drop {n}"}]
        )
    llmtel.shutdown(timeout_s=2)
    """
)


def test_dropped_spans_are_counted_by_default(
    collector: FakeCollector, server: DemoServer, clean_otel_env: pytest.MonkeyPatch
) -> None:
    """Verify that spans the bounded queue drops while the trace endpoint is unreachable are
    counted (otel.sdk.processor.span.processed, error.type queue_full) without any setting."""
    calls, queue = 30, 4
    # A trace endpoint that takes the connection and never answers: the one export
    # worker waits on it while the bounded queue fills.
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(8)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTEL_"))},
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": (
                f"http://127.0.0.1:{stalled.getsockname()[1]}/v1/traces"
            ),
            "OTEL_BSP_MAX_QUEUE_SIZE": str(queue),
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(queue),
        }
        done = subprocess.run(
            [sys.executable, "-c", DROPS_APP, server.base_url, str(calls)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    dropped = 0
    for request in collector.received("/v1/metrics"):
        message = ExportMetricsServiceRequest.FromString(request.body)
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != "otel.sdk.processor.span.processed":
                        continue
                    for point in metric.sum.data_points:
                        attrs = {kv.key: kv.value.string_value for kv in point.attributes}
                        if attrs.get("error.type") == "queue_full":
                            dropped = max(dropped, point.as_int)
    # At most one batch in flight and one full queue hold spans; every other one is dropped.
    assert calls - 2 * queue <= dropped <= calls
