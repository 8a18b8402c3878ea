"""Static checks of docker-compose.yml against .env, the repo's config files and the native stack.

No Docker engine is needed. The `docker compose config` tests run only where the
compose plugin is installed, and skip with the reason otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"

# The stack's long-running services (configs use these names as hostnames) and
# the one-shot that prepares Jaeger's volume.
LONG_RUNNING = {"otel-collector", "prometheus", "alertmanager", "jaeger", "victorialogs", "grafana"}
ONE_SHOT = {"jaeger-init"}
# Images with no shell, wget or curl and no self-probe flag: nothing inside them
# can run a healthcheck (the collector's is FROM scratch, VictoriaLogs' is
# distroless since v1.52.0).
WITHOUT_HEALTHCHECK = {"otel-collector", "victorialogs"}

# Flags whose values say where things live (paths, listen addresses): they differ
# between the native runtime and containers by design. Every other flag must match.
LOCATION_FLAGS = {
    "config",
    "config.file",
    "storage.tsdb.path",
    "storage.path",
    "web.listen-address",
    "storageDataPath",
    "httpListenAddr",
}


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def load_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip()
    return values


SERVICES: dict[str, Any] = load_compose()["services"]
ENV = load_env(ROOT / ".env")


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(host path, container path, read-only) for each bind mount of a service."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            if source.startswith((".", "/")):
                mounts.append((source, target, mode == ["ro"]))
        elif volume.get("type") == "bind":
            mounts.append((volume["source"], volume["target"], bool(volume.get("read_only"))))
    return mounts


def named_volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/")):
                mounts.append((source, target))
        elif volume.get("type") == "volume":
            mounts.append((volume["source"], volume["target"]))
    return mounts


def host_path_for(service: dict[str, Any], container_path: str) -> Path | None:
    """The repo file behind a path inside the container, via the longest bind mount."""
    best: tuple[str, str] | None = None
    for source, target, _ in bind_mounts(service):
        inside = PurePosixPath(container_path)
        if (inside == PurePosixPath(target) or PurePosixPath(target) in inside.parents) and (
            best is None or len(target) > len(best[1])
        ):
            best = (source, target)
    if best is None:
        return None
    relative = PurePosixPath(container_path).relative_to(best[1])
    return (ROOT / best[0] / relative).resolve()


def flags(args: list[str]) -> dict[str, str]:
    """'--name=value' / '-name=value' arguments as {name: value}."""
    parsed = {}
    for arg in args:
        name, _, value = arg.lstrip("-").partition("=")
        parsed[name] = value
    return parsed


def jaeger_image_tag(module_version: str) -> str:
    """Jaeger tags each release twice: Go module v1.N.P is the v2.(N-63).P binary and image."""
    major, minor, patch = (int(part) for part in module_version.split("."))
    assert major == 1, f"Jaeger module versions are 1.x, got {module_version}"
    return f"2.{minor - 63}.{patch}"


def load_native_stack() -> Any:
    spec = importlib.util.spec_from_file_location("llmtel_native_stack", ROOT / "native/stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def native_services() -> dict[str, Any]:
    stack = load_native_stack()
    names = [
        "victorialogs",
        "jaeger",
        "alertmanager",
        "amtool",
        "prometheus",
        "promtool",
        "otelcol",
    ]
    bins = {name: Path("/native-bin") / name for name in names}
    return {s.name: s for s in stack.NativeStack(state_dir=Path("/native-state")).services(bins)}


# -- shape ---------------------------------------------------------------------------


def test_compose_declares_exactly_the_stack_services():
    """Verify that compose parses and declares the stack's services under the names configs use."""
    assert set(SERVICES) == LONG_RUNNING | ONE_SHOT
    assert load_compose()["name"] == "llmtel"


def test_every_service_has_a_memory_limit():
    """Verify that every service has a memory limit under deploy.resources.limits."""
    missing = [
        name
        for name, service in SERVICES.items()
        if not service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
    ]
    assert missing == []


def test_restart_policy_is_unless_stopped_except_for_the_one_shot():
    """Verify that long-running services restart unless stopped and the one-shot never restarts."""
    policies = {name: service.get("restart") for name, service in SERVICES.items()}
    assert policies == {
        **dict.fromkeys(LONG_RUNNING, "unless-stopped"),
        **dict.fromkeys(ONE_SHOT, "no"),
    }


