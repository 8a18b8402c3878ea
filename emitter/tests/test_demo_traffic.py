"""The traffic generator counts every call it sends, by model and outcome, and never crashes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtel.__main__ import main
from llmtel.demo import DemoConfig, DemoServer, TrafficOptions, TrafficSummary, run_traffic
from llmtel.demo import _cli as demo_cli
from llmtel.demo._summary import format_summary

CHAT = "/v1/chat/completions"
FLAKY = DemoConfig(rate_429=0.15, rate_500=0.1, seed=11)


@pytest.fixture
def flaky_server() -> Iterator[DemoServer]:
    with DemoServer(config=FLAKY) as server:
        yield server


@pytest.fixture
def no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep in-process CLI runs from installing llmtel globally in the test process."""
    monkeypatch.setattr(demo_cli, "start_telemetry", lambda _name, _report: lambda: None)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_matches_server(summary: dict[str, int], counts: dict[tuple[str, str], int]) -> None:
    """The client's outcomes equal the server's, status by status."""
    server_side = {
        {"200": "ok", "429": "rate_limit", "500": "server_error"}[status]: n
        for (path, status), n in counts.items()
        if path == CHAT
    }
    assert summary == server_side


def test_summary_counts_equal_what_the_server_saw(flaky_server: DemoServer) -> None:
    """Verify that run_traffic's counts by outcome equal the requests the server answered."""
    lines: list[str] = []
    summary = run_traffic(
        TrafficOptions(
            base_url=flaky_server.base_url,
            duration_s=2,
            rate=40,
            seed=5,
            progress_every_s=0.5,
            models=("gpt-4o-mini", "gpt-4o"),
        ),
        report=lines.append,
    )
    assert 40 <= summary.sent <= 80
    assert summary.sent == sum(summary.calls.values())
    assert_matches_server(dict(summary.by_outcome()), flaky_server.counts())
    assert {"rate_limit", "server_error", "ok"} <= set(summary.by_outcome())
    assert {model for model, _ in summary.calls} == {"gpt-4o-mini", "gpt-4o"}
    assert sum(summary.input_tokens.values()) > 0
    assert sum(summary.output_tokens.values()) > 0
    assert not summary.interrupted
    assert summary.duration_s < 2 + 2 + 1
    assert any("sent" in line and "errors" in line for line in lines)


def test_stop_event_ends_the_run_early(flaky_server: DemoServer) -> None:
    """Verify that setting the stop event ends a long run promptly, marked interrupted."""
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    summary = run_traffic(
        TrafficOptions(base_url=flaky_server.base_url, duration_s=60, rate=20), stop=stop
    )
    timer.join()
    assert summary.interrupted
    assert summary.duration_s < 10
    assert_matches_server(dict(summary.by_outcome()), flaky_server.counts())


def test_traffic_survives_an_unreachable_collector(
    flaky_server: DemoServer, tmp_path: Path
) -> None:
    """Verify that `llmtel demo traffic` with llmtel.init and no collector still counts exactly."""
    summary_path = tmp_path / "summary.json"
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{unused_port()}",
        "OPENAI_API_KEY": "",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmtel",
            "demo",
            "traffic",
            "--base-url",
            flaky_server.base_url,
            "--duration",
            "2",
            "--rate",
            "20",
            "--seed",
            "3",
            "--summary-json",
            str(summary_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(summary_path.read_text())
    outcomes: dict[str, int] = {}
    for row in result["calls"]:
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + row["count"]
    assert result["sent"] == sum(outcomes.values()) > 0
    assert_matches_server(outcomes, flaky_server.counts())
    assert "Where to look:" in done.stdout
    assert "http://127.0.0.1:16686" in done.stdout


def test_cli_traffic_runs_its_own_server(
    no_telemetry: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that without --base-url the command serves in-process and prints a summary."""
    summary_path = tmp_path / "summary.json"
    code = main(
        [
            "demo",
            "traffic",
            "--duration",
            "1",
            "--rate",
            "10",
            "--latency-ms",
            "0:0",
            "--rate-timeout",
            "0",
            "--models",
            "gpt-4o-mini",
            "--summary-json",
            str(summary_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "in-process demo server" in out
    assert "gpt-4o-mini" in out
    assert json.loads(summary_path.read_text())["sent"] == 10


def test_provider_openai_without_key_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that --provider openai without a key exits 2 with one line, sending nothing."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["demo", "traffic", "--provider", "openai"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == demo_cli.MISSING_KEY + "\n"


def test_provider_env_variable_selects_openai(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that LLMTEL_DEMO_PROVIDER=openai has the same effect as the flag."""
    monkeypatch.setenv("LLMTEL_DEMO_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    assert main(["demo", "traffic"]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err


def test_api_key_is_never_printed(
    no_telemetry: None,
    flaky_server: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Verify that the OpenAI key appears in no output, summary or options repr."""
    secret = "sk-test-DO-NOT-PRINT-1234"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    code = main(
        [
            "demo",
            "traffic",
            "--provider",
            "openai",
            "--base-url",
            flaky_server.base_url,
            "--duration",
            "0.5",
            "--rate",
            "10",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert secret not in captured.out + captured.err
    assert secret not in repr(TrafficOptions(api_key=secret))


def test_summary_table_lists_calls_tokens_and_where_to_look() -> None:
    """Verify that the printed summary has the calls by model and outcome, tokens and URLs."""
    summary = TrafficSummary()
    summary.record("gpt-4o", "ok", 10, 20)
    summary.record("gpt-4o", "rate_limit")
    summary.record("gpt-4o-mini", "ok", 5, 7)
    text = format_summary(summary)
    assert "gpt-4o       rate_limit      1" in text
    assert "total                        3" in text
    assert "total               15          27" in text
    for url in (
        "http://127.0.0.1:3000",
        "http://127.0.0.1:9090",
        "http://127.0.0.1:16686",
        "http://127.0.0.1:9428/select/vmui",
    ):
        assert url in text


def test_summary_points_at_the_offset_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that with LLMTEL_PORT_OFFSET (make demo PORT_OFFSET=...) the summary's URLs move."""
    from llmtel.demo._summary import TrafficSummary, format_summary

    summary = TrafficSummary()
    summary.record("gpt-4o-mini", "ok", 8, 12)
    monkeypatch.setenv("LLMTEL_PORT_OFFSET", "16000")
    assert format_summary(summary).splitlines()[-4:] == [
        "  Grafana       http://127.0.0.1:19000 (when Docker runs the stack)",
        "  Prometheus    http://127.0.0.1:25090",
        "  Jaeger        http://127.0.0.1:32686",
        "  VictoriaLogs  http://127.0.0.1:25428/select/vmui",
    ]
    monkeypatch.delenv("LLMTEL_PORT_OFFSET")
    assert format_summary(summary).splitlines()[-3] == "  Prometheus    http://127.0.0.1:9090"
