"""Point prometheus/prometheus.yaml at the native stack.

Prometheus has no environment expansion in its config, so the native runtime
rewrites the docker-compose service addresses (``otel-collector:8888``) to the
native ports, and the rule glob to an absolute path, in a copy under the state
directory. Every other line stays as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol


class NativePorts(Protocol):
    """The ports render needs (native/stack.py's Ports has them)."""

    @property
    def prometheus(self) -> int: ...
    @property
    def collector_telemetry(self) -> int: ...
    @property
    def alertmanager(self) -> int: ...
    @property
    def jaeger_telemetry(self) -> int: ...
    @property
    def victorialogs(self) -> int: ...


def address_map(ports: NativePorts) -> dict[str, str]:
    """docker-compose ``service:port`` -> native ``127.0.0.1:port``."""
    return {
        "prometheus:9090": f"127.0.0.1:{ports.prometheus}",
        "otel-collector:8888": f"127.0.0.1:{ports.collector_telemetry}",
        "alertmanager:9093": f"127.0.0.1:{ports.alertmanager}",
        "jaeger:8888": f"127.0.0.1:{ports.jaeger_telemetry}",
        "victorialogs:9428": f"127.0.0.1:{ports.victorialogs}",
    }


def render_prometheus_config(text: str, ports: NativePorts, rules_dir: Path) -> str:
    """Rewrite compose addresses and the rules glob; fail on an address it doesn't know."""
    mapping = address_map(ports)

    def swap(match: re.Match[str]) -> str:
        address = match.group(1)
        if address not in mapping:
            raise ValueError(f"prometheus.yaml: no native address for target {address!r}")
        return f'"{mapping[address]}"'

    text = re.sub(r'"([a-z][a-z0-9-]*:\d+)"', swap, text)
    return re.sub(r"^(\s*-\s*)rules/", rf"\g<1>{rules_dir}/", text, flags=re.MULTILINE)