def test_healthchecks_exist_where_the_image_can_run_one():
    """Verify that every long-running service whose image can run one has a CMD healthcheck."""
    with_check = {name for name, service in SERVICES.items() if "healthcheck" in service}
    assert with_check == LONG_RUNNING - WITHOUT_HEALTHCHECK
    for name in with_check:
        test = SERVICES[name]["healthcheck"]["test"]
        # CMD (exec form) needs no shell in the image; CMD-SHELL would.
        assert test[0] == "CMD", f"{name}: {test}"


def test_healthchecks_probe_the_same_endpoints_as_the_native_stack():
    """Verify that each healthcheck fetches the health path the native runner polls."""
    native = native_services()
    for name, service in SERVICES.items():
        if "healthcheck" not in service or name not in native:
            continue
        url = service["healthcheck"]["test"][-1]
        native_path = "/" + native[name].health_url.split("/", 3)[3]
        assert url.endswith(native_path), f"{name}: {url} vs native {native[name].health_url}"


def test_grafana_healthcheck_uses_its_health_api():
    """Verify that Grafana's healthcheck fetches /api/health on its container port."""
    assert SERVICES["grafana"]["healthcheck"]["test"] == [
        "CMD",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://127.0.0.1:3000/api/health",
    ]


def test_depends_on_waits_for_health_or_completion():
    """Verify that every dependency waits for health, or for completion of the one-shot."""
    for name, service in SERVICES.items():
        for dependency, spec in service.get("depends_on", {}).items():
            if dependency in ONE_SHOT:
                expected = "service_completed_successfully"
            elif "healthcheck" in SERVICES[dependency]:
                expected = "service_healthy"
            else:
                expected = "service_started"
            assert spec == {"condition": expected}, f"{name} -> {dependency}"
    assert set(SERVICES["grafana"]["depends_on"]) == {"prometheus", "jaeger", "victorialogs"}
    assert set(SERVICES["otel-collector"]["depends_on"]) == {"prometheus", "jaeger", "victorialogs"}
    assert SERVICES["jaeger"]["depends_on"] == {
        "jaeger-init": {"condition": "service_completed_successfully"}
    }


# -- images and versions -------------------------------------------------------------


def test_every_image_is_an_image_variable_defined_in_env():
    """Verify that every image is ${X_IMAGE} and that .env defines X_IMAGE."""
    for name, service in SERVICES.items():
        match = re.fullmatch(r"\$\{([A-Z0-9_]+_IMAGE)\}", service["image"])
        assert match, f"{name}: image {service['image']!r} is not ${{X_IMAGE}}"
        assert ENV.get(match.group(1)), f"{name}: {match.group(1)} is not set in .env"


@pytest.mark.parametrize(
    ("image_key", "expected"),
    [
        (
            "OTELCOL_IMAGE",
            lambda env: f"otel/opentelemetry-collector-contrib:{env['OTELCOL_VERSION']}",
        ),
        ("PROMETHEUS_IMAGE", lambda env: f"prom/prometheus:v{env['PROMETHEUS_VERSION']}"),
        ("ALERTMANAGER_IMAGE", lambda env: f"prom/alertmanager:v{env['ALERTMANAGER_VERSION']}"),
        (
            "VICTORIALOGS_IMAGE",
            lambda env: f"victoriametrics/victoria-logs:v{env['VICTORIALOGS_VERSION']}",
        ),
        (
            "JAEGER_IMAGE",
            lambda env: f"jaegertracing/jaeger:{jaeger_image_tag(env['JAEGER_MODULE_VERSION'])}",
        ),
    ],
)
def test_image_versions_match_the_native_versions(image_key, expected):
    """Verify that each image runs the same version the native stack builds."""
    assert ENV[image_key] == expected(ENV)


def test_jaeger_dual_tag_mapping_matches_the_documented_pair():
    """Verify that module v1.75.0 maps to image 2.12.0, the pair .env documents."""
    assert jaeger_image_tag("1.75.0") == "2.12.0"
    assert jaeger_image_tag("1.76.1") == "2.13.1"


def test_jaeger_init_and_jaeger_share_one_image():
    """Verify that the volume-preparing one-shot uses Jaeger's own image (no extra pin)."""
    assert SERVICES["jaeger-init"]["image"] == SERVICES["jaeger"]["image"] == "${JAEGER_IMAGE}"


# -- mounts, volumes, commands -------------------------------------------------------


def test_every_bind_mount_exists_in_the_repo_and_is_read_only():
    """Verify that each bind-mounted host path exists in the repo and is mounted read-only."""
    for name, service in SERVICES.items():
        for source, target, read_only in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            assert (ROOT / source).resolve().is_relative_to(ROOT), f"{name}: {source} leaves repo"
            assert read_only, f"{name}: {source}:{target} is not :ro"


