"""``llmtel demo serve`` and ``llmtel demo traffic``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeAlias

from ._config import DemoConfig, parse_range
from ._summary import format_summary
from ._telemetry import start_telemetry
from .server import DemoServer
from .traffic import TrafficOptions, run_traffic

SERVE_DEFAULTS = DemoConfig(
    rate_429=0.02,
    rate_500=0.03,
    rate_timeout=0.01,
    latency_ms_min=200,
    latency_ms_max=1500,
    vary=True,
    chunk_delay_ms=20,
)
"""The lively defaults of the CLI's server: a few failures, realistic latency."""

DEFAULT_PORT = 8400
PROVIDERS = ("demo", "openai")
MISSING_KEY = (
    "llmtel demo traffic: --provider openai needs OPENAI_API_KEY in the environment; "
    "nothing was sent."
)

if TYPE_CHECKING:  # not subscriptable at run time
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: Subparsers) -> None:
    """Add the ``demo`` command group (``serve``, ``traffic``) to the ``llmtel`` parser."""
    demo = subparsers.add_parser(
        "demo",
        help="a demo OpenAI-compatible server and a traffic generator",
        description="A demo LLM provider and a traffic generator that lights the dashboards.",
    )
    commands = demo.add_subparsers(dest="demo_command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the demo server in the foreground",
        description="Run an OpenAI-compatible demo server until Ctrl+C or SIGTERM.",
    )
    serve.add_argument("--host", help="address to bind (env LLMTEL_DEMO_HOST; 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help=f"port (env LLMTEL_DEMO_PORT; {DEFAULT_PORT}; 0 picks one)"
    )
    serve.add_argument("-q", "--quiet", action="store_true", help="no per-request log lines")
    _add_server_flags(serve)
    serve.set_defaults(handler=_serve)

    traffic = commands.add_parser(
        "traffic",
        help="send simulated chat traffic through the openai SDK",
        description=(
            "Send chat completions through the openai SDK with llmtel.init() active, then "
            "print what was sent. Without --base-url, a demo server runs in-process with "
            "the server flags below."
        ),
    )
    traffic.add_argument("--duration", type=_positive, default=60.0, help="seconds (60)")
    traffic.add_argument("--rate", type=_positive, default=2.0, help="calls per second (2)")
    traffic.add_argument(
        "--models", default="gpt-4o-mini,gpt-4o", help="comma-separated (gpt-4o-mini,gpt-4o)"
    )
    traffic.add_argument("--base-url", help="an OpenAI-compatible endpoint to send to")
    traffic.add_argument(
        "--provider",
        choices=PROVIDERS,
        help="demo, or openai: the real API with OPENAI_API_KEY (env LLMTEL_DEMO_PROVIDER)",
    )
    traffic.add_argument(
        "--service-name", default="llmtel-demo", help="service.name of the telemetry"
    )
    traffic.add_argument(
        "--client-timeout", type=_positive, default=10.0, help="SDK timeout per call, s (10)"
    )
    traffic.add_argument(
        "--stream-share", type=_share, default=0.25, help="share of streamed calls (0.25)"
    )
    traffic.add_argument("--users", type=int, default=8, help="simulated users (8)")
    traffic.add_argument(
        "--progress-every", type=_positive, default=10.0, help="seconds between progress lines"
    )
    traffic.add_argument("--summary-json", type=Path, help="also write the summary as JSON here")
    _add_server_flags(traffic)
    traffic.set_defaults(handler=_traffic)


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "demo server behaviour (flags override LLMTEL_DEMO_* variables)"
    )
    d = SERVE_DEFAULTS
    group.add_argument("--rate-429", type=_share, help=f"share answered 429 ({d.rate_429})")
    group.add_argument("--rate-500", type=_share, help=f"share answered 500 ({d.rate_500})")
    group.add_argument(
        "--rate-timeout", type=_share, help=f"share that hang --timeout-s ({d.rate_timeout})"
    )
    group.add_argument(
        "--latency-ms",
        type=_range,
        metavar="MIN:MAX",
        help=f"latency range ({d.latency_ms_min}:{d.latency_ms_max})",
    )
    group.add_argument(
        "--output-tokens",
        type=_range,
        metavar="MIN:MAX",
        help=f"output size range ({d.output_tokens_min}:{d.output_tokens_max})",
    )
    group.add_argument(
        "--vary",
        action=argparse.BooleanOptionalAction,
        help="draw output sizes at random instead of from the prompt (on)",
    )
    group.add_argument("--seed", type=int, help="seed: the same seed, the same decisions")
    group.add_argument(
        "--timeout-s", type=float, help=f"how long a timeout hangs, s ({d.timeout_s:g})"
    )
    group.add_argument(
        "--chunk-delay-ms", type=int, help=f"pause between streamed chunks ({d.chunk_delay_ms})"
    )


