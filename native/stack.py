"""Run llmtel's stack without Docker: the repo's own config files on real binaries.

Every server binds 127.0.0.1. Binaries come from native/build-binaries.sh (cached
outside the clone); configs are the same files docker-compose.yml mounts, with
hosts and ports taken from environment variables, and Prometheus' file rewritten
by native/render.py.

    python3 native/stack.py up        # validate configs, start, wait healthy, print URLs
    python3 native/stack.py check     # validate every config (FILE:LINE: error), start nothing
    python3 native/stack.py check --dashboards-only   # no binaries needed (Docker runtime)
    python3 native/stack.py status
    python3 native/stack.py down
    python3 native/stack.py up --port-offset 10000 --state-dir /tmp/llmtel-test
    PORT_OFFSET=16000 python3 native/stack.py up   # ports 16000 up, state in var/native-16000

Standard library only, so `make up` needs no virtualenv.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from config_errors import ConfigFile, check_dashboard, locate, provisioned_uids
from render import alertmanager_secrets, render_alertmanager_config, render_prometheus_config

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "native" / "build-binaries.sh"
# Bearer-token auth on the collector's OTLP receivers: off unless this variable is set.
OTLP_TOKEN_ENV = "LLMTEL_OTLP_TOKEN"  # noqa: S105 (a variable name, not a secret)
AUTH_OVERLAY = ROOT / "collector-config" / "auth-overlay.yaml"


@dataclass(frozen=True)
class Ports:
    """Every port the native stack listens on (all on 127.0.0.1)."""

    collector_otlp_grpc: int = 4317
    collector_otlp_http: int = 4318
    collector_health: int = 13133
    collector_telemetry: int = 8888
    prometheus: int = 9090
    alertmanager: int = 9093
    # Jaeger's own OTLP ports move: the collector owns 4317/4318 on this host.
    jaeger_otlp_grpc: int = 4417
    jaeger_otlp_http: int = 4418
    jaeger_query: int = 16686
    jaeger_query_grpc: int = 16685
    jaeger_health: int = 13134
    jaeger_telemetry: int = 8889
    victorialogs: int = 9428

    def shifted(self, offset: int) -> Ports:
        """The same layout moved by ``offset``, so a test stack can run beside a user's."""
        moved = {f.name: getattr(self, f.name) + offset for f in fields(self)}
        if not all(0 < port < 65536 for port in moved.values()):
            raise ValueError(f"port offset {offset} puts a port outside 1-65535: {moved}")
        return replace(self, **moved)


@dataclass
class Service:
    """One server process of the stack."""

    name: str
    binary: str
    args: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    check: list[str] | None = None  # a config check run before anything starts
    # The files the check reads, to point its error at FILE:LINE.
    check_files: list[ConfigFile] = field(default_factory=list)


class StackError(RuntimeError):
    """The native stack could not be built, validated or started."""


def binary_paths(build: bool = True) -> dict[str, Path]:
    """Build missing binaries (with progress on stdout) and return NAME -> path."""
    if build:
        result = subprocess.run(["bash", str(BUILD_SCRIPT)], check=False)
        if result.returncode != 0:
            raise StackError(f"building the native binaries failed (exit {result.returncode})")
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print"], check=True, capture_output=True, text=True
    ).stdout
    return {name: Path(path) for name, path in (line.split("=", 1) for line in out.splitlines())}