def test_config_files_named_in_commands_resolve_to_repo_files():
    """Verify that every --config path in a command is a repo file reached through a mount."""
    expected = {
        "otel-collector": ROOT / "collector-config/otelcol-config.yaml",
        "jaeger": ROOT / "jaeger/jaeger-config.yaml",
        "prometheus": ROOT / "prometheus/prometheus.yaml",
        "alertmanager": ROOT / "alertmanager/alertmanager.yaml",
    }
    for name, config_file in expected.items():
        args = flags(SERVICES[name]["command"])
        container_path = args.get("config") or args.get("config.file")
        assert container_path, f"{name}: no --config in {SERVICES[name]['command']}"
        assert host_path_for(SERVICES[name], container_path) == config_file, name
        assert config_file.is_file()


def test_prometheus_rule_files_are_inside_the_mounted_config_directory():
    """Verify that prometheus.yaml's rule_files glob finds the repo's rules in the container."""
    config = yaml.safe_load((ROOT / "prometheus/prometheus.yaml").read_text())
    config_dir = PurePosixPath(flags(SERVICES["prometheus"]["command"])["config.file"]).parent
    for pattern in config["rule_files"]:
        host_dir = host_path_for(
            SERVICES["prometheus"], str(config_dir / pattern).rsplit("/", 1)[0]
        )
        assert host_dir == (ROOT / "prometheus/rules").resolve()
        assert sorted(host_dir.glob(pattern.rsplit("/", 1)[1])), f"no file matches {pattern}"


def test_named_volumes_are_declared_and_all_used():
    """Verify that every named volume is declared at the top level and every declared one used."""
    declared = set(load_compose().get("volumes", {}))
    used = {source for service in SERVICES.values() for source, _ in named_volume_mounts(service)}
    assert used == declared


def test_stateful_services_keep_their_data_in_named_volumes():
    """Verify that each backend's data path is the target of a named volume."""
    data_paths = {
        "prometheus": flags(SERVICES["prometheus"]["command"])["storage.tsdb.path"],
        "alertmanager": flags(SERVICES["alertmanager"]["command"])["storage.path"],
        "victorialogs": flags(SERVICES["victorialogs"]["command"])["storageDataPath"],
        "jaeger": SERVICES["jaeger"]["environment"]["JAEGER_DATA_DIR"],
        "grafana": "/var/lib/grafana",
    }
    for name, path in data_paths.items():
        targets = [PurePosixPath(target) for _, target in named_volume_mounts(SERVICES[name])]
        inside = PurePosixPath(path)
        assert any(inside == t or t in inside.parents for t in targets), f"{name}: {path}"


def test_jaeger_init_prepares_exactly_jaegers_data_directory():
    """Verify that the one-shot chowns JAEGER_DATA_DIR, on the same volume, to Jaeger's uid."""
    data_dir = SERVICES["jaeger"]["environment"]["JAEGER_DATA_DIR"]
    script = SERVICES["jaeger-init"]["entrypoint"][-1]
    assert script == f"mkdir -p {data_dir} && chown -R 10001:10001 {data_dir}"
    assert named_volume_mounts(SERVICES["jaeger-init"]) == named_volume_mounts(SERVICES["jaeger"])


def test_command_flags_match_the_native_stack():
    """Verify that every native flag other than paths and addresses is passed identically."""
    native = native_services()
    for name in ("prometheus", "alertmanager", "victorialogs", "jaeger", "otel-collector"):
        native_flags = flags(native[name].args)
        compose_flags = flags(SERVICES[name]["command"])
        assert set(compose_flags) <= set(native_flags), name
        for flag, value in native_flags.items():
            if flag not in LOCATION_FLAGS:
                assert compose_flags.get(flag) == value, f"{name}: {flag}"


def test_victorialogs_keeps_the_native_listen_port():
    """Verify that VictoriaLogs listens on 9428, the port the collector and Grafana use."""
    assert flags(SERVICES["victorialogs"]["command"])["httpListenAddr"] == ":9428"


# -- exposure and secrets ------------------------------------------------------------


def test_every_published_port_binds_localhost_only():
    """Verify that every published port is bound to 127.0.0.1 and nothing uses host networking."""
    for name, service in SERVICES.items():
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):
            if isinstance(port, str):
                assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), f"{name}: {port}"
            else:
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"


