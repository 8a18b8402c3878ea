"""Alertmanager's routing, checked by the real amtool, and how its secrets reach it.

Routing: every alert the rule files define is routed by ``amtool config routes test``
with the labels Prometheus gives it. Secrets: receivers read webhook URLs from files
(``*_file``), which compose fills from .env.override and the native runtime from the
environment; the config holds no secret. The live behaviour (delivery, grouping,
inhibition) is proven against the real Alertmanager in test_dashboards_alerts_live.py.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT
from render import (
    ALERTMANAGER_SECRETS,
    alertmanager_secrets,
    render_alertmanager_config,
)
from stack import NativeStack, Ports

CONFIG = ROOT / "alertmanager" / "alertmanager.yaml"
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yaml"))
NOTIFICATION_LOG = (
    "http://victorialogs:9428/insert/jsonline"
    "?_stream_fields=receiver&_msg_field=commonAnnotations.summary"
)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [r for p in RULE_FILES for g in load(p)["groups"] for r in g["rules"] if "alert" in r]


def routes(bins: dict[str, Path], config: Path, labels: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [
            str(bins["amtool"]),
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


EXPECTED_RECEIVERS = {
    "LLMErrorRateHigh": ["page", "default"],
    "LLMLatencyP95High": ["chat", "default"],
    "LLMSpendRateHigh": ["chat", "default"],
    "Watchdog": ["default"],
}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_amtool_routes_each_alert_by_its_severity(bins: dict[str, Path], rule: dict[str, Any]):
    """Verify that amtool sends each shipped alert, with its rule labels, to its receivers."""
    labels = {"alertname": rule["alert"], **rule["labels"], "job": "support-bot"}
    assert routes(bins, CONFIG, labels) == EXPECTED_RECEIVERS[rule["alert"]]


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "AnyPage", "severity": "critical"}, ["page", "default"]),
        ({"alertname": "AnyChat", "severity": "warning"}, ["chat", "default"]),
        ({"alertname": "NoSeverity"}, ["default"]),
        ({"alertname": "Info", "severity": "info"}, ["default"]),
        # The Watchdog never reaches a person, whatever severity it carries.
        ({"alertname": "Watchdog", "severity": "critical"}, ["default"]),
    ],
)
def test_amtool_routes_by_severity_with_a_copy_to_the_notification_log(
    bins: dict[str, Path], labels: dict[str, str], receivers: list[str]
):
    """Verify critical pages, warning chats, everything is logged, and the Watchdog only logged."""
    assert routes(bins, CONFIG, labels) == receivers


def test_amtool_verifies_the_receivers_of_a_critical_alert(bins: dict[str, Path]):
    """Verify that amtool's --verify.receivers agrees: page then default for a critical alert."""
    result = subprocess.run(
        [
            str(bins["amtool"]),
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            "--verify.receivers=page,default",
            "alertname=LLMErrorRateHigh",
            "severity=critical",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_severity_is_routed_on_purpose():
    """Verify that each severity the rules use is critical, warning or the Watchdog's none."""
    assert {r["labels"]["severity"] for r in alert_rules()} == {"critical", "warning", "none"}


def test_grouping_and_timings_suit_the_three_alerts():
    """Verify grouping by alert and service, and faster repeats for pages than for chat."""
    route = load(CONFIG)["route"]
    assert route["group_by"] == ["alertname", "job"]
    by_receiver = {(r["receiver"], tuple(r.get("matchers", []))): r for r in route["routes"]}
    watchdog = by_receiver["default", ('alertname="Watchdog"',)]
    page = by_receiver["page", ('severity="critical"',)]
    chat = by_receiver["chat", ('severity="warning"',)]
    assert (watchdog["group_wait"], watchdog["repeat_interval"]) == ("0s", "1h")
    assert page["repeat_interval"] == "1h"
    assert route["repeat_interval"] == "4h"
    assert page["continue"] is chat["continue"] is True
    assert route["routes"][-1] == {"receiver": "default"}


def test_error_alert_inhibits_only_the_latency_alert_of_the_same_service():
    """Verify the one inhibition: LLMErrorRateHigh mutes LLMLatencyP95High with the same job."""
    assert load(CONFIG)["inhibit_rules"] == [
        {
            "source_matchers": ['alertname="LLMErrorRateHigh"'],
            "target_matchers": ['alertname="LLMLatencyP95High"'],
            "equal": ["job"],
        }
    ]


SECRET_FIELDS = re.compile(r"(url|api_url|routing_key|service_key|api_key|token|password)$")


def test_receivers_hold_no_secret_only_files_compose_provides():
    """Verify that page and chat read URLs from compose secret files; only the log URL is inline."""
    receivers = {r["name"]: r for r in load(CONFIG)["receivers"]}
    assert set(receivers) == {"default", "page", "chat"}
    assert receivers["default"]["webhook_configs"] == [
        {"url": NOTIFICATION_LOG, "send_resolved": True}
    ]
    for name in ("page", "chat"):
        (webhook,) = receivers[name]["webhook_configs"]
        assert webhook == {
            "url_file": f"/run/secrets/alertmanager-{name}-webhook-url",
            "send_resolved": True,
        }
        assert not [k for k in webhook if SECRET_FIELDS.search(k)]
    compose = load(ROOT / "docker-compose.yml")
    secrets = compose["secrets"]
    assert {name: s["environment"] for name, s in secrets.items()} == ALERTMANAGER_SECRETS
    assert compose["services"]["alertmanager"]["secrets"] == list(ALERTMANAGER_SECRETS)


def test_env_override_example_sets_both_receivers_to_the_notification_log():
    """Verify that .env.override.example defines both webhook variables as the default log URL."""
    lines = (ROOT / ".env.override.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    for variable in ALERTMANAGER_SECRETS.values():
        assert values[variable] == NOTIFICATION_LOG


def test_native_rendering_points_urls_and_secret_files_at_the_native_stack(tmp_path: Path):
    """Verify that the native copy has 127.0.0.1 URLs and secret files under the state dir."""
    rendered = render_alertmanager_config(CONFIG.read_text(), Ports().shifted(10000), tmp_path)
    config = yaml.safe_load(rendered)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["default"]["webhook_configs"][0]["url"] == NOTIFICATION_LOG.replace(
        "victorialogs:9428", "127.0.0.1:19428"
    )
    assert receivers["page"]["webhook_configs"][0]["url_file"] == str(
        tmp_path / "alertmanager-page-webhook-url"
    )
    assert "/run/secrets" not in rendered
    assert "victorialogs:" not in rendered


def test_native_rendering_refuses_an_unknown_compose_address(tmp_path: Path):
    """Verify that a webhook on a host the native stack lacks fails loudly."""
    with pytest.raises(ValueError, match="grafana:3000"):
        render_alertmanager_config("url: http://grafana:3000/x\n", Ports(), tmp_path)


def test_secrets_come_from_the_environment_else_the_notification_log(tmp_path: Path):
    """Verify env values win (compose hosts made native), and unset ones point at the log."""
    rendered = render_alertmanager_config(CONFIG.read_text(), Ports(), tmp_path)
    environ = {
        "ALERTMANAGER_PAGE_WEBHOOK_URL": "https://oncall.example.com/integrations/v1/am/Tk3n/",
    }
    assert alertmanager_secrets(rendered, environ, Ports()) == {
        "alertmanager-page-webhook-url": "https://oncall.example.com/integrations/v1/am/Tk3n/",
        "alertmanager-chat-webhook-url": NOTIFICATION_LOG.replace(
            "victorialogs:9428", "127.0.0.1:9428"
        ),
    }
    # The example's docker address, sourced into a native shell, still works.
    environ = {"ALERTMANAGER_CHAT_WEBHOOK_URL": NOTIFICATION_LOG}
    secrets = alertmanager_secrets(rendered, environ, Ports().shifted(30000))
    assert secrets["alertmanager-chat-webhook-url"].startswith("http://127.0.0.1:39428/")


def test_native_stack_writes_secret_files_0600_that_amtool_accepts(
    bins: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Verify that the native stack writes each secret file 0600 from the environment."""
    monkeypatch.setenv("ALERTMANAGER_CHAT_WEBHOOK_URL", "https://chat.example.com/hook/s3cr3t")
    monkeypatch.delenv("ALERTMANAGER_PAGE_WEBHOOK_URL", raising=False)
    stack = NativeStack(Ports().shifted(10000), tmp_path)
    stack._render_alertmanager()
    secrets = tmp_path / "secrets"
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o700
    for name in ALERTMANAGER_SECRETS:
        assert stat.S_IMODE(os.stat(secrets / name).st_mode) == 0o600
    assert (secrets / "alertmanager-chat-webhook-url").read_text() == (
        "https://chat.example.com/hook/s3cr3t"
    )
    assert (
        (secrets / "alertmanager-page-webhook-url")
        .read_text()
        .startswith("http://127.0.0.1:19428/insert/jsonline?")
    )
    rendered = tmp_path / "alertmanager.yaml"
    assert "s3cr3t" not in rendered.read_text()
    result = subprocess.run(
        [str(bins["amtool"]), "check-config", str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert routes(bins, rendered, {"severity": "warning"}) == ["chat", "default"]
