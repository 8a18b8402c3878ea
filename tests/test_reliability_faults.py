"""Faults: the collector stopped, restarted or killed under load, an app exiting with the
collector unreachable, an app under gunicorn --preload, the blob store's disk full.

Durations and rates are parameters, so `make test` runs each fault briefly and
`make test-faults` runs the issue's full durations (see the Makefile):

    LLMTEL_FAULT_RATE               calls (or records) per second       default 20
    LLMTEL_FAULT_COLLECTOR_DOWN_S   collector outage under app load     default 10
    LLMTEL_FAULT_BASELINE_S         load before the outage (reference)  default 8
    LLMTEL_FAULT_BACKEND_DOWN_S     Prometheus outage (here), VictoriaLogs and Jaeger
                                    outages (test_collector_outage.py)  default 8 / 30

Every figure is printed with a `[fault]` prefix (pytest -s shows them); the README's
reliability table quotes the full-duration run.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PORT_OFFSET, poll_until
from stack import NativeStack, Ports
from test_collector_support import (
    flat_log_records,
    gauge_payload,
    log_record,
    logs_payload,
    prometheus,
    victorialogs,
    zstd_decompress,
)

from llmtel.demo.server import DemoServer

pytestmark = [pytest.mark.stack, pytest.mark.faults]

RATE = float(os.environ.get("LLMTEL_FAULT_RATE", "20"))
COLLECTOR_DOWN_S = float(os.environ.get("LLMTEL_FAULT_COLLECTOR_DOWN_S", "10"))
BASELINE_S = float(os.environ.get("LLMTEL_FAULT_BASELINE_S", "8"))
PYTHON = sys.executable


def fault(message: str) -> None:
    print(f"\n[fault] {message}", flush=True)


# -- a steady raw-OTLP sender, for exact accounting --------------------------------------


@dataclass
class Sender:
    """Sends one log record per tick; remembers which ones the collector accepted."""

    port: int
    service: str
    rate: float
    accepted: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _send(self, seq: int) -> bool:
        record = log_record({"fault.seq": seq}, body=f"record {seq}", event_name="llmtel.call")
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/logs",
            data=json.dumps(logs_payload(self.service, [record])).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _run(self) -> None:
        seq, start = 0, time.monotonic()
        while not self._stop.is_set():
            (self.accepted if self._send(seq) else self.refused).append(seq)
            seq += 1
            delay = start + seq / self.rate - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)


def stored_seqs(stack: NativeStack, service: str) -> set[int]:
    return {int(r["fault.seq"]) for r in victorialogs(stack, f'service.name:"{service}"')}


def kill_collector(stack: NativeStack, sig: signal.Signals) -> None:
    if sig == signal.SIGTERM:
        stack.stop_service("otel-collector")  # SIGTERM, and waits for the exit
        return
    pid = stack._pid("otel-collector")
    assert pid is not None
    os.kill(pid, sig)
    process = stack._processes.pop("otel-collector")  # reap it, as stop_service would
    process.wait(timeout=10)
    (stack.pids_dir / "otel-collector.pid").unlink()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_collector_restart_mid_load_loses_no_accepted_record(
    stack: NativeStack, sig: signal.Signals
) -> None:
    """Verify that every record the collector accepted arrives after it is stopped mid-load
    with VictoriaLogs down (so the records sit in its disk queue) and started again."""
    service = f"llmtel-fault-{sig.name.lower()}-{uuid.uuid4().hex[:8]}"
    sender = Sender(stack.ports.collector_otlp_http, service, RATE)
    stack.stop_service("victorialogs")
    try:
        sender.start()
        time.sleep(3)
        queued_before = len(sender.accepted)
        kill_collector(stack, sig)
        down_at = time.monotonic()
        stack.start_service("otel-collector")
        restart_s = time.monotonic() - down_at
        time.sleep(3)
    finally:
        sender.stop()
        if stack._pid("otel-collector") is None:
            stack.start_service("otel-collector")
        stack.start_service("victorialogs")
    accepted = set(sender.accepted)

    def all_accepted_arrived() -> set[int]:
        missing = accepted - stored_seqs(stack, service)
        assert not missing, f"{len(missing)} of {len(accepted)} accepted records missing"
        return missing

    poll_until(all_accepted_arrived, f"the {len(accepted)} accepted records", timeout=120)
    fault(
        f"collector {sig.name} with {queued_before} records in its disk queue: "
        f"{len(accepted)} accepted, 0 lost; {len(sender.refused)} refused while it was "
        f"down ({restart_s:.1f} s to healthy again), which a client retries"
    )


# -- Prometheus down --------------------------------------------------------------------

BACKEND_DOWN_S = float(os.environ.get("LLMTEL_FAULT_BACKEND_DOWN_S", "8"))


def test_prometheus_outage_loses_no_sample(stack: NativeStack) -> None:
    """Verify that every data point sent while Prometheus was down arrives, and that the
    collector's queue fill level shows it meanwhile."""
    service = f"llmtel-fault-prom-{uuid.uuid4().hex[:8]}"
    port = stack.ports.collector_otlp_http
    sent = 0

    def send_point() -> None:
        nonlocal sent
        payload = gauge_payload(service, "llmtel.fault.seq", [({}, float(sent))])
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/metrics",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        sent += 1
        time.sleep(1)

    for _ in range(3):
        send_point()
    stack.stop_service("prometheus")
    down_at = time.monotonic()
    queue_peak = 0.0
    try:
        while time.monotonic() - down_at < BACKEND_DOWN_S:
            send_point()
            url = f"http://127.0.0.1:{stack.ports.collector_telemetry}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("otelcol_exporter_queue_size") and (
                        'exporter="otlp_http/prometheus"' in line
                    ):
                        queue_peak = max(queue_peak, float(line.split()[-1]))
    finally:
        stack.start_service("prometheus")
    down_s = time.monotonic() - down_at
    for _ in range(3):
        send_point()

    def all_arrived() -> float:
        query = f'count_over_time(llmtel_fault_seq{{job="{service}"}}[1h])'
        result = prometheus(stack, query)
        count = float(result[0]["value"][1]) if result else 0.0
        assert count == sent, f"{count:.0f} of {sent} samples"
        return count

    poll_until(all_arrived, f"all {sent} samples in Prometheus", timeout=120)
    assert queue_peak > 0
    fault(
        f"Prometheus down {down_s:.0f} s: {sent} samples sent, 0 missing; the collector's "
        f"otelcol_exporter_queue_size for it peaked at {queue_peak:.0f} batches"
    )