def test_published_ports_are_the_documented_ones():
    """Verify that the host ports are the ones the native stack and README use."""
    published = {
        name: sorted(int(p.split(":")[1]) for p in service.get("ports", []))
        for name, service in SERVICES.items()
    }
    assert published == {
        "otel-collector": [4317, 4318, 13133],
        "prometheus": [9090],
        "alertmanager": [9093],
        "jaeger-init": [],
        "jaeger": [16686],
        "victorialogs": [9428],
        "grafana": [3000],
    }


def test_no_literal_secret_in_compose():
    """Verify that secret-looking variables only come from required .env.override values."""
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", str(value)), f"{name}: {key}"
    assert SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    assert not [key for key in ENV if re.search(r"PASSWORD|SECRET|TOKEN", key)]


def test_env_override_example_documents_the_secret_without_a_value():
    """Verify that the example leaves the password empty, presets only the default webhooks."""
    example = load_env(ROOT / ".env.override.example")
    default_webhook = (
        "http://victorialogs:9428/insert/jsonline"
        "?_stream_fields=receiver&_msg_field=commonAnnotations.summary"
    )
    assert example == {
        "GRAFANA_ADMIN_PASSWORD": "",
        "ALERTMANAGER_PAGE_WEBHOOK_URL": default_webhook,
        "ALERTMANAGER_CHAT_WEBHOOK_URL": default_webhook,
    }
    assert ".env.override" in (ROOT / ".gitignore").read_text().splitlines()


def test_grafana_is_configured_by_gf_variables_only():
    """Verify that Grafana gets GF_* variables, no grafana.ini, anonymous access off."""
    grafana = SERVICES["grafana"]
    environment = grafana["environment"]
    assert all(key.startswith("GF_") for key in environment)
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert not [t for _, t, _ in bind_mounts(grafana) if t.endswith("grafana.ini")]
    assert "GF_INSTALL_PLUGINS" not in environment  # deprecated in Grafana 12


def test_grafana_preinstalls_the_pinned_victorialogs_plugin():
    """Verify that the plugin id and version come from .env and install before Grafana starts."""
    plugins = SERVICES["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    assert plugins == "${VICTORIALOGS_GRAFANA_PLUGIN}@${VICTORIALOGS_GRAFANA_PLUGIN_VERSION}"
    assert ENV["VICTORIALOGS_GRAFANA_PLUGIN"] == "victoriametrics-logs-datasource"
    assert re.fullmatch(r"\d+\.\d+\.\d+", ENV["VICTORIALOGS_GRAFANA_PLUGIN_VERSION"])


# -- the real compose loader ---------------------------------------------------------


def compose_config(*env_files: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker") is None:
        pytest.skip("the docker client is not installed")
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        said = (probe.stderr or probe.stdout).strip().splitlines() or ["no output"]
        pytest.skip(
            f"the docker compose plugin is not installed (`docker compose version`: {said[0]})"
        )
    # A clean environment: variables in the caller's shell would win over the files.
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env["DOCKER_CONFIG"] = os.environ.get("DOCKER_CONFIG", str(Path.home() / ".docker"))
    args = ["docker", "compose", "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    for env_file in env_files:
        args += ["--env-file", str(env_file)]
    return subprocess.run(
        [*args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )


def test_docker_compose_config_accepts_the_file_with_env_and_override(tmp_path):
    """Verify that `docker compose config` loads the file with .env plus an override file."""
    override = tmp_path / ".env.override"
    override.write_text("GRAFANA_ADMIN_PASSWORD=test-only-password\n")
    result = compose_config(ROOT / ".env", override, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)["services"]
    for name, service in rendered.items():
        key = re.fullmatch(r"\$\{(\w+)\}", SERVICES[name]["image"]).group(1)
        assert service["image"] == ENV[key], name
        assert all(port["host_ip"] == "127.0.0.1" for port in service.get("ports", [])), name
    grafana = rendered["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "test-only-password"
    assert grafana["GF_PLUGINS_PREINSTALL_SYNC"] == (
        f"{ENV['VICTORIALOGS_GRAFANA_PLUGIN']}@{ENV['VICTORIALOGS_GRAFANA_PLUGIN_VERSION']}"
    )


def test_docker_compose_config_refuses_to_run_without_the_password(tmp_path):
    """Verify that compose stops with a pointer to .env.override when the password is empty."""
    result = compose_config(ROOT / ".env", ROOT / ".env.override.example", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in .env.override" in result.stderr