class NativeStack:
    """Start, check and stop the native stack.

    >>> stack = NativeStack(Ports().shifted(10000), Path("/tmp/llmtel-test"))
    >>> stack.up()  # doctest: +SKIP
    >>> stack.down()  # doctest: +SKIP
    """

    def __init__(
        self,
        ports: Ports | None = None,
        state_dir: Path | None = None,
        collector_overlays: Sequence[Path] | None = None,
        config_root: Path = ROOT,
    ) -> None:
        self.ports = ports or Ports()
        # Where the config folders are (collector-config/, prometheus/, ...): the repo,
        # or a copy a test has broken on purpose.
        self.config_root = config_root.resolve()
        # Extra collector --config files (maps merge, lists replace). By default the
        # bearer-token overlay is loaded when LLMTEL_OTLP_TOKEN is set.
        if collector_overlays is None:
            collector_overlays = [AUTH_OVERLAY] if os.environ.get(OTLP_TOKEN_ENV) else []
        self.collector_overlays = [Path(p).resolve() for p in collector_overlays]
        self.state_dir = (state_dir or ROOT / "var" / "native").resolve()
        self.logs_dir = self.state_dir / "logs"
        self.pids_dir = self.state_dir / "pids"
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- what runs -------------------------------------------------------------------
    def services(self, bins: dict[str, Path]) -> list[Service]:
        """The stack's processes in start order: backends first, the collector last."""
        p, data = self.ports, self.state_dir / "data"
        rendered_prometheus = self.state_dir / "prometheus.yaml"
        local = "127.0.0.1"
        root = self.config_root
        base_config = root / "collector-config" / "otelcol-config.yaml"
        collector_files = [base_config, *self.collector_overlays]
        collector_configs = [f"--config={path}" for path in collector_files]
        jaeger_config = str(root / "jaeger" / "jaeger-config.yaml")
        # Rendered by check(): native addresses, secret files under the state directory.
        alertmanager_config = str(self.state_dir / "alertmanager.yaml")
        rules = sorted((root / "prometheus" / "rules").glob("*.yaml"))
        return [
            Service(
                name="victorialogs",
                binary=str(bins["victorialogs"]),
                args=[
                    f"-httpListenAddr={local}:{p.victorialogs}",
                    f"-storageDataPath={data / 'victorialogs'}",
                    "-retentionPeriod=7d",
                ],
                health_url=f"http://{local}:{p.victorialogs}/health",
            ),
            Service(
                name="jaeger",
                binary=str(bins["jaeger"]),
                args=[f"--config={jaeger_config}"],
                env={
                    "JAEGER_HEALTH_ENDPOINT": f"{local}:{p.jaeger_health}",
                    "JAEGER_QUERY_HTTP_ENDPOINT": f"{local}:{p.jaeger_query}",
                    "JAEGER_QUERY_GRPC_ENDPOINT": f"{local}:{p.jaeger_query_grpc}",
                    "JAEGER_OTLP_GRPC_ENDPOINT": f"{local}:{p.jaeger_otlp_grpc}",
                    "JAEGER_OTLP_HTTP_ENDPOINT": f"{local}:{p.jaeger_otlp_http}",
                    "JAEGER_TELEMETRY_HOST": local,
                    "JAEGER_TELEMETRY_PORT": str(p.jaeger_telemetry),
                    "JAEGER_DATA_DIR": str(data / "jaeger"),
                },
                health_url=f"http://{local}:{p.jaeger_health}/status",
                check=[str(bins["jaeger"]), "validate", f"--config={jaeger_config}"],
                check_files=[self._shown(Path(jaeger_config))],
            ),
            Service(
                name="alertmanager",
                binary=str(bins["alertmanager"]),
                args=[
                    f"--config.file={alertmanager_config}",
                    f"--storage.path={data / 'alertmanager'}",
                    f"--web.listen-address={local}:{p.alertmanager}",
                    # A single instance: no gossip port open at all.
                    "--cluster.listen-address=",
                ],
                health_url=f"http://{local}:{p.alertmanager}/-/ready",
                check=[str(bins["amtool"]), "check-config", alertmanager_config],
                check_files=[
                    ConfigFile("alertmanager/alertmanager.yaml", Path(alertmanager_config))
                ],
            ),
            Service(
                name="prometheus",
                binary=str(bins["prometheus"]),
                args=[
                    f"--config.file={rendered_prometheus}",
                    f"--storage.tsdb.path={data / 'prometheus'}",
                    f"--web.listen-address={local}:{p.prometheus}",
                    "--web.enable-otlp-receiver",
                    "--enable-feature=exemplar-storage",
                ],
                health_url=f"http://{local}:{p.prometheus}/-/ready",
                check=[str(bins["promtool"]), "check", "config", str(rendered_prometheus)],
                check_files=[
                    ConfigFile("prometheus/prometheus.yaml", rendered_prometheus),
                    *(self._shown(path) for path in rules),
                ],
            ),
            Service(
                name="otel-collector",
                binary=str(bins["otelcol"]),
                args=collector_configs,
                env=self.collector_env(),
                health_url=f"http://{local}:{p.collector_health}/",
                check=[str(bins["otelcol"]), "validate", *collector_configs],
                check_files=[self._shown(path) for path in collector_files],
            ),
        ]

    def _shown(self, path: Path) -> ConfigFile:
        """A config file as the user knows it: relative to the config root when inside it."""
        try:
            shown = str(path.resolve().relative_to(self.config_root))
        except ValueError:
            shown = str(path)
        return ConfigFile(shown, path)

    def collector_env(self) -> dict[str, str]:
        """The variables that point the collector's config at the native ports and dirs."""
        p, local = self.ports, "127.0.0.1"
        collector_data = self.state_dir / "data" / "otelcol"
        return {
            # On-disk sending queues, the blob store (full content) and the eval queue.
            "OTELCOL_QUEUE_DIR": str(collector_data / "queue"),
            "LLMTEL_BLOB_DIR": str(collector_data / "blob"),
            "LLMTEL_EVAL_QUEUE_DIR": str(collector_data / "eval-queue"),
            "OTELCOL_HEALTH_ENDPOINT": f"{local}:{p.collector_health}",
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"{local}:{p.collector_otlp_grpc}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"{local}:{p.collector_otlp_http}",
            "OTELCOL_TELEMETRY_HOST": local,
            "OTELCOL_TELEMETRY_PORT": str(p.collector_telemetry),
            "JAEGER_OTLP_TRACES_ENDPOINT": f"http://{local}:{p.jaeger_otlp_http}/v1/traces",
            "VICTORIALOGS_OTLP_LOGS_ENDPOINT": (
                f"http://{local}:{p.victorialogs}/insert/opentelemetry/v1/logs"
            ),
            "PROMETHEUS_OTLP_METRICS_ENDPOINT": (
                f"http://{local}:{p.prometheus}/api/v1/otlp/v1/metrics"
            ),
        }

    def urls(self) -> dict[str, str]:
        """What a user opens, and where apps send OTLP."""
        p = self.ports
        return {
            "OTLP gRPC (apps send here)": f"http://127.0.0.1:{p.collector_otlp_grpc}",
            "OTLP HTTP (apps send here)": f"http://127.0.0.1:{p.collector_otlp_http}",
            "Prometheus": f"http://127.0.0.1:{p.prometheus}",
            "Alertmanager": f"http://127.0.0.1:{p.alertmanager}",
            "Jaeger UI": f"http://127.0.0.1:{p.jaeger_query}",
            "VictoriaLogs UI": f"http://127.0.0.1:{p.victorialogs}/select/vmui",
        }

    # -- lifecycle -------------------------------------------------------------------
    def up(self, build: bool = True, timeout_s: float = 90) -> None:
        """Validate every config, then start each service and wait until it is healthy."""
        bins = binary_paths(build=build)
        running = [s.name for s in self.services(bins) if self._pid(s.name) is not None]
        if len(running) == len(self.services(bins)):
            print(f"[up] already running from {self.state_dir}")
            return
        if running:
            raise StackError(
                f"partly running from {self.state_dir}: {', '.join(running)} "
                "(stop it with `make down`, then `make up`)"
            )
        self.check(bins)
        services = self.services(bins)
        started: list[Service] = []
        try:
            for service in services:
                self._start(service)
                started.append(service)
                self._wait_healthy(service, timeout_s)
                print(f"[up] {service.name}: healthy", flush=True)
        except BaseException:
            self.down(quiet=True)
            raise

    def check(self, bins: dict[str, Path]) -> None:
        """Validate every config with the binary that runs it, and the dashboards.

        Nothing starts. Raises StackError naming each broken file as ``FILE:LINE:
        message``; the stack never starts half-broken.
        """
        for sub in (self.logs_dir, self.pids_dir, self.state_dir / "data"):
            sub.mkdir(parents=True, exist_ok=True)
        prometheus = self.config_root / "prometheus" / "prometheus.yaml"
        try:
            (self.state_dir / "prometheus.yaml").write_text(
                render_prometheus_config(
                    prometheus.read_text(),
                    self.ports,
                    rules_dir=self.config_root / "prometheus" / "rules",
                )
            )
            self._render_alertmanager()
        except (OSError, ValueError) as error:
            raise StackError(f"rendering the native configs failed: {error}") from error
        checked = (self._check(service) for service in self.services(bins))
        errors = [e for e in checked if e] + self.check_dashboards()
        if errors:
            raise StackError("config check failed:\n" + "\n".join(errors))

    def check_dashboards(self) -> list[str]:
        """Grafana does not run natively: its dashboards are checked here instead."""
        grafana = self.config_root / "grafana"
        uids = provisioned_uids(
            (grafana / "provisioning" / "datasources" / "datasources.yaml").read_text()
        )
        errors = []
        for path in sorted((grafana / "dashboards").glob("*.json")):
            errors += check_dashboard(self._shown(path).shown, path.read_text(), uids)
        return errors

    def _render_alertmanager(self) -> None:
        """Write Alertmanager's config and its secret files (0600) from the environment."""
        secrets_dir = self.state_dir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        rendered = render_alertmanager_config(
            (self.config_root / "alertmanager" / "alertmanager.yaml").read_text(),
            self.ports,
            secrets_dir,
        )
        (self.state_dir / "alertmanager.yaml").write_text(rendered)
        for name, value in alertmanager_secrets(rendered, os.environ, self.ports).items():
            path = secrets_dir / name
            path.touch(mode=0o600)
            path.write_text(value)

    def down(self, quiet: bool = False, timeout_s: float = 20) -> None:
        """Stop every service: SIGTERM (collectors flush their queues), then SIGKILL."""
        if not self.pids_dir.exists():
            return
        pids = {f.stem: self._pid(f.stem) for f in self.pids_dir.glob("*.pid")}
        for pid in pids.values():
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name, pid in pids.items():
            while pid is not None and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)
            if name in self._processes:
                self._processes.pop(name).wait(timeout=5)
            (self.pids_dir / f"{name}.pid").unlink(missing_ok=True)
            if not quiet and pid is not None:
                print(f"[down] {name}: stopped")

    def stop_service(self, name: str, timeout_s: float = 20) -> None:
        """Stop one service (SIGTERM, then SIGKILL), as an outage would; the rest keeps running."""
        pid = self._pid(name)
        if pid is None:
            raise StackError(f"{name} is not running")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if name in self._processes:
            self._processes.pop(name).wait(timeout=5)
        (self.pids_dir / f"{name}.pid").unlink(missing_ok=True)

    def start_service(
        self, name: str, timeout_s: float = 90, bins: dict[str, Path] | None = None
    ) -> None:
        """Start one stopped service on the stack's configs and wait until it is healthy.

        ``bins`` (NAME -> path) pins the binaries, e.g. those a running stack started
        with; by default the cached ones for the current manifests.
        """
        if self._pid(name) is not None:
            raise StackError(f"{name} is already running")
        by_name = {s.name: s for s in self.services(bins or binary_paths(build=False))}
        if name not in by_name:
            raise StackError(f"no service named {name!r} (known: {', '.join(by_name)})")
        self._start(by_name[name])
        self._wait_healthy(by_name[name], timeout_s)

    def status(self) -> dict[str, bool]:
        """NAME -> whether its process is running."""
        names = ["victorialogs", "jaeger", "alertmanager", "prometheus", "otel-collector"]
        return {name: self._pid(name) is not None for name in names}

    # -- helpers ---------------------------------------------------------------------
    def _check(self, service: Service) -> str | None:
        """None if the service's config loads, else its error as ``FILE:LINE: message``."""
        if service.check is None:
            return None
        try:
            result = subprocess.run(
                service.check,
                env={**os.environ, **service.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # one stream: the file an error is about precedes it
                text=True,
                check=False,
            )
        except OSError as error:
            raise StackError(
                f"{service.name}: cannot run its config check ({error}); "
                "build the binaries with `make build`"
            ) from error
        if result.returncode == 0:
            return None
        return locate(result.stdout, service.check_files or [ConfigFile(service.name, Path())])

    def _start(self, service: Service) -> None:
        with (self.logs_dir / f"{service.name}.log").open("ab") as log:
            process = subprocess.Popen(
                [service.binary, *service.args],
                env={**os.environ, **service.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,  # survives `make up` returning; Ctrl-C doesn't reach it
            )
        # Kept so that a long-lived caller (the test session) reaps its children.
        self._processes[service.name] = process
        (self.pids_dir / f"{service.name}.pid").write_text(f"{process.pid}\n")

    def _wait_healthy(self, service: Service, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._pid(service.name) is None:
                raise StackError(f"{service.name} exited during start\n{self.log_tail(service)}")
            try:
                with urllib.request.urlopen(service.health_url, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise StackError(
            f"{service.name} not healthy at {service.health_url} after {timeout_s:.0f} s\n"
            f"{self.log_tail(service)}"
        )

    def log_tail(self, service: Service, lines: int = 30) -> str:
        """The end of a service's log, for error messages."""
        path = self.logs_dir / f"{service.name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"--- last lines of {path} ---\n" + "\n".join(text)

    def _pid(self, name: str) -> int | None:
        path = self.pids_dir / f"{name}.pid"
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped) counts as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "check"])
    parser.add_argument("--port-offset", type=int, default=int(os.environ.get("PORT_OFFSET", 0)))
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--no-build", action="store_true", help="fail instead of building")
    parser.add_argument(
        "--dashboards-only",
        action="store_true",
        help="with check: only the dashboards (no binaries needed; `make up` with Docker)",
    )
    args = parser.parse_args(argv)
    # A stack moved by an offset keeps its own state, so it runs beside a default one.
    state_dir = args.state_dir or (
        ROOT / "var" / f"native-{args.port_offset}" if args.port_offset else None
    )
    stack = NativeStack(Ports().shifted(args.port_offset), state_dir)
    try:
        if args.command == "up":
            stack.up(build=not args.no_build)
            print("\nllmtel native stack is up (Grafana needs Docker: not started natively).")
            for label, url in stack.urls().items():
                print(f"  {label:28} {url}")
            stop = f"make down PORT_OFFSET={args.port_offset}" if args.port_offset else "make down"
            print(f"  logs: {stack.logs_dir}    stop: {stop}")
        elif args.command == "check" and args.dashboards_only:
            errors = stack.check_dashboards()
            if errors:
                raise StackError("dashboard check failed:\n" + "\n".join(errors))
            print("[check] dashboards: valid JSON, provisioned datasources only")
        elif args.command == "check":
            stack.check(binary_paths(build=not args.no_build))
            print(
                "[check] every config loads: collector, Jaeger, Prometheus and its rules, "
                "Alertmanager, dashboards"
            )
        elif args.command == "down":
            stack.down()
        else:
            for name, running in stack.status().items():
                print(f"{name:16} {'running' if running else 'stopped'}")
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
