"""A collector process under test: started on a config, its CPU time and own metrics read."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$")


class Collector:
    """``otelcol --config=...`` with the native stack's environment, one core's worth of Go."""

    def __init__(
        self,
        binary: Path,
        configs: list[Path],
        env: dict[str, str],
        work: Path,
        ports: dict[str, int],
    ) -> None:
        self.binary, self.configs, self.work, self.ports = binary, configs, work, ports
        queue = work / "queue"
        shutil.rmtree(work, ignore_errors=True)
        queue.mkdir(parents=True)
        # GOMAXPROCS=1: at most one core runs the collector's Go code, so its figures are
        # "per core" even while telemetrygen and the backends share the machine.
        self.env = {**os.environ, **env, "OTELCOL_QUEUE_DIR": str(queue), "GOMAXPROCS": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60, attempts: int = 4) -> None:
        """Start and wait until healthy; retry while a port is briefly taken by a client."""
        for attempt in range(1, attempts + 1):
            try:
                self._start(timeout_s)
                return
            except RuntimeError as exc:
                if "address already in use" not in str(exc) or attempt == attempts:
                    raise
                time.sleep(3)

    def _start(self, timeout_s: float) -> None:
        args = [str(self.binary), *(f"--config={c}" for c in self.configs)]
        with (self.work / "otelcol.log").open("ab") as log:
            self.process = subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.ports['health']}/"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"collector exited: {self.log_tail(3)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"collector not healthy after {timeout_s:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the collector so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def metrics(self) -> dict[str, float]:
        """The collector's own metrics, summed over labels, keyed ``name`` and ``name{labels}``."""
        url = f"http://127.0.0.1:{self.ports['telemetry']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
            out[name] = out.get(name, 0.0) + value
            out[name + labels] = value
        return out

    def log_tail(self, lines: int = 15) -> str:
        path = self.work / "otelcol.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )
