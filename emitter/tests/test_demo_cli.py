"""`llmtel demo serve` runs in the foreground, prints its URL and stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from llmtel.__main__ import build_parser, main


def test_serve_prints_its_url_and_stops_on_sigterm() -> None:
    """Verify that `llmtel demo serve` prints a working base URL and exits 0 on SIGTERM."""
    with subprocess.Popen(
        [sys.executable, "-m", "llmtel", "demo", "serve", "--port", "0", "--quiet", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert first.startswith("llmtel demo server on http://127.0.0.1:")
            base_url = first.split()[-1]
            assert base_url.endswith("/v1")
            health = base_url.removesuffix("/v1") + "/healthz"
            with urllib.request.urlopen(health, timeout=10) as response:
                assert json.loads(response.read()) == {"status": "ok"}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    """Verify that serve exits 1 with a one-line error when the port is taken."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "serve", "--port", str(port), "--quiet"]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_server_flags_override_env_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that CLI flags beat LLMTEL_DEMO_* variables, which beat the serve defaults."""
    from llmtel.demo._cli import _server_config

    monkeypatch.setenv("LLMTEL_DEMO_RATE_429", "0.5")
    monkeypatch.setenv("LLMTEL_DEMO_LATENCY_MS", "1:2")
    args = build_parser().parse_args(["demo", "serve", "--rate-429", "0.25", "--no-vary"])
    config = _server_config(args)
    assert config.rate_429 == 0.25
    assert (config.latency_ms_min, config.latency_ms_max) == (1, 2)
    assert config.rate_500 == 0.03
    assert config.vary is False


def test_bad_flag_value_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Verify that a malformed range flag is rejected by the parser with exit code 2."""
    with pytest.raises(SystemExit) as exited:
        main(["demo", "serve", "--latency-ms", "fast"])
    assert exited.value.code == 2
    assert "MIN:MAX" in capsys.readouterr().err
