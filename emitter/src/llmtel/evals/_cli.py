"""``llmtel evals``: run the eval worker, and calibrate its judge against people."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeAlias

import openai
from opentelemetry import _logs, metrics

import llmtel

from ._calibration import agreement, export_sample, format_agreement, read_rows, write_rows
from ._config import ConfigError, EvalConfig, default_config_text, load_config
from ._judge import Judge, JudgeFatal, JudgeUnavailable
from ._store import StateLocked, Store, worker_lock
from ._telemetry import EvalTelemetry
from ._worker import Summary, Worker

if TYPE_CHECKING:  # not subscriptable at run time
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

SERVICE_NAME = "llmtel-evals"
DEFAULT_QUEUE_DIR = Path("var/native/data/otelcol/eval-queue")
DEFAULT_STATE_DIR = Path("var/evals")
DEMO_FAIL_SHARE = 0.2
DEMO_JUDGE_HEADER = "x-llmtel-demo-judge"
DASHBOARD_PROMQL = (
    "sum by (gen_ai_evaluation_name) "
    '(increase(llmtel_eval_results_total{gen_ai_evaluation_score_label="pass"}[1h]))\n'
    "  / sum by (gen_ai_evaluation_name) "
    '(increase(llmtel_eval_results_total{gen_ai_evaluation_score_label=~"pass|fail"}[1h]))'
)


def register(subparsers: Subparsers) -> None:
    """Add the ``evals`` command group to the ``llmtel`` parser."""
    evals = subparsers.add_parser(
        "evals",
        help="judge sampled production calls with an LLM; calibrate the judge",
        description=(
            "Judge the calls the collector samples into its eval queue, send the verdicts "
            "back over OTLP, and measure how far the judge agrees with people."
        ),
    )
    commands = evals.add_subparsers(dest="evals_command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="follow the eval queue and judge calls until stopped (resumable)",
        description="Follow the eval queue (and its rotations) until Ctrl+C or SIGTERM.",
    )
    _worker_flags(run)
    run.add_argument(
        "--poll-interval", type=_positive, default=1.0, help="seconds between queue scans (1)"
    )
    run.set_defaults(handler=_run, once=False)

    once = commands.add_parser(
        "once",
        help="judge everything in the eval queue, then exit",
        description=(
            "Judge every call in the eval queue, then exit: 0 when done, 1 when the judge "
            "kept failing (the rest waits for the next run), 2 on a configuration error."
        ),
    )
    _worker_flags(once)
    once.set_defaults(handler=_run, once=True)

    export = commands.add_parser(
        "export",
        help="write a random sample of verdicts for people to label",
        description=(
            "Write up to --per-rubric verdicts of each rubric, with the judged conversation "
            "and answer, and empty human_label / human_score columns to fill in."
        ),
    )
    _state_flags(export)
    export.add_argument(
        "--out", type=Path, help="file to write (.csv or .jsonl); - or none: stdout"
    )
    export.add_argument("--per-rubric", type=int, default=50, help="rows per rubric (50)")
    export.add_argument("--seed", type=int, help="seed of the random sample")
    export.add_argument("--rubric", action="append", default=[], help="only this rubric")
    export.add_argument("--format", choices=("csv", "jsonl"), help="default: from --out, else csv")
    export.set_defaults(handler=_export)

    agree = commands.add_parser(
        "agreement",
        help="judge-human agreement per rubric (Cohen's kappa) from a labelled export",
        description="Read a labelled export file and report Cohen's kappa per rubric.",
    )
    agree.add_argument("file", type=Path, help="the export file, with human labels filled in")
    agree.add_argument(
        "--min-kappa",
        type=float,
        help="exit 1 if a rubric's kappa is below this (e.g. 0.6 in CI)",
    )
    agree.add_argument("--json", action="store_true", help="print JSON instead of a table")
    agree.set_defaults(handler=_agreement)

    rubrics = commands.add_parser(
        "rubrics",
        help="print the default rubrics file, to copy and edit",
        description="Print the default evals YAML: llmtel evals rubrics > my-rubrics.yaml",
    )
    rubrics.set_defaults(handler=_rubrics)

    status = commands.add_parser(
        "status", help="what the worker has judged so far, and pass rates by rubric"
    )
    _state_flags(status)
    status.set_defaults(handler=_status)


def _state_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"the worker's state (env LLMTEL_EVALS_STATE_DIR; {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--config", help="evals YAML (env LLMTEL_EVALS_CONFIG; default: the shipped one)"
    )


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    _state_flags(parser)
    parser.add_argument(
        "--queue-dir",
        type=Path,
        help=f"the collector's eval queue (env LLMTEL_EVAL_QUEUE_DIR; {DEFAULT_QUEUE_DIR})",
    )
    parser.add_argument(
        "--endpoint",
        help="collector OTLP/HTTP endpoint for verdicts (env OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    parser.add_argument(
        "--service-name", default=SERVICE_NAME, help=f"service.name ({SERVICE_NAME})"
    )
    parser.add_argument("--judge-model", help="override judge.model")
    parser.add_argument("--judge-base-url", help="override judge.base_url")
    parser.add_argument(
        "--demo-judge",
        action="store_true",
        help="judge with an in-process demo server (no API key; verdicts from markers)",
    )
    parser.add_argument(
        "--demo-fail-share",
        type=_share,
        default=DEMO_FAIL_SHARE,
        help=f"share of unmarked verdicts the demo judge fails ({DEMO_FAIL_SHARE})",
    )
    parser.add_argument(
        "--keep-days", type=_positive, default=30.0, help="days to keep judged text (30)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only the final summary")


def _state_dir(args: argparse.Namespace) -> Path:
    chosen = args.state_dir or os.environ.get("LLMTEL_EVALS_STATE_DIR") or DEFAULT_STATE_DIR
    return Path(chosen)


def _say(line: str) -> None:
    print(line, flush=True)


def _fail(message: str, code: int = 2) -> int:
    print(f"llmtel evals: {message}", file=sys.stderr, flush=True)
    return code


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop``: the current verdict finishes, then the worker ends."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _config(args: argparse.Namespace) -> EvalConfig:
    config = load_config(args.config)
    judge = config.judge
    if args.judge_model:
        judge = dataclasses.replace(judge, model=args.judge_model)
    if args.judge_base_url:
        judge = dataclasses.replace(judge, base_url=args.judge_base_url)
    return dataclasses.replace(config, judge=judge)


def _run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ConfigError as exc:
        return _fail(str(exc))
    queue_dir = Path(args.queue_dir or os.environ.get("LLMTEL_EVAL_QUEUE_DIR") or DEFAULT_QUEUE_DIR)
    state_dir = _state_dir(args)
    stop = threading.Event()
    with ExitStack() as stack:
        headers = dict(config.judge.headers)
        base_url = config.judge.base_url
        if args.demo_judge:
            from llmtel.demo import DemoServer

            server = stack.enter_context(DemoServer())
            base_url = server.base_url
            headers[DEMO_JUDGE_HEADER] = str(args.demo_fail_share)
        api_key = os.environ.get(config.judge.api_key_env, "").strip()
        if not api_key:
            if base_url is None and not os.environ.get("OPENAI_BASE_URL"):
                return _fail(
                    f"the judge needs an API key in {config.judge.api_key_env} "
                    "(or --demo-judge to try it without one)"
                )
            api_key = "none"  # a local OpenAI-compatible server
        try:
            stack.enter_context(worker_lock(state_dir))
        except StateLocked as exc:
            return _fail(str(exc))
        store = Store(state_dir)
        stack.callback(store.close)
        llmtel.init(
            service_name=args.service_name,
            endpoint=args.endpoint,
            resource_attributes={"service.instance.id": str(uuid.uuid4())},
            capture_content=None if os.environ.get("LLMTEL_CAPTURE_CONTENT") else "none",
        )
        stack.callback(llmtel.shutdown)
        telemetry = EvalTelemetry(
            _logs.get_logger_provider(),
            metrics.get_meter_provider(),
            lambda timeout_s: llmtel.force_flush(timeout_s=timeout_s),
        )
        client = openai.OpenAI(
            base_url=base_url, api_key=api_key, max_retries=0, default_headers=headers
        )
        stack.callback(client.close)
        judge = Judge(config.judge, client, on_error=telemetry.judge_error, stop=stop)
        worker = Worker(
            config,
            store,
            judge,
            telemetry,
            queue_dir=queue_dir,
            own_service=args.service_name,
            keep_days=args.keep_days,
        )
        if not args.quiet:
            where = "the demo judge" if args.demo_judge else (base_url or "the OpenAI API")
            _say(
                f"llmtel evals {'once' if args.once else 'run'}: queue {queue_dir}, "
                f"state {state_dir}, judge {config.judge.model} at {where}, rubrics "
                + ", ".join(r.name for r in config.rubrics)
            )
        code = 0
        with _stop_on_signals(stop):
            try:
                summary = worker.once() if args.once else worker.run(stop, args.poll_interval)
            except JudgeFatal as exc:
                worker.summary.judge_errors = telemetry.judge_errors_seen
                _say(format_summary(worker.summary))
                return _fail(str(exc))
            except JudgeUnavailable as exc:
                worker.publish(force=True)
                summary = worker.summary
                summary.pending = store.pending_count()
                summary.judge_errors = telemetry.judge_errors_seen
                _fail(f"{exc}; {summary.pending} calls wait for the next run", 1)
                code = 1
        _say(format_summary(summary))
        return code
    return 0  # pragma: no cover - ExitStack does not swallow


def format_summary(summary: Summary) -> str:
    """The worker's closing lines: what it read and judged, and pass rates by rubric.

    Example:
        >>> summary = Summary(lines=4, judged=2)
        >>> summary.verdicts[("grounded", "pass")] += 2
        >>> print(format_summary(summary))  # doctest: +NORMALIZE_WHITESPACE
        llmtel evals: 4 queue lines, 2 calls judged, 0 skipped, 0 malformed,
        0 judge errors, 0 pending
          pass rate  grounded 100% (2/2)
    """
    skipped = sum(summary.skipped.values())
    detail = ", ".join(f"{reason} {n}" for reason, n in sorted(summary.skipped.items()))
    lines = [
        f"llmtel evals: {summary.lines} queue lines, {summary.judged} calls judged, "
        f"{skipped} skipped{f' ({detail})' if detail else ''}, {summary.malformed} malformed, "
        f"{summary.judge_errors} judge errors, {summary.pending} pending"
    ]
    rates = summary.pass_rates()
    if rates:
        lines.append(
            "  pass rate  "
            + "  ".join(
                f"{rubric} {passes / total:.0%} ({passes}/{total})"
                for rubric, (passes, total) in rates.items()
                if total
            )
        )
    return "\n".join(lines)


def _export(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if not (state_dir / "evals.sqlite").exists():
        return _fail(f"no eval state in {state_dir} (run `llmtel evals run` first)")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    store = Store(state_dir)
    try:
        rows = export_sample(
            store, config, per_rubric=args.per_rubric, seed=args.seed, rubrics=args.rubric
        )
    finally:
        store.close()
    out = None if args.out in (None, Path("-")) else args.out
    fmt = args.format or ("jsonl" if out is not None and out.suffix == ".jsonl" else "csv")
    text = write_rows(rows, out, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        _say(f"llmtel evals: {len(rows)} rows to label in {out}")
    return 0


def _agreement(args: argparse.Namespace) -> int:
    try:
        results = agreement(read_rows(args.file))
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        _say(json.dumps([dataclasses.asdict(r) | {"reading": r.reading} for r in results]))
    else:
        _say(format_agreement(results))
    if args.min_kappa is not None:
        low = [r.rubric for r in results if r.kappa is not None and r.kappa < args.min_kappa]
        if low:
            return _fail(f"kappa below {args.min_kappa:g}: {', '.join(low)}", 1)
    return 0


def _rubrics(args: argparse.Namespace) -> int:
    sys.stdout.write(default_config_text())
    return 0


def _status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if not (state_dir / "evals.sqlite").exists():
        return _fail(f"no eval state in {state_dir}")
    store = Store(state_dir)
    try:
        counts = store.counts()
        summary = Summary(judged=counts["done"], pending=counts["pending"])
        for result in store.results():
            summary.verdicts[(result.rubric, result.label)] += 1
    finally:
        store.close()
    _say(
        f"llmtel evals: {counts['done']} calls judged, {counts['skipped']} skipped, "
        f"{counts['pending']} pending, {counts['results']} verdicts"
    )
    for rubric, (passes, total) in summary.pass_rates().items():
        if total:
            _say(f"  {rubric:<24} pass rate {passes / total:.0%} ({passes}/{total})")
    _say(f"pass rate over time (Prometheus):\n  {DASHBOARD_PROMQL}")
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