def _server_config(args: argparse.Namespace) -> DemoConfig:
    config = DemoConfig.from_env(base=SERVE_DEFAULTS)
    changes: dict[str, Any] = {}
    for name in ("rate_429", "rate_500", "rate_timeout", "vary", "seed", "timeout_s"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.chunk_delay_ms is not None:
        changes["chunk_delay_ms"] = args.chunk_delay_ms
    for prefix in ("latency_ms", "output_tokens"):
        pair = getattr(args, prefix)
        if pair is not None:
            changes[f"{prefix}_min"], changes[f"{prefix}_max"] = pair
    return dataclasses.replace(config, **changes)


def _describe(config: DemoConfig) -> str:
    return (
        f"failures 429 {config.rate_429:.0%}, 500 {config.rate_500:.0%}, "
        f"timeout {config.rate_timeout:.0%} ({config.timeout_s:g} s); "
        f"latency {config.latency_ms_min}-{config.latency_ms_max} ms; "
        f"output {config.output_tokens_min}-{config.output_tokens_max} tokens"
        + (" (random)" if config.vary else " (from the prompt)")
        + ("" if config.seed is None else f"; seed {config.seed}")
    )


def _say(line: str) -> None:
    print(line, flush=True)


def _fail(message: str, code: int = 2) -> int:
    print(message, file=sys.stderr, flush=True)
    return code


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop``; a second Ctrl+C interrupts for real."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(args: argparse.Namespace) -> int:
    try:
        config = _server_config(args)
        host = args.host or os.environ.get("LLMTEL_DEMO_HOST") or "127.0.0.1"
        port = (
            args.port
            if args.port is not None
            else int(os.environ.get("LLMTEL_DEMO_PORT") or DEFAULT_PORT)
        )
    except ValueError as exc:
        return _fail(f"llmtel demo serve: {exc}")
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = DemoServer(host, port, config)
    try:
        server.start()
    except OSError as exc:
        return _fail(f"llmtel demo serve: cannot listen on {host}:{port}: {exc.strerror}", 1)
    stop = threading.Event()
    try:
        with _stop_on_signals(stop):
            _say(f"llmtel demo server on {server.base_url}")
            _say(f"  {_describe(config)}")
            _say(f"  try: OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY=demo your-app")
            _say("  Ctrl+C to stop")
            while not stop.wait(0.5):
                pass
    finally:
        server.stop()
    _say("stopped")
    return 0


def _traffic(args: argparse.Namespace) -> int:
    provider = args.provider or os.environ.get("LLMTEL_DEMO_PROVIDER") or "demo"
    if provider not in PROVIDERS:
        return _fail(f"llmtel demo traffic: unknown provider {provider!r} (demo or openai)")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if not models:
        return _fail("llmtel demo traffic: --models names no model")
    server: DemoServer | None = None
    if provider == "openai":
        api_key = os.environ.get("OPENAI_API_KEY", "").strip()
        if not api_key:
            return _fail(MISSING_KEY)
        base_url, where = args.base_url, args.base_url or "the OpenAI API (this costs money)"
    else:
        api_key = "demo"
        base_url = where = args.base_url
        if base_url is None:
            try:
                server = DemoServer(config=_server_config(args)).start()
            except ValueError as exc:
                return _fail(f"llmtel demo traffic: {exc}")
            base_url = server.base_url
            where = f"an in-process demo server at {base_url}; {_describe(server.config)}"
    try:
        options = TrafficOptions(
            base_url=base_url,
            api_key=api_key,
            duration_s=args.duration,
            rate=args.rate,
            models=models,
            timeout_s=args.client_timeout,
            stream_share=args.stream_share,
            users=args.users,
            seed=args.seed,
            progress_every_s=args.progress_every,
        )
        _say(f"llmtel demo traffic: {args.rate:g} calls/s for {args.duration:g} s to {where}")
        _say(f"  models {', '.join(models)}; service.name {args.service_name}")
        stop_telemetry = start_telemetry(args.service_name, _say)
        stop = threading.Event()
        try:
            with _stop_on_signals(stop):
                summary = run_traffic(options, report=_say, stop=stop)
        except KeyboardInterrupt:
            _say("interrupted")
            return 130
        finally:
            stop_telemetry()
    except ValueError as exc:
        return _fail(f"llmtel demo traffic: {exc}")
    finally:
        if server is not None:
            server.stop()
    _say("")
    _say(format_summary(summary))
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return 0


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def _range(text: str) -> tuple[int, int]:
    try:
        return parse_range(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN:MAX") from None
