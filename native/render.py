"""Point prometheus/prometheus.yaml and alertmanager/alertmanager.yaml at the native stack.

Neither has environment expansion in its config, so the native runtime rewrites
the docker-compose service addresses (``otel-collector:8888``) to the native
ports, Prometheus' rule glob to an absolute path and Alertmanager's secret files
(``/run/secrets/...``, compose secrets in Docker) to the state directory, in
copies under the state directory. Every other line stays as written. The secret
files themselves come from the environment (``alertmanager_secrets``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

# Alertmanager's secret files (compose secrets in Docker) and the variable each
# is written from.
ALERTMANAGER_SECRETS = {
    "alertmanager-page-webhook-url": "ALERTMANAGER_PAGE_WEBHOOK_URL",
    "alertmanager-chat-webhook-url": "ALERTMANAGER_CHAT_WEBHOOK_URL",
}
COMPOSE_SECRETS_DIR = "/run/secrets/"


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


def _native_urls(text: str, ports: NativePorts, strict: bool) -> str:
    mapping = address_map(ports)

    def swap(match: re.Match[str]) -> str:
        address = match.group(1)
        if address in mapping:
            return f"://{mapping[address]}"
        if strict:
            raise ValueError(f"alertmanager.yaml: no native address for {address!r}")
        return match.group(0)

    return re.sub(r"://([a-z][a-z0-9-]*:\d+)(?=/|$)", swap, text, flags=re.MULTILINE)


def render_alertmanager_config(text: str, ports: NativePorts, secrets_dir: Path) -> str:
    """Rewrite compose addresses in URLs and secret paths; fail on an address it doesn't know."""
    text = _native_urls(text, ports, strict=True)
    return text.replace(COMPOSE_SECRETS_DIR, f"{secrets_dir}/")


def alertmanager_secrets(
    rendered_config: str, environ: Mapping[str, str], ports: NativePorts
) -> dict[str, str]:
    """Secret file name -> content: the variable's value, else the notification-log URL.

    The notification log is the ``default`` receiver's webhook (the config's first
    literal ``url:``), so page and chat notifications land there until real receivers
    are set. Compose addresses in the values (as in .env.override) become native ones.
    """
    match = re.search(r"^\s*- url: (\S+)$", rendered_config, flags=re.MULTILINE)
    if match is None:
        raise ValueError("alertmanager.yaml: no literal webhook url for the default receiver")
    return {
        name: _native_urls(environ.get(variable) or match.group(1), ports, strict=False)
        for name, variable in ALERTMANAGER_SECRETS.items()
    }