# -- an app under load, in its own process --------------------------------------------

APP = textwrap.dedent(
    """
    import json, os, resource, sys, threading, time
    import openai, llmtel

    rate, duration = float(sys.argv[1]), float(sys.argv[2])
    llmtel.init(os.environ["APP_SERVICE"], endpoint=os.environ["APP_ENDPOINT"])
    out = sys.stdout

    def rss_kb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def sample():
        while True:
            out.write(json.dumps({"t": time.time(), "rss_kb": rss_kb()}) + "\\n")
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    client = openai.OpenAI(base_url=os.environ["APP_BASE_URL"], api_key="k", max_retries=0)
    start, n = time.monotonic(), 0
    out.write(json.dumps({"ready": time.time()}) + "\\n")
    out.flush()
    while time.monotonic() - start < duration:
        t0 = time.perf_counter()
        error = None
        try:
            with llmtel.context(conversation_id=f"call-{n}"):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"call {n}"}]
                )
        except Exception as exc:
            error = type(exc).__name__
        lat = time.perf_counter() - t0
        out.write(json.dumps({"t": time.time(), "lat": lat, "exc": error}) + "\\n")
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    out.write(json.dumps({"done": time.time(), "calls": n}) + "\\n")
    out.flush()
    """
)


def app_env(service: str, endpoint: str, base_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "APP_SERVICE": service,
        "APP_ENDPOINT": endpoint,
        "APP_BASE_URL": base_url,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def test_collector_down_under_app_load(stack: NativeStack, tmp_path: Path) -> None:
    """Verify that with the collector down under load the app sees no exception, its p99
    latency and memory stay within stated bounds, and the lost telemetry is counted."""
    service = f"llmtel-fault-outage-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "app.py"
    script.write_text(APP)
    duration = BASELINE_S + COLLECTOR_DOWN_S + 10
    with DemoServer() as server:
        env = app_env(
            service,
            f"http://127.0.0.1:{stack.ports.collector_otlp_http}",
            server.base_url,
            # Small in-app queues, so that even a short outage overflows them. llmtel
            # counts what they drop by default (otel_sdk_* in Prometheus).
            OTEL_BSP_MAX_QUEUE_SIZE="128",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="64",
            OTEL_BLRP_MAX_QUEUE_SIZE="128",
            OTEL_BLRP_MAX_EXPORT_BATCH_SIZE="64",
            OTEL_METRIC_EXPORT_INTERVAL="2000",
        )
        # Both streams are drained as they come: the app writes a line per call and the
        # SDK a warning per failed export, and a full pipe would stall the app itself.
        stderr_path = tmp_path / "app.stderr"
        with stderr_path.open("w") as stderr:
            app = subprocess.Popen(
                [PYTHON, str(script), str(RATE), str(duration)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        assert app.stdout is not None
        lines: list[dict[str, Any]] = []
        reader = threading.Thread(
            target=lambda: lines.extend(json.loads(line) for line in app.stdout or [] if line),
            daemon=True,
        )
        reader.start()

        def started() -> float:
            marks = [x["ready"] for x in list(lines) if "ready" in x]
            assert marks, "no ready line yet"
            return float(marks[0])

        ready = poll_until(started, "the app's ready line", timeout=60, interval=0.1)
        time.sleep(BASELINE_S)
        stack.stop_service("otel-collector")
        down = (time.time(), 0.0)
        try:
            time.sleep(COLLECTOR_DOWN_S)
        finally:
            stack.start_service("otel-collector")
        down = (down[0], time.time())
        app.wait(timeout=duration + 60)
        reader.join(timeout=30)
        app.stdout.close()
    assert app.returncode == 0, stderr_path.read_text()[-3000:]
    calls = [x for x in lines if "lat" in x]
    baseline = [x["lat"] for x in calls if ready + 2 <= x["t"] < down[0]]
    outage = [x["lat"] for x in calls if down[0] <= x["t"] < down[1]]
    rss = [(x["t"], x["rss_kb"]) for x in lines if "rss_kb" in x]
    rss_at_down = max(kb for t, kb in rss if t < down[0])
    rss_peak = max(kb for t, kb in rss if down[0] <= t < down[1] + 5)
    p99_base, p99_out = p99(baseline) * 1000, p99(outage) * 1000

    assert [x for x in calls if x["exc"]] == []
    # Bounds (documented in the README): the app's p99 moves by at most 50 ms or 2x,
    # whichever is larger; its memory grows by at most 40 MiB while the collector is away.
    assert p99_out <= max(2 * p99_base, p99_base + 50), (p99_base, p99_out)
    assert rss_peak - rss_at_down <= 40 * 1024, (rss_at_down, rss_peak)

    def dropped() -> dict[str, float]:
        query = f'sum by (__name__, error_type) ({{job="{service}", __name__=~"otel_sdk_.*"}})'
        counts = {
            f"{s['metric']['__name__']}{{error_type={s['metric'].get('error_type', '')}}}": float(
                s["value"][1]
            )
            for s in prometheus(stack, query)
        }
        lost = {
            k: v
            for k, v in counts.items()
            if k.endswith(("queue_full}", "ConnectionError}")) and "_total{" in k and v > 0
        }
        assert any("log_processed" in k for k in lost), f"no queue_full count yet: {counts}"
        return lost

    lost = poll_until(dropped, "the app's counts of dropped telemetry in Prometheus", timeout=60)
    fault(
        f"collector down {down[1] - down[0]:.0f} s under {RATE:g} calls/s: "
        f"{len(calls)} calls, 0 exceptions; p99 {p99_base:.1f} ms before, {p99_out:.1f} ms "
        f"during; RSS {rss_at_down / 1024:.1f} MiB at the outage, peak "
        f"{rss_peak / 1024:.1f} MiB; dropped, counted in Prometheus: {lost}"
    )


# -- app exit with the collector unreachable ----------------------------------------------

EXIT_APP = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import openai, llmtel

    if sys.argv[1] == "sigterm-handler":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    llmtel.init(os.environ["APP_SERVICE"], endpoint=os.environ["APP_ENDPOINT"])
    client = openai.OpenAI(base_url=os.environ["APP_BASE_URL"], api_key="k", max_retries=0)
    for n in range(20):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"exit {n}"}]
        )
    print("ready", flush=True)
    if sys.argv[1] != "normal":
        time.sleep(60)
    """
)


@pytest.mark.parametrize("how", ["normal", "sigterm-handler", "sigterm-default"])
def test_app_exits_within_5_s_with_the_collector_unreachable(
    stack: NativeStack, tmp_path: Path, how: str
) -> None:
    """Verify that an app exits within 5 s of its end (or of SIGTERM) with the collector
    unreachable, and that with the collector reachable the same exit delivers its calls."""
    script = tmp_path / "exit_app.py"
    script.write_text(EXIT_APP)
    with DemoServer() as server:
        for reachable in (False, True):
            service = f"llmtel-fault-exit-{uuid.uuid4().hex[:8]}"
            port = stack.ports.collector_otlp_http if reachable else 1  # nothing on port 1
            env = app_env(service, f"http://127.0.0.1:{port}", server.base_url)
            app = subprocess.Popen(
                [PYTHON, str(script), how],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert app.stdout is not None
            assert app.stdout.readline().strip() == "ready"
            t0 = time.monotonic()
            if how != "normal":
                app.send_signal(signal.SIGTERM)
            _, err = app.communicate(timeout=30)
            exit_s = time.monotonic() - t0
            code = app.returncode
            assert code == (-signal.SIGTERM if how == "sigterm-default" else 0), err[-2000:]
            assert exit_s < 5.0, exit_s
            fault(
                f"app exit ({how}), collector {'up' if reachable else 'unreachable'}: "
                f"{exit_s:.2f} s"
            )
            if reachable and how != "sigterm-default":

                def delivered(service: str = service) -> None:
                    records = victorialogs(stack, f'service.name:"{service}"')
                    assert len(records) == 20, len(records)

                poll_until(delivered, "the 20 calls flushed at exit", timeout=30)


# -- gunicorn --preload -----------------------------------------------------------------

WSGI_APP = textwrap.dedent(
    """
    import json, os
    import openai, llmtel

    # Runs once, in the gunicorn master, before the workers fork (--preload).
    llmtel.init(os.environ["APP_SERVICE"], endpoint=os.environ["APP_ENDPOINT"])
    CLIENT = openai.OpenAI(base_url=os.environ["APP_BASE_URL"], api_key="k", max_retries=0)

    def app(environ, start_response):
        request_id = environ["PATH_INFO"].strip("/")
        with llmtel.context(conversation_id=request_id, user_id=f"pid-{os.getpid()}"):
            CLIENT.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": request_id}],
                extra_headers={"x-llmtel-demo-latency-ms": "100"},
            )
        body = json.dumps({"pid": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    """
)
WORKERS = 3


def test_gunicorn_preload_every_worker_delivers(stack: NativeStack, tmp_path: Path) -> None:
    """Verify that under gunicorn --preload every worker's calls reach VictoriaLogs."""
    (tmp_path / "wsgi_app.py").write_text(WSGI_APP)
    service = f"llmtel-fault-gunicorn-{uuid.uuid4().hex[:8]}"
    port = Ports().shifted(TEST_PORT_OFFSET + 800).collector_otlp_http
    with DemoServer() as server:
        env = app_env(
            service,
            f"http://127.0.0.1:{stack.ports.collector_otlp_http}",
            server.base_url,
            OTEL_BLRP_SCHEDULE_DELAY="500",
            OTEL_BSP_SCHEDULE_DELAY="500",
        )
        gunicorn = subprocess.Popen(
            [
                str(Path(PYTHON).parent / "gunicorn"),
                "--preload",
                f"--workers={WORKERS}",
                f"--bind=127.0.0.1:{port}",
                f"--chdir={tmp_path}",
                "wsgi_app:app",
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def get(request_id: str) -> int:
                url = f"http://127.0.0.1:{port}/{request_id}"
                with urllib.request.urlopen(url, timeout=30) as response:
                    return int(json.loads(response.read())["pid"])

            def up() -> None:
                try:
                    get("warm-up")
                except OSError as error:
                    raise AssertionError(str(error)) from error

            poll_until(up, "gunicorn to answer", timeout=30, interval=0.3)
            ids = [f"req-{n}" for n in range(60)]
            with ThreadPoolExecutor(max_workers=12) as pool:
                pids = dict(zip(ids, pool.map(get, ids), strict=True))
        finally:
            gunicorn.send_signal(signal.SIGTERM)  # graceful: workers exit, llmtel flushes
            _, err = gunicorn.communicate(timeout=30)
    assert len(set(pids.values())) == WORKERS, err[-2000:]

    def all_arrived() -> dict[str, str]:
        records = victorialogs(stack, f'service.name:"{service}" AND event_name:"llmtel.call"')
        found = {
            r["gen_ai.conversation.id"]: r["user.id"]
            for r in records
            if r["gen_ai.conversation.id"] in pids
        }
        assert len(found) == len(ids), f"{len(found)} of {len(ids)}"
        return found

    found = poll_until(all_arrived, "every request's call record", timeout=60)
    assert found == {request_id: f"pid-{pid}" for request_id, pid in pids.items()}
    fault(
        f"gunicorn --preload, {WORKERS} workers: {len(ids)} calls, "
        f"{len(found)} records, per worker {sorted(Counter(pids.values()).values())}"
    )


# -- the blob store's disk full -----------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root can mount one here); skipped, with the error, where not."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_blob_disk_full_other_routes_flow_and_it_recovers(
    stack: NativeStack, bins: dict[str, Path], tiny_disk: Path, tmp_path: Path
) -> None:
    """Verify that with the blob store's disk full, call records still reach VictoriaLogs,
    the failure shows in the collector's log and metrics, and writing resumes with space."""
    blob_dir = tiny_disk / "blob"
    collector = NativeStack(Ports().shifted(TEST_PORT_OFFSET + 900), tmp_path / "full")
    (service_def,) = [s for s in collector.services(bins) if s.name == "otel-collector"]
    backends = {
        key: value
        for key, value in stack.collector_env().items()
        if key.startswith(("JAEGER_", "VICTORIALOGS_", "PROMETHEUS_"))
    }
    env = {**os.environ, **service_def.env, **backends, "LLMTEL_BLOB_DIR": str(blob_dir)}
    log = tmp_path / "otelcol.log"
    service = f"llmtel-fault-diskfull-{uuid.uuid4().hex[:8]}"
    port = collector.ports.collector_otlp_http

    def record(kind: str, n: int) -> dict[str, Any]:
        event = "llmtel.content" if kind == "content" else "llmtel.call"
        attributes: dict[str, Any] = {"fault.kind": kind, "fault.n": n}
        if kind == "content":
            attributes["llmtel.content.input"] = os.urandom(10000).hex()  # incompressible
        return log_record(attributes, body=f"{kind} {n}", event_name=event)

    def send(kind: str, n: int) -> int:
        kinds = ["call", "content"] if kind == "mixed" else [kind]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/logs",
            data=json.dumps(logs_payload(service, [record(k, n) for k in kinds])).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    with log.open("wb") as out:
        process = subprocess.Popen(
            [service_def.binary, *service_def.args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def healthy() -> None:
            assert process.poll() is None, log.read_text()
            try:
                urllib.request.urlopen(service_def.health_url, timeout=2).close()
            except OSError as error:
                raise AssertionError(str(error)) from error

        poll_until(healthy, "the disk-full collector to be healthy", timeout=60, interval=0.3)
        send("content", 0)
        poll_until(
            lambda: _assert_true((blob_dir / "content.otlp").exists()), "the blob file", timeout=20
        )
        size_at_fill = (blob_dir / "content.otlp").stat().st_size
        filler = tiny_disk / "filler"
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False
        )
        answers = Counter()
        for n in range(1, 11):
            answers["content", send("content", n)] += 1
            answers["call", send("call", n)] += 1
        # One request holding a call record and a content record, as an app's batch does.
        answers["mixed", send("mixed", 50)] += 1
        assert answers == {("content", 503): 10, ("call", 200): 10, ("mixed", 503): 1}

        def calls_arrived() -> None:
            records = victorialogs(stack, f'service.name:"{service}"')
            # The mixed request was refused, yet its call record went on to VictoriaLogs:
            # a client's retry of that request stores the call record again.
            expected = [*range(1, 11), 50]
            assert sorted(int(r["fault.n"]) for r in records) == expected, records

        poll_until(calls_arrived, "the 10 call records in VictoriaLogs", timeout=60)

        def logged() -> str:
            text = log.read_text(errors="replace")
            assert "no space left on device" in text, "not yet"
            return text

        poll_until(logged, "the collector to log the full disk", timeout=30)
        metrics_url = f"http://127.0.0.1:{collector.ports.collector_telemetry}/metrics"
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            metrics = response.read().decode()
        failed = [
            line
            for line in metrics.splitlines()
            if line.startswith("otelcol_exporter_send_failed_log_records")
            and 'exporter="file/blob"' in line
        ]
        assert len(failed) == 1, failed
        assert float(failed[0].split()[-1]) == 11  # 10 content records, 1 mixed request

        filler.unlink()
        send("content", 99)

        def recovered() -> tuple[list[Any], int]:
            requests, torn = read_blob_frames(blob_dir / "content.otlp")
            found = {r["attributes"].get("fault.n") for q in requests for r in flat_log_records(q)}
            assert found == {0, 99}, found
            return requests, torn

        _, torn = poll_until(recovered, "a content record written after space returned", 30)
        # A failed write leaves a torn frame only where the file's last page had room
        # for part of it (tmpfs pages are 4 KiB); the reader above skips it.
        assert torn == (1 if size_at_fill % 4096 else 0)
        fault(
            f"blob disk full: the content writes answered 503 (retryable), 10/10 call records "
            f"reached VictoriaLogs (and a refused mixed request's call record too); failures "
            f"counted ({failed[0].split()[-1]} log records in "
            f"otelcol_exporter_send_failed_log_records), 'no space left on device' logged; "
            f"writes resumed once space returned; {torn} torn frame left in the blob file"
        )
    finally:
        process.terminate()
        process.wait(timeout=20)


def _assert_true(value: bool) -> None:
    assert value


ZSTD_MAGIC = bytes.fromhex("28b52ffd")


def read_blob_frames(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The blob file's OTLP/JSON requests, resyncing past torn frames (a length prefix whose
    frame was cut short by a failed write): returns (requests, torn frames skipped)."""
    data, offset, requests, torn = path.read_bytes(), 0, [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        end = offset + 4 + size
        whole = data[offset + 4 : offset + 8] == ZSTD_MAGIC and end <= len(data)
        if whole and (end == len(data) or data[end + 4 : end + 8] == ZSTD_MAGIC):
            text = zstd_decompress(data[offset + 4 : end])
            requests.append(json.loads(text))
            offset = end
            continue
        torn += 1
        offset = data.find(ZSTD_MAGIC, offset + 8) - 4
        if offset < 0:
            break
    return requests, torn
